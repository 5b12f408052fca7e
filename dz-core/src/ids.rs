//! Identifiers of nodes and machines.
//!
//! An id reads `Prefix_<12 random characters>`, for example `Ponger_x3Kq9ZbT0aLm`. The random
//! characters come from a [`DetRng`] stream, so under the simulator every id is fixed by the
//! simulation's seed, and two runs with the same seed name their nodes alike.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rng::{fold_word, DetRng};

/// The characters a generated id's random part is made of, in order: a runtime that picks an id's
/// last character (see [`NodeId::from_entropy_ending`]) maps it back to a number by its place here.
pub const ID_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

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
    // `prefix`, `_` and ASCII: always UTF-8.
    with_new_id(prefix, rng, |bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// Draws a new id as [`new_id`] does (the same characters from the same stream) into a stack
/// buffer when it is short, and lends its bytes (ASCII when `prefix` is) to `f`: making an id
/// then costs no allocation of its own.
fn with_new_id<R>(prefix: &str, rng: &mut DetRng, f: impl FnOnce(&[u8]) -> R) -> R {
    let len = prefix.len() + 1 + ID_RANDOM_CHARS;
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let buf = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap[..]
    };
    write_new_id(prefix, rng, buf);
    f(buf)
}

/// Writes `prefix`, an underscore and 12 characters drawn from `rng` into `buf`, which is just
/// long enough.
fn write_new_id(prefix: &str, rng: &mut DetRng, buf: &mut [u8]) {
    buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
    buf[prefix.len()] = b'_';
    for c in &mut buf[prefix.len() + 1..] {
        *c = ID_ALPHABET[rng.below(ID_ALPHABET.len() as u64) as usize];
    }
}

/// Writes `prefix`, an underscore and 12 characters read off `entropy` into `buf`, which is just
/// long enough: six characters from each word, each the top of the word times 62 (the rest of
/// the product is the next step's word), so that every character is as good as uniform.
fn write_id_from_entropy(prefix: &str, entropy: [u64; 2], buf: &mut [u8]) {
    copy_short(&mut buf[..prefix.len()], prefix.as_bytes());
    buf[prefix.len()] = b'_';
    // Made in a fixed-size array (unrolled, no bounds checks) and copied in whole.
    let mut chars = [0u8; ID_RANDOM_CHARS];
    let (first, second) = chars.split_at_mut(ID_RANDOM_CHARS / 2);
    for (half, mut word) in [(first, entropy[0]), (second, entropy[1])] {
        for c in half {
            let product = u128::from(word) * ID_ALPHABET.len() as u128;
            *c = ID_ALPHABET[(product >> 64) as usize];
            word = product as u64;
        }
    }
    buf[prefix.len() + 1..].copy_from_slice(&chars);
}

/// Copies `src` into `dst` (as long): by two overlapping word copies when it is 4 to 16 bytes
/// long (a type name, most often), so that no call to `memcpy` is made for a few bytes.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let len = src.len();
    match (src.first_chunk::<8>(), src.last_chunk::<8>()) {
        (Some(head), Some(tail)) if len <= 16 => {
            dst[..8].copy_from_slice(head);
            dst[len - 8..].copy_from_slice(tail);
        }
        _ => match (src.first_chunk::<4>(), src.last_chunk::<4>()) {
            (Some(head), Some(tail)) if len < 8 => {
                dst[..4].copy_from_slice(head);
                dst[len - 4..].copy_from_slice(tail);
            }
            _ => dst.copy_from_slice(src),
        },
    }
}

/// [`write_id_from_entropy`], with the last character `ID_ALPHABET[ending % 62]` in place of
/// the one the second word would give.
fn write_id_from_entropy_ending(prefix: &str, entropy: [u64; 2], ending: u8, buf: &mut [u8]) {
    write_id_from_entropy(prefix, entropy, buf);
    if let Some(last) = buf.last_mut() {
        *last = ID_ALPHABET[usize::from(ending) % ID_ALPHABET.len()];
    }
}

/// [`fold_words`](crate::rng::fold_words)`(0, bytes)`, the hash an id is known by, computed a
/// word at a time (that one is a `const fn`, which reads a byte at a time).
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

/// The longest id kept inline, without an allocation of its own: `Prefix_<12 characters>` for
/// prefixes of up to 9 bytes (`Machine`, most node types).
const INLINE: usize = 22;

