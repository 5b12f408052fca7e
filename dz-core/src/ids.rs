//! Identifiers of nodes and machines.
//!
//! An id reads `Prefix_<12 random characters>`, for example `Ponger_x3Kq9ZbT0aLm`. The random
//! characters come from a [`DetRng`] stream, so under the simulator every id is fixed by the
//! simulation's seed, and two runs with the same seed name their nodes alike.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rng::{fold_words, DetRng};

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
    let mut id = String::with_capacity(prefix.len() + 1 + ID_RANDOM_CHARS);
    id.push_str(prefix);
    id.push('_');
    for _ in 0..ID_RANDOM_CHARS {
        id.push(ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char);
    }
    id
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
                $name { hash: fold_words(0, text.as_bytes()), text }
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
