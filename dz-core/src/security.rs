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
//!   data is the receiver's id and the chain, and the nonce is a per-link counter behind the
//!   sending side's random instance number ([`LinkNonce`]). [`open`]
//!   rejects a tampered message, one sealed under another key, one re-addressed to another
//!   receiver, and one whose chain was changed. A [`ReplayWindow`] rejects a counter it has
//!   already accepted.
//! - A runtime may seal several messages on one link as one: it takes the link's next nonce
//!   ([`SendLinks::next_nonce`]), writes their plaintext straight into its frame and seals it
//!   there ([`seal_in_place`]); the result opens with [`open`] like any sealed message, under
//!   the same key, associated data and replay window.
//!
//! - Runtimes keep a [`SendLinks`] and a [`RecvLinks`] per machine: the counters of the links
//!   it sends on, and the keys and replay windows of the links into it, with the
//!   [`Rejections`] counted by reason. Node secrets come from a [`MachineSecret`].
//!
//! # Speed
//!
//! dz seals many short messages. For those the portable backends of the `chacha20` and
//! `poly1305` crates beat their SIMD ones (Poly1305's AVX2 backend precomputes key powers for
//! every message): on a 2-vCPU EPYC VM, sealing and opening an 11-byte message took 4.2 µs with
//! the SIMD backends and 1.0 µs with the portable ones. This workspace builds with
//! `--cfg chacha20_force_soft --cfg poly1305_force_soft` (its `.cargo/config.toml`); an
//! application can pass the same flags in its own `RUSTFLAGS` or cargo config.
//!
//! No cryptography is written here: BLAKE3 and ChaCha20-Poly1305 come from their crates.
//!
//! # Examples
//!
//! ```
//! use dz_core::security::{open, seal, LinkNonce, NodeSecret, ReplayWindow};
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
//! let nonce = LinkNonce { instance: 0x5eed, counter: 1 };
//! let sealed = seal(&for_bob, nonce, &receiver, &chain, b"hello");
//! // The store recomputes Bob's key from its secret and the chain, and opens the message.
//! let key = secret.key_for_chain(&chain).unwrap();
//! assert_eq!(open(&key, &receiver, &chain, &sealed).unwrap(), (nonce, b"hello".to_vec()));
//!
//! // Bob cannot pass his message off as Alice's.
//! let alices_key = secret.key_for_chain(&chain[..1]).unwrap();
//! assert!(open(&alices_key, &receiver, &chain[..1], &sealed).is_err());
//!
//! let mut window = ReplayWindow::default();
//! assert!(window.accept(1).is_ok());
//! assert!(window.accept(1).is_err()); // a replay
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::handle::RawHandle;
use crate::ids::NodeId;
use crate::rng::DetRng;

/// The domain of link-key derivation from a node's own secret or a previous key, so that these
/// keys can never collide with another use of the same secret.
const LINK_CONTEXT: &[u8] = b"dz link v1";

/// The domain of link-key derivation from a machine's secret, for a node of that machine.
const MACHINE_LINK_CONTEXT: &[u8] = b"dz machine link v1";

fn random_bytes(rng: &mut DetRng) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes
}

/// A machine's 32-byte secret, whence the secrets of the nodes spawned on it come: node `R`'s
/// key for a handle issued to `S` is `KDF(machine secret, R, S)`. Deriving instead of storing
/// keeps 32 bytes out of every node's slot and a hash out of every spawn, and is as strong:
/// whoever can read a machine's memory holds its nodes' secrets either way. Its `Debug` never
/// shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MachineSecret([u8; 32]);

impl MachineSecret {
    /// A secret of the given bytes (a real machine draws them from the OS's entropy).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MachineSecret(bytes)
    }

    /// A secret drawn from `rng` (the simulator's seeded streams).
    pub fn from_rng(rng: &mut DetRng) -> Self {
        MachineSecret(random_bytes(rng))
    }

    /// The secret of node `node` of this machine. Nothing is computed until it issues a key.
    pub fn node_secret(&self, node: &NodeId) -> NodeSecret {
        NodeSecret(Secret::OfMachine(self.0, node.clone()))
    }
}

impl fmt::Debug for MachineSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MachineSecret(..)")
    }
}