/// The text of an id: inline if it is short (always, then: the form is canonical), else shared.
/// 24 bytes either way.
#[derive(Clone, Eq)]
enum Text {
    /// The first `len` bytes are the id (valid UTF-8), the rest zeros.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Shared(Arc<str>),
}

impl Text {
    /// `bytes`, which are valid UTF-8 (`shared` makes the shared form of a long one).
    fn new(bytes: &[u8], shared: impl FnOnce() -> Arc<str>) -> Self {
        if bytes.len() <= INLINE {
            let mut inline = [0u8; INLINE];
            inline[..bytes.len()].copy_from_slice(bytes);
            Text::Inline { len: bytes.len() as u8, bytes: inline }
        } else {
            Text::Shared(shared())
        }
    }

    /// A new id's text, as [`with_new_id`] draws it.
    fn generate(prefix: &str, rng: &mut DetRng) -> Self {
        Text::written(prefix.len() + 1 + ID_RANDOM_CHARS, |buf| write_new_id(prefix, rng, buf))
    }

    /// An id's text as [`write_id_from_entropy`] writes it.
    fn from_entropy(prefix: &str, entropy: [u64; 2]) -> Self {
        Text::written(prefix.len() + 1 + ID_RANDOM_CHARS, |buf| write_id_from_entropy(prefix, entropy, buf))
    }

    /// An id's text as [`write_id_from_entropy_ending`] writes it.
    fn from_entropy_ending(prefix: &str, entropy: [u64; 2], ending: u8) -> Self {
        Text::written(prefix.len() + 1 + ID_RANDOM_CHARS, |buf| {
            write_id_from_entropy_ending(prefix, entropy, ending, buf)
        })
    }

    /// The text of `len` ASCII bytes that `write` writes into a buffer of just that length: in
    /// place when it is short, with no allocation.
    #[inline(always)]
    fn written(len: usize, write: impl FnOnce(&mut [u8])) -> Self {
        if len <= INLINE {
            let mut bytes = [0u8; INLINE];
            write(&mut bytes[..len]);
            return Text::Inline { len: len as u8, bytes };
        }
        let mut buf = vec![0u8; len];
        write(&mut buf);
        // The writers write a prefix given as `str`, `_` and ASCII: always UTF-8.
        Text::Shared(Arc::from(std::str::from_utf8(&buf).unwrap_or_default()))
    }

    /// The 64-bit hash of the text ([`hash_text`]); for an inline one, read in whole words
    /// from its zero-padded bytes.
    #[inline]
    fn hash(&self) -> u64 {
        match self {
            Text::Inline { len, bytes } => {
                // The three words of the zero-padded text: the last is read from the array's
                // last eight bytes, shifted down past the two that belong to the second word.
                let (head, tail) = (bytes.first_chunk::<16>(), bytes.last_chunk::<8>());
                let (Some(head), Some(tail)) = (head, tail) else { return 0 };
                let (w0, w1) = head.split_at(8);
                let word = |w: &[u8]| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(w);
                    u64::from_le_bytes(b)
                };
                let (w0, w1, w2) = (word(w0), word(w1), u64::from_le_bytes(*tail) >> 16);
                // Whole words, then the last part word (zero-padded, as `hash_text` pads it)
                // with its length in the top byte; unrolled, as an inline text has at most 22.
                let rest = u64::from(*len) % 8;
                let (whole, last) = match *len / 8 {
                    0 => (0, w0),
                    1 => (fold_word(0, w0), w1),
                    _ => (fold_word(fold_word(0, w0), w1), w2),
                };
                if rest > 0 {
                    fold_word(whole, last ^ (rest << 56))
                } else {
                    whole
                }
            }
            Text::Shared(text) => hash_text(text.as_bytes()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Text::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Text::Shared(text) => text.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `str` (or ASCII): always UTF-8.
            Text::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            Text::Shared(text) => text,
        }
    }
}

