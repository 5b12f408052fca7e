//! The cryptography of transports: per-link keys, delegation without a round trip, and sealed
//! messages with replay protection. Building blocks only; runtimes put them on their wires.
//!
//! - Every node has a 32-byte [`NodeSecret`].
//! - A handle the node issues for sender `S` carries the link key `k = KDF(secret, S)`
//!   ([`NodeSecret::link_key`]; the KDF is BLAKE3 in keyed mode).
//! - Passing the handle on to `T` derives `k' = KDF(k, T)` locally ([`LinkKey::transfer`]) and
//!   appends `T` to the handle's chain: no message is needed.
//! - The receiver recomputes the key of any chain from its secret ([`NodeSecret::key_for_chain`]).
//!   The first link is authenticated (the node the handle was issued to answers for all it
//!   delegates); the later links say whom it went through. Nobody can forge a key for a chain
//!   without holding a key of a prefix of it.
//! - A message is sealed with ChaCha20-Poly1305 under the link key ([`seal`]). The associated
//!   data is the receiver's id and the chain, and the nonce is a per-link counter. [`open`]
//!   rejects a tampered message, one sealed under another key, one re-addressed to another
//!   receiver, and one whose chain was changed. A [`ReplayWindow`] rejects a counter it has
//!   already accepted.
//!
//! No cryptography is written here: BLAKE3 and ChaCha20-Poly1305 come from their crates.
//!
//! # Examples
//!
//! ```
//! use dz_core::security::{open, seal, NodeSecret, ReplayWindow};
//! use dz_core::NodeId;
//!
//! let receiver = NodeId::from("Store_000000000001");
//! let secret = NodeSecret::from_bytes([7; 32]);
//! let (alice, bob) = (NodeId::from("Alice_0000000000a1"), NodeId::from("Bob_00000000000b1"));
//!
//! // The store issues a handle for Alice; Alice passes it on to Bob without asking.
//! let for_alice = secret.link_key(&alice);
//! let for_bob = for_alice.transfer(&bob);
//! let chain = [alice.clone(), bob.clone()];
//!
//! let sealed = seal(&for_bob, 1, &receiver, &chain, b"hello");
//! // The store recomputes Bob's key from its secret and the chain, and opens the message.
//! let key = secret.key_for_chain(&chain).unwrap();
//! assert_eq!(open(&key, &receiver, &chain, &sealed).unwrap(), (1, b"hello".to_vec()));
//!
//! // Bob cannot pass his message off as Alice's.
//! let alices_key = secret.key_for_chain(&chain[..1]).unwrap();
//! assert!(open(&alices_key, &receiver, &chain[..1], &sealed).is_err());
//!
//! let mut window = ReplayWindow::default();
//! assert!(window.accept(1).is_ok());
//! assert!(window.accept(1).is_err()); // a replay
//! ```

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::ids::NodeId;
use crate::rng::DetRng;

/// The domain of link-key derivation, so that these keys can never collide with another use of
/// the same secret.
const LINK_CONTEXT: &[u8] = b"dz 2026 link key v1";

/// A node's 32-byte secret, from which it derives the keys of the handles it issues.
/// Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeSecret([u8; 32]);

impl NodeSecret {
    /// A secret of the given bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        NodeSecret(bytes)
    }

    /// A secret drawn from `rng` (the simulator's seeded streams; a real machine uses the OS's
    /// entropy instead).
    pub fn from_rng(rng: &mut DetRng) -> Self {
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        NodeSecret(bytes)
    }

    /// The key of a handle issued for `sender`: `KDF(secret, sender)`.
    pub fn link_key(&self, sender: &NodeId) -> LinkKey {
        LinkKey(derive(&self.0, sender))
    }

    /// The key of the handle whose delegation chain is `chain` (the node it was issued for,
    /// then each node it was passed to); `None` for an empty chain.
    pub fn key_for_chain(&self, chain: &[NodeId]) -> Option<LinkKey> {
        let (first, rest) = chain.split_first()?;
        Some(rest.iter().fold(self.link_key(first), |key, next| key.transfer(next)))
    }
}

impl fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeSecret(..)")
    }
}

/// The key of one link (one chain to one receiver). Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkKey([u8; 32]);

impl LinkKey {
    /// A key of the given bytes (as a transport carries them).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        LinkKey(bytes)
    }

    /// The key's bytes, to put in a transport.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The key of the same link passed on to `next`: `KDF(self, next)`.
    pub fn transfer(&self, next: &NodeId) -> LinkKey {
        LinkKey(derive(&self.0, next))
    }
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