/// What a machine issues handles to its own nodes with, whose keys are derived on demand: its
/// [`MachineSecret`], shared. A handle a machine makes when it spawns a node of its own carries
/// no key; the key is derived from this, the node's id and the handle's chain only when the handle
/// is serialised or a message is sealed under it ([`RawHandle::key`](crate::RawHandle::key)), and
/// is the key [`NodeSecret::key_for_chain`] gives for the node's secret
/// ([`MachineSecret::node_secret`]).
///
/// Only [`RawHandle::issued`](crate::RawHandle::issued), given the issuer, makes a handle that
/// derives keys this way: holding an issuer is holding the machine's secret, so that constructor
/// lets nobody derive a key they could not derive already. (See
/// [`Transport`](crate::Transport#keys-issued-on-demand).) Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct KeyIssuer(Arc<MachineSecret>);

impl KeyIssuer {
    /// An issuer of handles to the nodes of the machine whose secret is `secret`.
    pub fn new(secret: MachineSecret) -> Self {
        KeyIssuer(Arc::new(secret))
    }

    /// The machine's secret.
    pub fn secret(&self) -> &MachineSecret {
        &self.0
    }

    /// The key of the handle to `receiver`, a node of this machine, with the delegation chain
    /// `chain`; `None` for an empty chain.
    pub fn key_for(&self, receiver: &NodeId, chain: &[NodeId]) -> Option<LinkKey> {
        let (first, rest) = chain.split_first()?;
        let key = LinkKey(kdf(&self.0 .0, MACHINE_LINK_CONTEXT, &[receiver, first]));
        Some(rest.iter().fold(key, |key, next| key.transfer(next)))
    }

    /// Whether the two are one issuer (clones of one).
    pub(crate) fn same_as(&self, other: &KeyIssuer) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for KeyIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyIssuer(..)")
    }
}

/// A node's secret, from which it derives the keys of the handles it issues: 32 bytes of its
/// own (a node spawned from another machine gets them from its spawner), or its machine's
/// secret and its id ([`MachineSecret::node_secret`]). Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeSecret(Secret);

#[derive(Clone, PartialEq, Eq)]
enum Secret {
    Own([u8; 32]),
    OfMachine([u8; 32], NodeId),
}

impl NodeSecret {
    /// A secret of the given bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        NodeSecret(Secret::Own(bytes))
    }

    /// A secret drawn from `rng` (the simulator's seeded streams; a real machine uses the OS's
    /// entropy instead).
    pub fn from_rng(rng: &mut DetRng) -> Self {
        NodeSecret(Secret::Own(random_bytes(rng)))
    }

    /// The secret's bytes, for a runtime that ships a node's secret with a spawn request to
    /// another machine; `None` for a secret derived from its machine's, which never leaves it.
    /// Never log them.
    pub fn to_bytes(&self) -> Option<[u8; 32]> {
        match &self.0 {
            Secret::Own(bytes) => Some(*bytes),
            Secret::OfMachine(..) => None,
        }
    }

    /// The key of a handle issued for `sender`: `KDF(secret, sender)`.
    pub fn link_key(&self, sender: &NodeId) -> LinkKey {
        match &self.0 {
            Secret::Own(bytes) => LinkKey(kdf(bytes, LINK_CONTEXT, &[sender])),
            Secret::OfMachine(machine, node) => LinkKey(kdf(machine, MACHINE_LINK_CONTEXT, &[node, sender])),
        }
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

impl Serialize for NodeSecret {
    /// A node's own secret as base64; one derived from its machine's secret is never shipped,
    /// and refusing to serialise it says so.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Secret::Own(bytes) => s.serialize_str(&crate::base64::encode(bytes)),
            Secret::OfMachine(..) => {
                Err(serde::ser::Error::custom("a node secret derived from its machine's never leaves the machine"))
            }
        }
    }
}

impl<'de> Deserialize<'de> for NodeSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(NodeSecret::from_bytes(base64_bytes(d, "a node secret")?))
    }
}

/// The key of one link (one chain to one receiver). Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkKey([u8; 32]);

impl LinkKey {
    /// A key of the given bytes (as a transport carries them).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        LinkKey(bytes)
    }

    /// The key's bytes, to put in a transport.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The key of the same link passed on to `next`: `KDF(self, next)`.
    pub fn transfer(&self, next: &NodeId) -> LinkKey {
        LinkKey(kdf(&self.0, LINK_CONTEXT, &[next]))
    }
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

fn base64_bytes<'de, D: Deserializer<'de>>(d: D, what: &str) -> Result<[u8; 32], D::Error> {
    let text = std::borrow::Cow::<str>::deserialize(d)?;
    crate::base64::decode::<32>(&text).ok_or_else(|| {
        serde::de::Error::custom(format_args!("{what} is 32 bytes in base64 (44 characters, ending in `=`)"))
    })
}

impl Serialize for LinkKey {
    /// The key as base64.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::base64::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for LinkKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(LinkKey(base64_bytes(d, "a link key")?))
    }
}

