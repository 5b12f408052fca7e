//! Finding a node's slot from its id: which shard of the store holds it, and the hasher of each
//! shard's id → slot map.
//!
//! A [`NodeId`] carries a 64-bit hash of its text, computed once when the id was made, and
//! hashes itself by writing that one word. So the maps need no general-purpose hasher over the
//! text: [`IdHashing`] mixes the word with a random key (so that ids chosen by a peer cannot be
//! lined up on purpose in one bucket run as easily as with an unkeyed mix), which costs a few
//! multiplications instead of a SipHash round per message.

use std::hash::{BuildHasher, Hasher};

use dz_core::NodeId;

/// log2 of the number of shards.
pub(crate) const SHARD_BITS: u32 = 6;

/// How many shards the store has: enough that two workers rarely want the same one at once.
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;

/// The shard that holds node `id`.
pub(crate) fn shard_of(id: &NodeId) -> usize {
    shard_of_hash(id.stable_hash())
}

/// The shard that holds the node whose id's [`NodeId::stable_hash`] is `hash`.
pub(crate) fn shard_of_hash(hash: u64) -> usize {
    (mix(hash) >> (64 - SHARD_BITS)) as usize
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
    fn shards_are_all_used_and_an_id_always_lands_in_the_same_one() {
        let mut seen = [0u32; SHARDS];
        for n in 0..10_000 {
            let id = NodeId::from(format!("Leaf_{n:012}"));
            let shard = shard_of(&id);
            assert_eq!(shard, shard_of(&NodeId::from(id.as_str())));
            seen[shard] += 1;
        }
        // 10,000 ids over 64 shards: about 156 each; none empty, none more than twice its share.
        assert!(seen.iter().all(|&n| n > 0 && n < 2 * 10_000 / SHARDS as u32), "{seen:?}");
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
