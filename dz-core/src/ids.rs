//! Identifiers of nodes and machines.
//!
//! An id reads `Prefix_<12 random characters>`, for example `Ponger_x3Kq9ZbT0aLm`. The random
//! characters come from a [`DetRng`] stream, so under the simulator every id is fixed by the
//! simulation's seed, and two runs with the same seed name their nodes alike.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rng::{fold_word, DetRng};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// How many random characters follow the prefix.
pub const ID_RANDOM_CHARS: usize = 12;

/// A new id: `prefix`, an underscore, then 12 characters drawn from `rng`.
///
/// # Examples
///
/// ```
/// use dz_core::{ids::new_id, rng::DetRng};
///
/// let a = new_id("Leaf", &mut DetRng::stream(1, "ids"));
/// let b = new_id("Leaf", &mut DetRng::stream(1, "ids"));
/// assert_eq!(a, b); // same seed, same id
/// assert!(a.starts_with("Leaf_"));
/// assert_eq!(a.len(), "Leaf_".len() + 12);
/// ```
pub fn new_id(prefix: &str, rng: &mut DetRng) -> String {
    with_new_id(prefix, rng, str::to_owned)
}

/// Draws a new id as [`new_id`] does (the same characters from the same stream) and lends it to
/// `f`, from a stack buffer when it is short: making an id then costs no allocation of its own.
fn with_new_id<R>(prefix: &str, rng: &mut DetRng, f: impl FnOnce(&str) -> R) -> R {
    let len = prefix.len() + 1 + ID_RANDOM_CHARS;
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let buf = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap[..]
    };
    buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
    buf[prefix.len()] = b'_';
    for c in &mut buf[prefix.len() + 1..] {
        *c = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
    }
    // A `str`, then ASCII: always UTF-8.
    f(std::str::from_utf8(buf).unwrap_or_default())
}

/// [`fold_words`](crate::rng::fold_words)`(0, bytes)`, the hash an id keeps, computed a word at
/// a time (that one is a `const fn`, which reads a byte at a time).
fn hash_text(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut hash = 0;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        hash = fold_word(hash, u64::from_le_bytes(w));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        hash = fold_word(hash, u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
    }
    hash
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Cheap to clone (a shared string) and to hash (the hash is computed once, when the id is
        /// made, and kept beside it).
        #[derive(Clone)]
        pub struct $name {
            hash: u64,
            text: Arc<str>,
        }

        impl $name {
            /// Wraps an id string as it is (no check of its shape).
            pub fn new(id: impl Into<Arc<str>>) -> Self {
                let text = id.into();
                $name { hash: hash_text(text.as_bytes()), text }
            }

            /// A new id: `prefix`, an underscore, then 12 characters drawn from `rng` (the id
            /// [`new_id`] would make from the same stream, made with one allocation).
            ///
            /// ```
            #[doc = concat!("use dz_core::{ids::new_id, rng::DetRng, ", stringify!($name), "};")]
            ///
            #[doc = concat!("let id = ", stringify!($name), "::generate(\"Leaf\", &mut DetRng::from_seed(7));")]
            /// assert_eq!(id.as_str(), new_id("Leaf", &mut DetRng::from_seed(7)));
            /// ```
            pub fn generate(prefix: &str, rng: &mut DetRng) -> Self {
                with_new_id(prefix, rng, |text| $name::new(text))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.text
            }

            /// A 64-bit hash of the id's text, the same on every platform and run.
            pub fn stable_hash(&self) -> u64 {
                self.hash
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                // Ids are cloned far more often than they are made: most comparisons are of one
                // shared string, and the kept hash tells most different ones apart.
                self.hash == other.hash && (Arc::ptr_eq(&self.text, &other.text) || self.text == other.text)
            }
        }

        impl Eq for $name {}

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.text.cmp(&other.text)
            }
        }

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                state.write_u64(self.hash);
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.text, f)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name::new(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.text)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name::new(String::deserialize(d)?))
            }
        }
    };
}

string_id! {
    /// The id of a node, unique in its cluster: `NodeType_<12 characters>`.
    NodeId
}

string_id! {
    /// The id of a machine: `Machine_<12 characters>`.
    MachineId
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are part of every simulation's trace: the characters drawn for a seed must not change
    /// between versions. These were made by the first implementation of `new_id`.
    #[test]
    fn ids_drawn_from_a_seed_never_change() {
        let mut rng = DetRng::from_seed(7);
        assert_eq!(new_id("Leaf", &mut rng), "Leaf_srNFk7XQ4Nsu");
        assert_eq!(NodeId::generate("Leaf", &mut rng).as_str(), "Leaf_4Mz9OLK3iy7R");
        let long = "P".repeat(70); // longer than the stack buffer
        assert_eq!(MachineId::generate(&long, &mut rng).as_str(), format!("{long}_akcbVoR03HHO"));
    }

    #[test]
    fn ids_hash_as_fold_words_does() {
        let text: String = (0..40u8).map(|i| char::from(b'a' + i % 26)).collect();
        for len in 0..=text.len() {
            let bytes = &text.as_bytes()[..len];
            assert_eq!(hash_text(bytes), crate::rng::fold_words(0, bytes), "{len} bytes");
        }
    }

    #[test]
    fn generated_ids_hash_like_ids_made_from_their_text() {
        let id = NodeId::generate("Leaf", &mut DetRng::from_seed(1));
        let again = NodeId::new(id.as_str());
        assert_eq!(id, again);
        assert_eq!(id.stable_hash(), again.stable_hash());
    }
}