/// BLAKE3 in keyed mode over `context` and then each id, each id preceded by its length (so that
/// no two lists of ids give the same input). Short inputs, the usual case, are hashed in one
/// call from the stack.
fn kdf(key: &[u8; 32], context: &[u8], ids: &[&NodeId]) -> [u8; 32] {
    let mut buf = [0u8; 128];
    let mut len = context.len();
    let fits = len + ids.iter().map(|id| 4 + id.as_bytes().len()).sum::<usize>() <= buf.len();
    if fits {
        buf[..len].copy_from_slice(context);
        for id in ids {
            let bytes = id.as_bytes();
            buf[len..len + 4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            buf[len + 4..len + 4 + bytes.len()].copy_from_slice(bytes);
            len += 4 + bytes.len();
        }
        return *blake3::keyed_hash(key, &buf[..len]).as_bytes();
    }
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(context);
    for id in ids {
        let bytes = id.as_bytes();
        hasher.update(&(bytes.len() as u32).to_le_bytes());
        hasher.update(bytes);
    }
    *hasher.finalize().as_bytes()
}

/// The associated data of a sealed message: the receiver and the chain, each length-prefixed so
/// that no two (receiver, chain) pairs give the same bytes.
fn associated_data<R>(receiver: &NodeId, chain: &[NodeId], with: impl FnOnce(&[u8]) -> R) -> R {
    let ids = || std::iter::once(receiver).chain(chain);
    let len: usize = ids().map(|id| 8 + id.as_bytes().len()).sum();
    let write = |aad: &mut [u8]| {
        let mut at = 0;
        for id in ids() {
            let bytes = id.as_bytes();
            aad[at..at + 8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            aad[at + 8..at + 8 + bytes.len()].copy_from_slice(bytes);
            at += 8 + bytes.len();
        }
    };
    // Most fit on the stack: a receiver and a chain of two or three ids.
    let mut stack = [0u8; 256];
    if len <= stack.len() {
        write(&mut stack[..len]);
        return with(&stack[..len]);
    }
    let mut heap = vec![0u8; len];
    write(&mut heap);
    with(&heap)
}

fn nonce(nonce: LinkNonce) -> Nonce {
    Nonce::from(nonce.to_bytes())
}

/// The nonce of one sealed message: the instance of the sending side of the link (drawn at
/// random when that side starts, so that two senders holding copies of one handle, or a sender
/// that restarted, never use a nonce twice with one key) and the instance's message counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkNonce {
    /// The sending side's instance.
    pub instance: u32,
    /// The message's number within the instance, from 1.
    pub counter: u64,
}

impl LinkNonce {
    /// The nonce's 12 bytes: the instance, then the counter, little-endian.
    pub fn to_bytes(self) -> [u8; NONCE_LEN] {
        let mut bytes = [0u8; NONCE_LEN];
        bytes[..4].copy_from_slice(&self.instance.to_le_bytes());
        bytes[4..].copy_from_slice(&self.counter.to_le_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8; NONCE_LEN]) -> Self {
        let mut instance = [0u8; 4];
        let mut counter = [0u8; 8];
        instance.copy_from_slice(&bytes[..4]);
        counter.copy_from_slice(&bytes[4..]);
        LinkNonce { instance: u32::from_le_bytes(instance), counter: u64::from_le_bytes(counter) }
    }
}

/// How many bytes a nonce takes at the front of a sealed message.
pub const NONCE_LEN: usize = 12;

/// How many bytes sealing adds: the nonce (12) and the tag (16).
pub const SEAL_OVERHEAD: usize = NONCE_LEN + 16;

/// The longest delegation chain a receiver accepts: a handle passed on more often than this is
/// refused, so that a hostile frame cannot make a receiver derive keys without end.
pub const MAX_CHAIN: usize = 64;

/// Seals `plaintext` for `receiver` under `key`, whose chain is `chain`, with `nonce`. A nonce
/// must never be used twice with one key ([`SendLinks`] keeps that promise).
///
/// The result is the nonce (12 bytes), then the ciphertext and its 16-byte tag.
pub fn seal(key: &LinkKey, nonce_: LinkNonce, receiver: &NodeId, chain: &[NodeId], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
    out.extend_from_slice(&nonce_.to_bytes());
    out.extend_from_slice(plaintext);
    // Encryption fails only for inputs beyond ChaCha20's 256 GiB limit, which no message reaches;
    // such a message is sealed as empty and will not open.
    let tag = associated_data(receiver, chain, |aad| {
        cipher.encrypt_in_place_detached(&nonce(nonce_), aad, &mut out[NONCE_LEN..])
    });
    match tag {
        Ok(tag) => out.extend_from_slice(&tag),
        Err(_) => out.truncate(NONCE_LEN),
    }
    out
}

/// Seals in place what [`seal`] seals, for a runtime that writes the sealed message straight
/// into its frame: `buf[at..]` is the plaintext; it is encrypted where it lies and the 16-byte
/// tag appended. The caller has written `nonce` (its [`LinkNonce::to_bytes`]) just before `at`,
/// so that `buf[at - NONCE_LEN..]` ends up as `seal` would have made it, and opens with
/// [`open`]. A nonce must never be used twice with one key.
///
/// Encryption fails only for inputs beyond ChaCha20's 256 GiB limit, which no message reaches;
/// such a plaintext is cut off (`buf` ends at `at`, without a tag) and will not open.
pub fn seal_in_place(
    key: &LinkKey,
    nonce_: LinkNonce,
    receiver: &NodeId,
    chain: &[NodeId],
    buf: &mut Vec<u8>,
    at: usize,
) {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    let tag =
        associated_data(receiver, chain, |aad| cipher.encrypt_in_place_detached(&nonce(nonce_), aad, &mut buf[at..]));
    match tag {
        Ok(tag) => buf.extend_from_slice(&tag),
        Err(_) => buf.truncate(at),
    }
}

/// Why a sealed message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Too short to hold a nonce and a tag.
    #[error("a sealed message is at least {SEAL_OVERHEAD} bytes")]
    TooShort,
    /// The tag does not verify: the message was changed, sealed under another key (a forged or
    /// made-up key, a chain not descending from a handle the receiver issued), or meant for
    /// another receiver or chain.
    #[error("the message does not open: tampered, forged, or meant for another receiver or chain")]
    Rejected,
    /// The nonce was already accepted on this link.
    #[error("message {counter} of instance {instance:08x} of this link was already accepted (a replay)")]
    Replayed {
        /// The sending side's instance.
        instance: u32,
        /// The message's counter.
        counter: u64,
    },
    /// The chain is empty or longer than [`MAX_CHAIN`].
    #[error("a delegation chain has 1 to {MAX_CHAIN} links")]
    BadChain,
    /// The receiver is not a node of this machine.
    #[error("the receiver is not here")]
    UnknownReceiver,
}

