//! [`Letter`]: a message as it waits in a node's mailbox.

use dz_core::controller::AnyMessage;
use dz_core::NodeId;

/// A message waiting in a mailbox (16 bytes).
///
/// One from a node of this machine is its typed value and nothing more: its sender is not kept,
/// so that a local send clones no id (the logs of a dropped local message cannot name the
/// sender). One from afar is JSON, with its sender, decoded by the worker that runs the node.
pub(crate) enum Letter {
    Local(Box<dyn AnyMessage>),
    Remote(Box<RemoteLetter>),
}

/// What the logs say for the sender of a local letter.
pub(crate) const LOCAL_SENDER: &str = "(a node of this machine)";

/// A message from another machine.
pub(crate) struct RemoteLetter {
    pub(crate) from: NodeId,
    pub(crate) json: Box<[u8]>,
}

impl Letter {
    /// The message's name, for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Letter::Local(m) => m.name(),
            Letter::Remote(_) => "(from the network)",
        }
    }

    /// The sender, for logs: its id if the letter came from afar.
    pub(crate) fn sender(&self) -> &str {
        match self {
            Letter::Local(_) => LOCAL_SENDER,
            Letter::Remote(remote) => remote.from.as_str(),
        }
    }
}
