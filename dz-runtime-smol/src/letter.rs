//! [`Letter`]: a message as it waits in a node's mailbox.

use std::sync::Arc;

pub(crate) use dz_core::controller::Via;
use dz_core::parcel::Parcel;
use dz_core::{NodeId, Transport};

/// A message waiting in a mailbox (40 bytes: a 24-byte [`Parcel`] and its transport).
///
/// One from a node of this machine is its typed value and the transport it was sent through
/// (one reference count: the handler reads the delegation chain from it, see
/// [`Context::chain`](dz_core::Context::chain)); its sender is not kept otherwise, so the logs of
/// a dropped local message do not name it. A timer's message has no transport (an empty chain).
/// One from afar is JSON (opened already, if it came sealed), with its sender and its chain,
/// decoded by the worker that runs the node.
pub(crate) enum Letter {
    Local {
        message: Parcel,
        via: Option<Transport>,
    },
    Remote(Box<RemoteLetter>),
    /// Only in the mail a worker keeps for a node it holds: a local letter whose transport is
    /// entry `via` of the worker's table of transports (no reference count taken per letter).
    /// Made a `Local` letter again (the transport cloned) if it leaves the worker.
    Held {
        message: Parcel,
        via: u32,
    },
}

/// What the logs say for the sender of a local letter.
pub(crate) const LOCAL_SENDER: &str = "(a node of this machine)";

/// A message from another machine.
pub(crate) struct RemoteLetter {
    /// The sender the frame names (for logs; not authenticated: the chain is).
    pub(crate) from: NodeId,
    /// The delegation chain of the handle it was sent through.
    pub(crate) chain: Arc<[NodeId]>,
    pub(crate) json: Box<[u8]>,
}

impl Letter {
    /// A message from a node of this machine, sent through `via`.
    pub(crate) fn local(message: Parcel, via: &Transport) -> Self {
        Letter::Local { message, via: Some(via.clone()) }
    }

    /// A timer's message: no sender, an empty chain.
    pub(crate) fn timer(message: Parcel) -> Self {
        Letter::Local { message, via: None }
    }

    /// The message's name, for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Letter::Local { message, .. } | Letter::Held { message, .. } => message.name(),
            Letter::Remote(_) => "(from the network)",
        }
    }

    /// The sender, for logs: its id if the letter came from afar.
    pub(crate) fn sender(&self) -> &str {
        match self {
            Letter::Local { .. } | Letter::Held { .. } => LOCAL_SENDER,
            Letter::Remote(remote) => remote.from.as_str(),
        }
    }
}