/// Opens a message sealed by [`seal`]; returns its nonce and plaintext.
///
/// # Errors
///
/// [`OpenError::TooShort`] or [`OpenError::Rejected`]; replays are the [`ReplayWindow`]'s job.
pub fn open(
    key: &LinkKey,
    receiver: &NodeId,
    chain: &[NodeId],
    sealed: &[u8],
) -> Result<(LinkNonce, Vec<u8>), OpenError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(OpenError::TooShort);
    }
    let (head, body) = sealed.split_at(NONCE_LEN);
    let mut bytes = [0u8; NONCE_LEN];
    bytes.copy_from_slice(head);
    let link_nonce = LinkNonce::from_bytes(&bytes);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    let (text, tag) = body.split_at(body.len() - 16);
    let mut plaintext = text.to_vec();
    associated_data(receiver, chain, |aad| {
        cipher.decrypt_in_place_detached(&Nonce::from(bytes), aad, &mut plaintext, Tag::from_slice(tag))
    })
    .map_err(|_| OpenError::Rejected)?;
    Ok((link_nonce, plaintext))
}

/// How many counters a [`ReplayWindow`] remembers: the highest accepted and the 1,023 below it.
pub const REPLAY_WINDOW: u64 = 1024;

const WINDOW_WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// The counters one sending instance of a link has had accepted: the highest, and which of the
/// [`REPLAY_WINDOW`] counters up to it. A counter is accepted once; one [`REPLAY_WINDOW`] or more
/// below the highest is taken for a replay too, as nothing tells it from one (it is lost like a
/// dropped message). The window is wide because a network may duplicate and reorder: a late
/// copy of a message far ahead moves the window, and everything it leaves behind is lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    highest: Option<u64>,
    /// Bit `c % REPLAY_WINDOW` set: counter `c`, within the window, was accepted.
    seen: [u64; WINDOW_WORDS],
}

impl ReplayWindow {
    fn bit(counter: u64) -> (usize, u64) {
        let at = counter % REPLAY_WINDOW;
        ((at / 64) as usize, 1 << (at % 64))
    }

    fn is_seen(&self, counter: u64) -> bool {
        let (word, bit) = Self::bit(counter);
        self.seen[word] & bit != 0
    }