fn derive(key: &[u8; 32], node: &NodeId) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(LINK_CONTEXT);
    hasher.update(&(node.as_str().len() as u64).to_le_bytes());
    hasher.update(node.as_str().as_bytes());
    *hasher.finalize().as_bytes()
}

/// The associated data of a sealed message: the receiver and the chain, each length-prefixed so
/// that no two (receiver, chain) pairs give the same bytes.
fn associated_data(receiver: &NodeId, chain: &[NodeId]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + receiver.as_str().len() + chain.len() * 24);
    for id in std::iter::once(receiver).chain(chain) {
        aad.extend_from_slice(&(id.as_str().len() as u64).to_le_bytes());
        aad.extend_from_slice(id.as_str().as_bytes());
    }
    aad
}

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&counter.to_le_bytes());
    Nonce::from(bytes)
}

/// How many bytes sealing adds: the counter (8) and the tag (16).
pub const SEAL_OVERHEAD: usize = 8 + 16;

/// Seals `plaintext` for `receiver` under `key`, whose chain is `chain`, as message number
/// `counter` of the link. A counter must never be used twice with one key.
///
/// The result is the counter (8 bytes, little-endian), then the ciphertext and its tag.
pub fn seal(key: &LinkKey, counter: u64, receiver: &NodeId, chain: &[NodeId], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    let aad = associated_data(receiver, chain);
    // Encryption fails only for inputs beyond ChaCha20's 256 GiB limit, which no message reaches;
    // such a message is sealed as empty and will not open.
    let sealed = cipher.encrypt(&nonce(counter), Payload { msg: plaintext, aad: &aad }).unwrap_or_default();
    let mut out = Vec::with_capacity(8 + sealed.len());
    out.extend_from_slice(&counter.to_le_bytes());
    out.extend_from_slice(&sealed);
    out
}

/// Why a sealed message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Too short to hold a counter and a tag.
    #[error("a sealed message is at least {SEAL_OVERHEAD} bytes")]
    TooShort,
    /// The tag does not verify: the message was changed, sealed under another key (a forged or
    /// made-up key, a chain not descending from a handle the receiver issued), or meant for
    /// another receiver or chain.
    #[error("the message does not open: tampered, forged, or meant for another receiver or chain")]
    Rejected,
    /// The counter was already accepted on this link.
    #[error("message {0} of this link was already accepted (a replay)")]
    Replayed(u64),
}

/// Opens a message sealed by [`seal`]; returns its counter and plaintext.
///
/// # Errors
///
/// [`OpenError::TooShort`] or [`OpenError::Rejected`]; replays are the [`ReplayWindow`]'s job.
pub fn open(key: &LinkKey, receiver: &NodeId, chain: &[NodeId], sealed: &[u8]) -> Result<(u64, Vec<u8>), OpenError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(OpenError::TooShort);
    }
    let (counter, body) = sealed.split_at(8);
    let mut counter_bytes = [0u8; 8];
    counter_bytes.copy_from_slice(counter);
    let counter = u64::from_le_bytes(counter_bytes);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    let aad = associated_data(receiver, chain);
    let plaintext =
        cipher.decrypt(&nonce(counter), Payload { msg: body, aad: &aad }).map_err(|_| OpenError::Rejected)?;
    Ok((counter, plaintext))
}

/// The counters a link has accepted: the highest, and which of the 64 below it. A counter is
/// accepted once; one more than 64 below the highest is taken for a replay too (links deliver
/// nearly in order, so an honest message is never that late).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    highest: Option<u64>,
    /// Bit `i` set: counter `highest - 1 - i` was accepted.
    below: u64,
}

impl ReplayWindow {
    /// Accepts `counter` if it is new on this link.
    ///
    /// # Errors
    ///
    /// [`OpenError::Replayed`] if it was accepted before (or is too old to tell).
    pub fn accept(&mut self, counter: u64) -> Result<(), OpenError> {
        let Some(highest) = self.highest else {
            self.highest = Some(counter);
            return Ok(());
        };
        if counter > highest {
            // Everything moves `shift` further behind; the old highest lands at `shift` behind.
            let shift = counter - highest;
            let moved = if shift >= 64 { 0 } else { self.below << shift };
            self.below = if shift <= 64 { moved | (1 << (shift - 1)) } else { moved };
            self.highest = Some(counter);
            return Ok(());
        }
        let back = highest - counter;
        if back == 0 || back > 64 {
            return Err(OpenError::Replayed(counter));
        }
        let bit = 1u64 << (back - 1);
        if self.below & bit != 0 {
            return Err(OpenError::Replayed(counter));
        }
        self.below |= bit;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::from(s)
    }

