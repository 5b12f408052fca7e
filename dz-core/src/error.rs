//! Error types.

use thiserror::Error;

/// Why a handle could not be made from what was given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The handle is for another type of node than the one asked for.
    #[error("this handle is for a node of type `{found}`, not `{expected}`")]
    WrongNodeType {
        /// The type asked for.
        expected: &'static str,
        /// The type the handle names.
        found: String,
    },
    /// The JSON is a handle of another kind (a machine handle where a node handle was expected).
    #[error("expected a {expected} handle (`\"type\":\"{expected}\"`), found `\"type\":\"{found}\"`")]
    WrongKind {
        /// The kind asked for: `node` or `machine`.
        expected: &'static str,
        /// The kind the JSON names.
        found: String,
    },
    /// A transport's delegation chain is empty or too long.
    #[error("a handle's delegation chain has 1 to {max} links, this one has {len}")]
    BadChain {
        /// The chain's length.
        len: usize,
        /// The longest chain accepted.
        max: usize,
    },
}