    fn mark(&mut self, counter: u64, on: bool) {
        let (word, bit) = Self::bit(counter);
        if on {
            self.seen[word] |= bit;
        } else {
            self.seen[word] &= !bit;
        }
    }

    /// Accepts `counter` if it is new on this link.
    ///
    /// # Errors
    ///
    /// [`OpenError::Replayed`] (with instance 0; [`RecvLinks`] fills it in) if it was accepted
    /// before, or is too old to tell.
    pub fn accept(&mut self, counter: u64) -> Result<(), OpenError> {
        let replayed = Err(OpenError::Replayed { instance: 0, counter });
        let Some(highest) = self.highest else {
            self.highest = Some(counter);
            self.mark(counter, true);
            return Ok(());
        };
        if counter > highest {
            // The counters the window moves past are forgotten; their slots are the new ones'.
            let shift = counter - highest;
            if shift >= REPLAY_WINDOW {
                self.seen = [0; WINDOW_WORDS];
            } else {
                for c in highest + 1..=counter {
                    self.mark(c, false);
                }
            }
            self.mark(counter, true);
            self.highest = Some(counter);
            return Ok(());
        }
        if highest - counter >= REPLAY_WINDOW || self.is_seen(counter) {
            return replayed;
        }
        self.mark(counter, true);
        Ok(())
    }
}

/// The sending side of every link a machine sends on: for each (receiver, chain), its instance
/// and the next counter. A runtime keeps one per machine and seals every message that leaves
/// the machine through it.
///
/// It grows by one small entry per link used and does not shrink.
#[derive(Debug, Default)]
pub struct SendLinks {
    links: HashMap<(NodeId, Arc<[NodeId]>), LinkNonce>,
}

impl SendLinks {
    /// Seals `plaintext` for the node behind `to`, under the handle's key and with the link's
    /// next nonce. `new_instance` draws the instance of a link used for the first time (the
    /// simulator's seeded stream, or OS entropy).
    pub fn seal(&mut self, to: &RawHandle, plaintext: &[u8], new_instance: impl FnOnce() -> u32) -> Vec<u8> {
        let chain = to.transport().shared_chain();
        let next = self.next_nonce(to.id(), chain, new_instance);
        seal(&to.key(), next, to.id(), chain, plaintext)
    }

    /// Takes the next nonce of the link to `receiver` with the chain `chain`, for a runtime that
    /// seals the message itself ([`seal_in_place`]): one sealed message (or batch of messages)
    /// per nonce. `new_instance` draws the instance of a link used for the first time.
    pub fn next_nonce(
        &mut self,
        receiver: &NodeId,
        chain: &Arc<[NodeId]>,
        new_instance: impl FnOnce() -> u32,
    ) -> LinkNonce {
        match self.links.get_mut(&(receiver.clone(), Arc::clone(chain))) {
            Some(link) if link.counter < u64::MAX => {
                link.counter += 1;
                *link
            }
            found => {
                let fresh = LinkNonce { instance: new_instance(), counter: 1 };
                match found {
                    Some(link) => *link = fresh,
                    None => {
                        self.links.insert((receiver.clone(), Arc::clone(chain)), fresh);
                    }
                }
                fresh
            }
        }
    }

    /// How many links have been used.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether no link has been used.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
}

/// At most this many sending instances of one link are remembered; the oldest is forgotten
/// first (and counted, see [`Rejections::instances_forgotten`]).
const MAX_INSTANCES: usize = 8;

/// The receiving side of the links into a machine: each link's key (derived once, on its first
/// message that opens) and the replay windows of its sending instances, and the rejections so
/// far. A link is remembered only after a message on it has opened, so frames that do not open
/// cost a receiver work but no memory.
#[derive(Debug, Default)]
pub struct RecvLinks {
    links: HashMap<(NodeId, Arc<[NodeId]>), RecvLink>,
    rejections: Rejections,
}

#[derive(Debug)]
struct RecvLink {
    key: LinkKey,
    windows: Vec<(u32, ReplayWindow)>,
}

/// Messages that arrived sealed and were rejected, by reason. None of them reached a handler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejections {
    /// Too short to be a sealed message.
    pub malformed: u64,
    /// The tag did not verify: tampered, under a made-up or forged key, or re-addressed.
    pub bad_tag: u64,
    /// A nonce already accepted: a replay (or a duplicate the network made).
    pub replayed: u64,
    /// An empty chain, or one longer than [`MAX_CHAIN`].
    pub bad_chain: u64,
    /// For a node that is not on this machine.
    pub unknown_receiver: u64,
    /// Not a rejection: sending instances forgotten to keep a link's memory bounded.
    pub instances_forgotten: u64,
}