/// Whether two inline texts' bytes are the same, compared as their first 16 and their last 8
/// bytes (which overlap): two loads each, where comparing the arrays calls `memcmp` (and ids are
/// compared on every local send).
#[inline(always)]
fn same_inline(x: &[u8; INLINE], y: &[u8; INLINE]) -> bool {
    let head = |b: &[u8; INLINE]| b.first_chunk::<16>().map(|h| u128::from_le_bytes(*h));
    let tail = |b: &[u8; INLINE]| b.last_chunk::<8>().map(|t| u64::from_le_bytes(*t));
    head(x) == head(y) && tail(x) == tail(y)
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Text::Inline { len: a, bytes: x }, Text::Inline { len: b, bytes: y }) => a == b && same_inline(x, y),
            (Text::Shared(a), Text::Shared(b)) => Arc::ptr_eq(a, b) || a == b,
            // The form is canonical: an inline text is never equal to a shared one.
            _ => false,
        }
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// 24 bytes, and cheap to clone: an id of up to 22 bytes (`Prefix_<12 characters>` with a
        /// prefix of up to 9) is kept inline, with no allocation and no reference count; a
        /// longer one is a shared string. Its hash ([`stable_hash`](Self::stable_hash)) is
        /// computed when asked for, three multiplications for an inline id: not keeping it
        /// makes every handle and every slot of a node table 8 bytes smaller, and a machine
        /// keeps very many of both.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name {
            text: Text,
        }

        impl $name {
            /// Wraps an id string as it is (no check of its shape).
            pub fn new(id: impl AsRef<str>) -> Self {
                let id = id.as_ref();
                $name::of_text(Text::new(id.as_bytes(), || Arc::from(id)))
            }

            /// A new id: `prefix`, an underscore, then 12 characters drawn from `rng` (the id
            /// [`new_id`] would make from the same stream, with no allocation if it is short).
            ///
            /// ```
            #[doc = concat!("use dz_core::{ids::new_id, rng::DetRng, ", stringify!($name), "};")]
            ///
            #[doc = concat!("let id = ", stringify!($name), "::generate(\"Leaf\", &mut DetRng::from_seed(7));")]
            /// assert_eq!(id.as_str(), new_id("Leaf", &mut DetRng::from_seed(7)));
            /// ```
            pub fn generate(prefix: &str, rng: &mut DetRng) -> Self {
                $name::of_text(Text::generate(prefix, rng))
            }

            /// A new id: `prefix`, an underscore, then 12 characters read off the 128 bits of
            /// `entropy` (six from each word, every character as good as uniform), with no
            /// allocation if it is short.
            ///
            /// For a runtime that draws its ids from a fast random source instead of a
            /// [`DetRng`] stream: it costs two random words where
            /// [`generate`](Self::generate) draws twelve times (and keeps drawing the characters
            /// the simulator's traces were made with).
            ///
            /// ```
            #[doc = concat!("use dz_core::", stringify!($name), ";")]
            ///
            #[doc = concat!("let id = ", stringify!($name), "::from_entropy(\"Leaf\", [7, u64::MAX]);")]
            /// assert!(id.as_str().starts_with("Leaf_0000"));
            /// assert!(id.as_str().ends_with("zzzz"));
            /// assert_eq!(id.as_str().len(), "Leaf_".len() + 12);
            /// ```
            pub fn from_entropy(prefix: &str, entropy: [u64; 2]) -> Self {
                $name::of_text(Text::from_entropy(prefix, entropy))
            }

            /// [`from_entropy`](Self::from_entropy) with the last of the 12 characters chosen:
            /// [`ID_ALPHABET`]`[ending % 62]` (the other 11 come from `entropy` as there).
            ///
            /// For a runtime that places a node by its id's last character: it can then choose
            /// where a node it names goes. The id keeps 11 random characters (65 bits); ids that
            /// end alike are the only ones that can collide, so a runtime that spreads its
            /// endings evenly keeps about the collision odds of 12 random characters.
            ///
            /// ```
            #[doc = concat!("use dz_core::{ids::ID_ALPHABET, ", stringify!($name), "};")]
            ///
            #[doc = concat!("let id = ", stringify!($name), "::from_entropy_ending(\"Leaf\", [7, u64::MAX], 10);")]
            /// assert_eq!(id.as_bytes().last(), Some(&ID_ALPHABET[10]));
            /// assert_eq!(id.as_str(), "Leaf_000000zzzzzA");
            /// ```
            pub fn from_entropy_ending(prefix: &str, entropy: [u64; 2], ending: u8) -> Self {
                $name::of_text(Text::from_entropy_ending(prefix, entropy, ending))
            }

            fn of_text(text: Text) -> Self {
                $name { text }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                self.text.as_str()
            }

            /// The id's text as bytes (what [`as_str`](Self::as_str) gives, without looking at
            /// it again).
            pub fn as_bytes(&self) -> &[u8] {
                self.text.as_bytes()
            }

            /// A 64-bit hash of the id's text, the same on every platform and run.
            #[inline]
            pub fn stable_hash(&self) -> u64 {
                self.text.hash()
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            /// The order of the texts (byte order, which is `str`'s).
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.text.as_bytes().cmp(other.text.as_bytes())
            }
        }

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                state.write_u64(self.stable_hash());
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
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
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name::new(std::borrow::Cow::<'de, str>::deserialize(d)?))
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
    fn an_id_is_24_bytes_and_short_ones_are_inline() {
        assert_eq!(std::mem::size_of::<NodeId>(), 24);
        let short = NodeId::new("Machine_0123456789ab"); // 20 bytes
        assert!(matches!(short.text, Text::Inline { len: 20, .. }));
        let edge = NodeId::new("x".repeat(INLINE));
        assert!(matches!(edge.text, Text::Inline { .. }));
        let long = NodeId::new("x".repeat(INLINE + 1));
        assert!(matches!(long.text, Text::Shared(_)));
        // Inline and shared ids compare, order and hash by their text alike.
        for (a, b) in [(&short, &edge), (&edge, &long), (&short, &long)] {
            assert_eq!(a.cmp(b), a.as_str().cmp(b.as_str()));
            assert_ne!(a, b);
        }
        for id in [&short, &edge, &long] {
            let again = NodeId::from(id.as_str().to_owned());
            assert_eq!(*id, again);
            assert_eq!(id.stable_hash(), crate::rng::fold_words(0, id.as_bytes()));
            assert_eq!(serde_json::from_str::<NodeId>(&serde_json::to_string(id).unwrap()).unwrap(), again);
        }
        let unicode = NodeId::new("Knoten_ÄÖÜ");
        assert_eq!(unicode.as_str(), "Knoten_ÄÖÜ");
    }

    #[test]
    fn ids_hash_as_fold_words_does() {
        let text: String = (0..40u8).map(|i| char::from(b'a' + i % 26)).collect();
        for len in 0..=text.len() {
            let bytes = &text.as_bytes()[..len];
            assert_eq!(hash_text(bytes), crate::rng::fold_words(0, bytes), "{len} bytes");
            let id = NodeId::new(&text[..len]);
            assert_eq!(id.stable_hash(), crate::rng::fold_words(0, bytes), "an id of {len} bytes");
        }
    }

    #[test]
    fn a_short_copy_copies_every_length() {
        let src: Vec<u8> = (1..=40).collect();
        for len in 0..=40 {
            let mut dst = vec![0u8; len];
            copy_short(&mut dst, &src[..len]);
            assert_eq!(dst, src[..len], "length {len}");
        }
    }

    #[test]
    fn ids_from_entropy_use_every_character_and_spread_evenly() {
        let mut rng = DetRng::from_seed(9);
        let mut seen = [0u32; 62];
        let draws = 62 * 200;
        for _ in 0..draws / ID_RANDOM_CHARS {
            let id = NodeId::from_entropy("Leaf", [rng.next_u64(), rng.next_u64()]);
            assert_eq!(id, NodeId::new(id.as_str()));
            let random = &id.as_bytes()["Leaf_".len()..];
            assert_eq!(random.len(), ID_RANDOM_CHARS);
            for c in random {
                let at = ID_ALPHABET.iter().position(|a| a == c).expect("a character of the alphabet");
                seen[at] += 1;
            }
        }
        // About 200 each; a character drawn half or twice as often as that is a bias, not luck.
        assert!(seen.iter().all(|&n| (100..400).contains(&n)), "{seen:?}");
        let long = "P".repeat(30);
        let id = MachineId::from_entropy(&long, [1, 2]);
        assert!(matches!(id.text, Text::Shared(_)));
        assert_eq!(id.as_str().len(), 30 + 1 + ID_RANDOM_CHARS);
    }

    #[test]
    fn generated_ids_hash_like_ids_made_from_their_text() {
        let id = NodeId::generate("Leaf", &mut DetRng::from_seed(1));
        let again = NodeId::new(id.as_str());
        assert_eq!(id, again);
        assert_eq!(id.stable_hash(), again.stable_hash());
    }
}
