//! Error types.

use std::io;

use thiserror::Error;

/// Why a machine could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MachineError {
    /// The listen address could not be bound.
    #[error("cannot listen on `{address}`: {source}")]
    Listen {
        /// The address asked for.
        address: String,
        /// What the OS said.
        source: io::Error,
    },
    /// A thread of the machine could not be started.
    #[error("cannot start a thread of the machine: {0}")]
    Thread(io::Error),
}

/// Why a frame could not be read.
#[derive(Debug, Error)]
pub(crate) enum FrameError {
    /// The frame announced more bytes than the limit; nothing was allocated for it.
    #[error("a frame of {len} bytes is over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// Reading failed, or the connection ended inside a frame.
    #[error("reading a frame: {0}")]
    Io(#[from] io::Error),
}