impl Rejections {
    /// Every rejected message, all reasons together.
    pub fn total(&self) -> u64 {
        self.malformed + self.bad_tag + self.replayed + self.bad_chain + self.unknown_receiver
    }

    /// The sum of two counts.
    pub(crate) fn plus(&self, other: &Rejections) -> Rejections {
        Rejections {
            malformed: self.malformed + other.malformed,
            bad_tag: self.bad_tag + other.bad_tag,
            replayed: self.replayed + other.replayed,
            bad_chain: self.bad_chain + other.bad_chain,
            unknown_receiver: self.unknown_receiver + other.unknown_receiver,
            instances_forgotten: self.instances_forgotten + other.instances_forgotten,
        }
    }

    fn count(&mut self, error: OpenError) {
        match error {
            OpenError::TooShort => self.malformed += 1,
            OpenError::Rejected => self.bad_tag += 1,
            OpenError::Replayed { .. } => self.replayed += 1,
            OpenError::BadChain => self.bad_chain += 1,
            OpenError::UnknownReceiver => self.unknown_receiver += 1,
        }
    }
}

impl RecvLinks {
    /// Opens a message sealed for `receiver` with the chain `chain`: checks the chain, derives
    /// the link's key from the receiver's secret (`secret` is asked only for a link seen for the
    /// first time, and gives `None` for a node that is not here), checks the tag, then the
    /// replay window. Every rejection is counted.
    ///
    /// # Errors
    ///
    /// The reason of the rejection.
    pub fn open(
        &mut self,
        receiver: &NodeId,
        chain: &Arc<[NodeId]>,
        sealed: &[u8],
        secret: impl FnOnce() -> Option<NodeSecret>,
    ) -> Result<Vec<u8>, OpenError> {
        let result = self.try_open(receiver, chain, sealed, secret);
        if let Err(error) = result {
            self.rejections.count(error);
        }
        result
    }

    fn try_open(
        &mut self,
        receiver: &NodeId,
        chain: &Arc<[NodeId]>,
        sealed: &[u8],
        secret: impl FnOnce() -> Option<NodeSecret>,
    ) -> Result<Vec<u8>, OpenError> {
        if chain.is_empty() || chain.len() > MAX_CHAIN {
            return Err(OpenError::BadChain);
        }
        let link_id = (receiver.clone(), Arc::clone(chain));
        let (nonce_, plaintext, link) = match self.links.get_mut(&link_id) {
            Some(link) => {
                let (nonce_, plaintext) = open(&link.key, receiver, chain, sealed)?;
                (nonce_, plaintext, link)
            }
            None => {
                let secret = secret().ok_or(OpenError::UnknownReceiver)?;
                let key = secret.key_for_chain(chain).ok_or(OpenError::BadChain)?;
                let (nonce_, plaintext) = open(&key, receiver, chain, sealed)?;
                (nonce_, plaintext, self.links.entry(link_id).or_insert(RecvLink { key, windows: Vec::new() }))
            }
        };
        let at = match link.windows.iter().position(|(instance, _)| *instance == nonce_.instance) {
            Some(at) => at,
            None => {
                if link.windows.len() == MAX_INSTANCES {
                    link.windows.remove(0);
                    self.rejections.instances_forgotten += 1;
                }
                link.windows.push((nonce_.instance, ReplayWindow::default()));
                link.windows.len() - 1
            }
        };
        link.windows[at]
            .1
            .accept(nonce_.counter)
            .map_err(|_| OpenError::Replayed { instance: nonce_.instance, counter: nonce_.counter })?;
        Ok(plaintext)
    }

    /// The rejections so far, by reason.
    pub fn rejections(&self) -> Rejections {
        self.rejections
    }

    /// Counts a rejection found outside [`RecvLinks::open`] (a frame that did not parse, a
    /// receiver the runtime does not know), so that every reason is counted in one place.
    pub fn count_rejection(&mut self, error: OpenError) {
        self.rejections.count(error);
    }

    /// Forgets the links into `receiver`, which has ended.
    pub fn forget_receiver(&mut self, receiver: &NodeId) {
        self.links.retain(|(to, _), _| to != receiver);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N1: LinkNonce = LinkNonce { instance: 1, counter: 1 };

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
        let n42 = LinkNonce { instance: 3, counter: 42 };
        let sealed = seal(&key, n42, &receiver, &chain, b"payload");
        assert_eq!(sealed.len(), b"payload".len() + SEAL_OVERHEAD);
        assert_eq!(open(&key, &receiver, &chain, &sealed), Ok((n42, b"payload".to_vec())));
    }

