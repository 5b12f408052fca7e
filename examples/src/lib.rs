//! Node types shared by dz's examples, so that the simulated and the real runs of an example use
//! the very same nodes.
#![warn(missing_docs, rust_2018_idioms)]

pub mod ping_pong;
pub mod sum_tree;
