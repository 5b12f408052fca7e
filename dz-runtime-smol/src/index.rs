//! Finding a node's slot from its id: which shard of the store holds it, and the hasher of each
//! shard's id → slot map.
//!
//! A [`NodeId`] hashes itself by writing one word, the 64-bit hash of its text (computed from
//! its inline words when asked for). So the maps need no general-purpose hasher over the
//! text: [`IdHashing`] mixes the word with a random key (so that ids chosen by a peer cannot be
//! lined up on purpose in one bucket run as easily as with an unkeyed mix), which costs a few
//! multiplications instead of a SipHash round per message.

use std::hash::{BuildHasher, Hasher};

use dz_core::ids::ID_ALPHABET;
use dz_core::NodeId;

/// log2 of the number of shards.
pub(crate) const SHARD_BITS: u32 = 6;

/// How many shards the store has: enough that two workers rarely want the same one at once.
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;

/// How many shards a generated id can name by its last character: one per character of
/// [`ID_ALPHABET`] (the last two shards hold only ids of other shapes).
pub(crate) const NAMED_SHARDS: usize = ID_ALPHABET.len();

/// The shard of an id by its last byte: a character of [`ID_ALPHABET`] names the shard of its
/// place there, any other byte the shard of its value modulo [`SHARDS`].
const SHARD_OF_LAST: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (byte % SHARDS) as u8;
        byte += 1;
    }
    let mut at = 0;
    while at < ID_ALPHABET.len() {
        table[ID_ALPHABET[at] as usize] = at as u8;
        at += 1;
    }
    table
};

/// The shard that holds node `id`: the one its last character names.
///
/// So a runtime that makes an id can choose its shard ([`NodeId::from_entropy_ending`]): the
/// ids one thread makes in a row go to one shard for a while (see `Core::fresh_id`), and the
/// spawns that fill their slots write one shard's slab and table in turn instead of one of 64
/// at random, which is what a spawn loop's cache misses came from. Ids of any other source
/// (reserved on another machine, seeded, or written by hand) land where their last character
/// says; which shard an id is in never decides more than which lock guards it.
#[inline]
pub(crate) fn shard_of(id: &NodeId) -> usize {
    id.as_bytes().last().map_or(0, |&last| usize::from(SHARD_OF_LAST[usize::from(last)]))
}

/// A bijective 64-bit mix (the finaliser of splitmix64): every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Builds [`IdHasher`]s that share one random key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHashing {
    key: u64,
}

impl IdHashing {
    /// A hashing with a fresh random key.
    pub(crate) fn new() -> Self {
        IdHashing { key: fastrand::u64(..) }
    }
}

impl BuildHasher for IdHashing {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher { state: self.key }
    }
}

/// Hashes the precomputed hash of a [`NodeId`] (or the 32 bits of it a shard keys its map by);
/// anything else is folded in word by word, so it stays a correct (if slower) hasher for any key.
#[derive(Debug)]
pub(crate) struct IdHasher {
    state: u64,
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        self.write_u64(bytes.len() as u64);
    }

    fn write_u64(&mut self, word: u64) {
        self.state = mix(self.state ^ word);
    }

    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn an_id_lands_in_the_shard_its_last_character_names() {
        for (at, &c) in ID_ALPHABET.iter().enumerate() {
            let id = NodeId::from_entropy_ending("Leaf", [at as u64, 7], at as u8);
            assert_eq!(id.as_bytes().last(), Some(&c));
            assert_eq!(shard_of(&id), at);
            assert_eq!(shard_of(&NodeId::from(id.as_str())), at);
        }
        // Other shapes: by the last byte's value, always within the store.
        assert_eq!(shard_of(&NodeId::from("worker-")), usize::from(b'-') % SHARDS);
        assert_eq!(shard_of(&NodeId::from("")), 0);
        for byte in 0..=u8::MAX {
            assert!(SHARD_OF_LAST[usize::from(byte)] < SHARDS as u8);
        }
    }

    #[test]
    fn random_ids_spread_over_the_named_shards() {
        let mut seen = [0u32; SHARDS];
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..10_000 {
            let id = NodeId::from_entropy("Leaf", [rng.u64(..), rng.u64(..)]);
            seen[shard_of(&id)] += 1;
        }
        // 10,000 ids over 62 shards: about 161 each; none empty, none more than twice its share.
        let share = 10_000 / NAMED_SHARDS as u32;
        assert!(seen[..NAMED_SHARDS].iter().all(|&n| n > share / 2 && n < 2 * share), "{seen:?}");
    }

    #[test]
    fn a_map_keyed_by_id_finds_what_it_holds() {
        let mut map = HashMap::with_hasher(IdHashing::new());
        for n in 0..1000u32 {
            map.insert(NodeId::from(format!("Leaf_{n}")), n);
        }
        for n in 0..1000u32 {
            assert_eq!(map.get(&NodeId::from(format!("Leaf_{n}"))), Some(&n));
        }
        assert_eq!(map.get(&NodeId::from("Leaf_x")), None);
    }

    #[test]
    fn two_hashings_have_different_keys_and_bytes_count() {
        let (a, b) = (IdHashing::new(), IdHashing::new());
        assert_ne!(a.hash_one(7u64), b.hash_one(7u64));
        assert_ne!(a.hash_one("ab"), a.hash_one("ab\0"));
    }
}