    #[test]
    fn every_changed_byte_is_rejected() {
        let (_, receiver, chain, key) = setup();
        let sealed = seal(&key, N1, &receiver, &chain, b"pay me 10");
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
        let sealed = seal(&key, N1, &receiver, &chain, b"x");
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
        let sealed = seal(&forger_key.transfer(&forged_chain[1]), N1, &receiver, &forged_chain, b"x");
        let receiver_key = secret.key_for_chain(&forged_chain).unwrap();
        assert_eq!(open(&receiver_key, &receiver, &forged_chain, &sealed), Err(OpenError::Rejected));
        // Mallory, holding a key for the chain [T], cannot make one for [S, ...].
        let for_t = secret.link_key(&id("T_9"));
        let sealed = seal(&for_t.transfer(&id("Mallory_1")), N1, &receiver, &forged_chain, b"x");
        assert_eq!(open(&receiver_key, &receiver, &forged_chain, &sealed), Err(OpenError::Rejected));
        assert_eq!(secret.key_for_chain(&[]), None);
    }

    #[test]
    fn the_replay_window_accepts_each_counter_once() {
        let replayed = |counter| Err(OpenError::Replayed { instance: 0, counter });
        let mut w = ReplayWindow::default();
        for c in [5, 6, 8, 7, 3] {
            assert_eq!(w.accept(c), Ok(()), "{c}");
        }
        for c in [5, 6, 7, 8, 3] {
            assert_eq!(w.accept(c), replayed(c), "{c}");
        }
        assert_eq!(w.accept(4), Ok(()), "late but new");
        assert_eq!(w.accept(2000), Ok(()));
        assert_eq!(w.accept(977), Ok(()), "1,023 behind is still in the window");
        assert_eq!(w.accept(976), replayed(976), "too old to tell: refused");
        assert_eq!(w.accept(1500), Ok(()));
        assert_eq!(w.accept(3000), Ok(()));
        assert_eq!(w.accept(2000), replayed(2000), "1,000 behind, and seen");
        assert_eq!(w.accept(1977), Ok(()), "1,023 behind, not seen: the slot was cleared when the window moved");
        assert_eq!(w.accept(1976), replayed(1976));
        assert_eq!(w.accept(1_000_000), Ok(()), "a jump past the whole window");
        assert_eq!(w.accept(3000), replayed(3000));
        assert_eq!(w.accept(999_999), Ok(()));
        assert_eq!(w.accept(999_999), replayed(999_999));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let (secret, _, _, key) = setup();
        assert_eq!(format!("{secret:?} {key:?}"), "NodeSecret(..) LinkKey(..)");
    }

    fn handle(secret: &NodeSecret, receiver: &NodeId, chain: &[NodeId]) -> RawHandle {
        let mut t = crate::Transport::new("sim://m", chain[0].clone(), secret.link_key(&chain[0]));
        for next in &chain[1..] {
            t = t.transferred(next.clone());
        }
        RawHandle::new(receiver.clone(), "R", crate::MachineId::new("M_1"), t)
    }

    #[test]
    fn links_seal_with_fresh_nonces_and_open_each_message_once() {
        let (secret, receiver, chain, _) = setup();
        let to = handle(&secret, &receiver, &chain);
        let mut send = SendLinks::default();
        let mut recv = RecvLinks::default();
        let first = send.seal(&to, b"one", || 7);
        let second = send.seal(&to, b"two", || unreachable!("the link exists"));
        assert_eq!(send.len(), 1);
        let chain = Arc::clone(to.transport().shared_chain());
        let secret_of = || Some(secret.clone());
        assert_eq!(recv.open(&receiver, &chain, &second, secret_of), Ok(b"two".to_vec()));
        assert_eq!(recv.open(&receiver, &chain, &first, || None), Ok(b"one".to_vec()), "the key is kept");
        assert_eq!(recv.open(&receiver, &chain, &first, || None), Err(OpenError::Replayed { instance: 7, counter: 1 }));
        // Another holder of the same handle (another machine) has its own instance.
        let other = SendLinks::default().seal(&to, b"three", || 8);
        assert_eq!(recv.open(&receiver, &chain, &other, || None), Ok(b"three".to_vec()));
        let mut tampered = other.clone();
        tampered[20] ^= 1;
        assert_eq!(recv.open(&receiver, &chain, &tampered, || None), Err(OpenError::Rejected));
        assert_eq!(recv.open(&id("Gone_1"), &chain, &other, || None), Err(OpenError::UnknownReceiver));
        assert_eq!(recv.open(&receiver, &Arc::from(Vec::new()), &other, || None), Err(OpenError::BadChain));
        assert_eq!(recv.open(&receiver, &chain, &other[..5], || None), Err(OpenError::TooShort));
        let r = recv.rejections();
        assert_eq!((r.replayed, r.bad_tag, r.unknown_receiver, r.bad_chain, r.malformed), (1, 1, 1, 1, 1));
        assert_eq!(r.total(), 5);
    }

