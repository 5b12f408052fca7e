//! [`Letter`]: a message as it waits in a node's mailbox.

use std::sync::Arc;

use dz_core::controller::AnyMessage;
pub(crate) use dz_core::controller::Via;
use dz_core::parcel::{InlineMessage, Parcel};
use dz_core::{NodeId, Transport};

/// A message waiting in a mailbox (32 bytes: a 24-byte [`Parcel`] and its transport).
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
    /// an entry of the worker's table of transports (no reference count taken per letter).
    /// Made a `Local` letter again (the transport cloned) if it leaves the worker.
    Held(HeldLetter),
}

/// A [`Letter::Held`]: its message and the entry of its transport in the worker's table. Kept as
/// an enum of its own (not a [`Parcel`] beside the entry), so that it fits beside the tag of the
/// parcel in [`Letter::Local`] and a letter stays 32 bytes.
pub(crate) enum HeldLetter {
    Inline(InlineMessage, u32),
    Boxed(Box<dyn AnyMessage>, u32),
}

impl HeldLetter {
    /// `message`, sent through entry `via` of the table.
    #[inline(always)]
    pub(crate) fn new(message: Parcel, via: u32) -> Self {
        match message {
            Parcel::Inline(inline) => HeldLetter::Inline(inline, via),
            Parcel::Boxed(boxed) => HeldLetter::Boxed(boxed, via),
        }
    }

    /// The message and the entry.
    #[inline(always)]
    pub(crate) fn into_parts(self) -> (Parcel, u32) {
        match self {
            HeldLetter::Inline(inline, via) => (Parcel::Inline(inline), via),
            HeldLetter::Boxed(boxed, via) => (Parcel::Boxed(boxed), via),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            HeldLetter::Inline(inline, _) => inline.kind().name(),
            HeldLetter::Boxed(boxed, _) => boxed.name(),
        }
    }
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
            Letter::Local { message, .. } => message.name(),
            Letter::Held(held) => held.name(),
            Letter::Remote(_) => "(from the network)",
        }
    }

    /// The sender, for logs: its id if the letter came from afar.
    pub(crate) fn sender(&self) -> &str {
        match self {
            Letter::Local { .. } | Letter::Held(_) => LOCAL_SENDER,
            Letter::Remote(remote) => remote.from.as_str(),
        }
    }
}