    fn setup() -> (NodeSecret, NodeId, Vec<NodeId>, LinkKey) {
        let secret = NodeSecret::from_rng(&mut DetRng::from_seed(9));
        let receiver = id("R_1");
        let chain = vec![id("S_1"), id("T_1"), id("U_1"), id("V_1")];
        let key = chain[1..].iter().fold(secret.link_key(&chain[0]), |k, next| k.transfer(next));
        (secret, receiver, chain, key)
    }

    #[test]
    fn a_handle_transferred_three_times_still_opens() {
        let (secret, receiver, chain, key) = setup();
        assert_eq!(secret.key_for_chain(&chain), Some(key.clone()));
        let sealed = seal(&key, 42, &receiver, &chain, b"payload");
        assert_eq!(sealed.len(), b"payload".len() + SEAL_OVERHEAD);
        assert_eq!(open(&key, &receiver, &chain, &sealed), Ok((42, b"payload".to_vec())));
    }

    #[test]
    fn every_changed_byte_is_rejected() {
        let (_, receiver, chain, key) = setup();
        let sealed = seal(&key, 1, &receiver, &chain, b"pay me 10");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(open(&key, &receiver, &chain, &bad), Err(OpenError::Rejected), "byte {i}");
        }
        assert_eq!(open(&key, &receiver, &chain, &sealed[..10]), Err(OpenError::TooShort));
    }

    #[test]
    fn a_re_addressed_message_or_a_changed_chain_is_rejected() {
        let (secret, receiver, chain, key) = setup();
        let sealed = seal(&key, 1, &receiver, &chain, b"x");
        assert_eq!(open(&key, &id("Other_1"), &chain, &sealed), Err(OpenError::Rejected));
        let mut shorter = chain.clone();
        shorter.pop();
        assert_eq!(open(&key, &receiver, &shorter, &sealed), Err(OpenError::Rejected));
        // Another receiver, with its own secret, derives another key for the same chain.
        let other = NodeSecret::from_bytes([1; 32]).key_for_chain(&chain).unwrap();
        assert_ne!(other, secret.key_for_chain(&chain).unwrap());
        assert_eq!(open(&other, &receiver, &chain, &sealed), Err(OpenError::Rejected));
    }

    #[test]
    fn a_made_up_key_or_a_forged_chain_does_not_open() {
        let (secret, receiver, chain, _) = setup();
        // A node that holds no handle from S claims a chain starting with S.
        let forger_key = LinkKey::from_bytes([3; 32]);
        let forged_chain = vec![chain[0].clone(), id("Mallory_1")];
        let sealed = seal(&forger_key.transfer(&forged_chain[1]), 1, &receiver, &forged_chain, b"x");
        let receiver_key = secret.key_for_chain(&forged_chain).unwrap();
        assert_eq!(open(&receiver_key, &receiver, &forged_chain, &sealed), Err(OpenError::Rejected));
        // Mallory, holding a key for the chain [T], cannot make one for [S, ...].
        let for_t = secret.link_key(&id("T_9"));
        let sealed = seal(&for_t.transfer(&id("Mallory_1")), 1, &receiver, &forged_chain, b"x");
        assert_eq!(open(&receiver_key, &receiver, &forged_chain, &sealed), Err(OpenError::Rejected));
        assert_eq!(secret.key_for_chain(&[]), None);
    }

    #[test]
    fn the_replay_window_accepts_each_counter_once() {
        let mut w = ReplayWindow::default();
        for c in [5, 6, 8, 7, 3] {
            assert_eq!(w.accept(c), Ok(()), "{c}");
        }
        for c in [5, 6, 7, 8, 3] {
            assert_eq!(w.accept(c), Err(OpenError::Replayed(c)), "{c}");
        }
        assert_eq!(w.accept(4), Ok(()), "late but new");
        assert_eq!(w.accept(100), Ok(()));
        assert_eq!(w.accept(36), Ok(()), "64 behind is still in the window");
        assert_eq!(w.accept(35), Err(OpenError::Replayed(35)), "too old to tell: refused");
        assert_eq!(w.accept(164), Ok(()));
        assert_eq!(w.accept(100), Err(OpenError::Replayed(100)), "exactly 64 behind, and seen");
        assert_eq!(w.accept(99), Err(OpenError::Replayed(99)), "65 behind: too old");
    }

    #[test]
    fn debug_never_shows_key_material() {
        let (secret, _, _, key) = setup();
        assert_eq!(format!("{secret:?} {key:?}"), "NodeSecret(..) LinkKey(..)");
    }
}