    #[test]
    fn sealing_in_place_makes_what_seal_makes_and_nonces_count_up() {
        let (secret, receiver, chain, key) = setup();
        let to = handle(&secret, &receiver, &chain);
        let mut send = SendLinks::default();
        let shared = Arc::clone(to.transport().shared_chain());
        let first = send.next_nonce(&receiver, &shared, || 5);
        let second = send.next_nonce(&receiver, &shared, || unreachable!("the link exists"));
        assert_eq!((first, second), (LinkNonce { instance: 5, counter: 1 }, LinkNonce { instance: 5, counter: 2 }));
        // `seal` on the same link takes the next nonce after those.
        let third = send.seal(&to, b"three", || unreachable!());
        assert_eq!(open(&key, &receiver, &chain, &third).map(|(n, _)| n.counter), Ok(3));

        let mut buf = b"frame head".to_vec();
        buf.extend_from_slice(&second.to_bytes());
        let at = buf.len();
        buf.extend_from_slice(b"in place");
        seal_in_place(&key, second, &receiver, &chain, &mut buf, at);
        let sealed = &buf[at - NONCE_LEN..];
        assert_eq!(sealed, seal(&key, second, &receiver, &chain, b"in place"));
        assert_eq!(open(&key, &receiver, &chain, sealed), Ok((second, b"in place".to_vec())));
        assert_eq!(&buf[..at - NONCE_LEN], b"frame head");
    }

    #[test]
    fn a_frame_that_does_not_open_leaves_no_link_behind() {
        let (secret, receiver, chain, _) = setup();
        let mut recv = RecvLinks::default();
        let forged = seal(&LinkKey::from_bytes([9; 32]), N1, &receiver, &chain, b"x");
        let chain: Arc<[NodeId]> = chain.into();
        assert_eq!(recv.open(&receiver, &chain, &forged, || Some(secret.clone())), Err(OpenError::Rejected));
        assert!(recv.links.is_empty());
    }

    #[test]
    fn node_secrets_differ_by_node_and_machine() {
        let m = MachineSecret::from_rng(&mut DetRng::from_seed(1));
        let other = MachineSecret::from_rng(&mut DetRng::from_seed(2));
        let key = |m: &MachineSecret, node: &str| m.node_secret(&id(node)).link_key(&id("S_1"));
        assert_ne!(key(&m, "A_1"), key(&m, "B_1"));
        assert_ne!(key(&m, "A_1"), key(&other, "A_1"));
        assert_eq!(key(&m, "A_1"), key(&m.clone(), "A_1"));
        // Not the key a node with its own secret would make.
        assert_ne!(key(&m, "A_1"), NodeSecret::from_bytes([0; 32]).link_key(&id("S_1")));
        assert_eq!(m.node_secret(&id("A_1")).to_bytes(), None, "never shipped");
        assert!(serde_json::to_string(&m.node_secret(&id("A_1"))).is_err());
        assert_eq!(format!("{m:?}"), "MachineSecret(..)");
    }

    #[test]
    fn long_ids_hash_the_same_bytes_as_short_ones() {
        let key = [5u8; 32];
        for len in [1, 100, 114, 115, 300] {
            let long = NodeId::from("x".repeat(len).as_str());
            let mut input = LINK_CONTEXT.to_vec();
            input.extend_from_slice(&(len as u32).to_le_bytes());
            input.extend_from_slice(long.as_str().as_bytes());
            assert_eq!(kdf(&key, LINK_CONTEXT, &[&long]), *blake3::keyed_hash(&key, &input).as_bytes(), "{len}");
        }
    }

    #[test]
    fn key_material_is_base64_in_json() {
        let key = LinkKey::from_bytes([0xfb; 32]);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{}\"", crate::base64::encode(&[0xfb; 32])));
        assert_eq!(serde_json::from_str::<LinkKey>(&json).unwrap(), key);
        let error = serde_json::from_str::<LinkKey>("\"c2hvcnQ=\"").unwrap_err().to_string();
        assert!(error.contains("32 bytes in base64"), "{error}");
        let secret = NodeSecret::from_bytes([4; 32]);
        assert_eq!(serde_json::from_str::<NodeSecret>(&serde_json::to_string(&secret).unwrap()).unwrap(), secret);
    }
}
