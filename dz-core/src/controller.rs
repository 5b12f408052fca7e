//! The runtime's side of the [`Context`]: the object-safe [`MachineController`]
//! trait and the type-erased values that cross it.
//!
//! Node code never names a runtime: every handler talks to a `dyn MachineController`, which the
//! simulator ([`crate::sim`]) and the real runtime each implement, so one node type compiles once
//! and runs on both. Users do not call this trait; runtime authors implement it.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Waker;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::handle::{MachineHandle, RawHandle, Transport};
use crate::ids::NodeId;
use crate::node::{Handled, Message, Node};
use crate::parcel::{InlineMessage, Parcel};
use crate::rng::DetRng;

/// A boxed task future, as given to [`MachineController::create_task`].
pub type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Makes the next message of a periodic timer.
pub type MessageMaker = Box<dyn FnMut() -> Parcel + Send + 'static>;

/// What a timer delivers.
pub enum TimerMessage {
    /// One message, once.
    Once(Parcel),
    /// A message made anew every `period_micros`.
    Every {
        /// The period, in microseconds (at least 1).
        period_micros: u64,
        /// Makes each message.
        make: MessageMaker,
    },
}

impl fmt::Debug for TimerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerMessage::Once(m) => f.debug_tuple("Once").field(&m.name()).finish(),
            TimerMessage::Every { period_micros, .. } => {
                f.debug_struct("Every").field("period_micros", period_micros).finish_non_exhaustive()
            }
        }
    }
}

/// The operations a machine offers its nodes. Every method takes `&self`: a controller is shared
/// by all the handlers and tasks of its machine.
pub trait MachineController: Send + Sync + 'static {
    /// This machine's handle.
    fn machine(&self) -> &MachineHandle;

    /// Microseconds since the machine's clock started (virtual under the simulator).
    fn now_micros(&self) -> u64;

    /// Sends a message; never fails in the caller: a message that cannot be delivered is dropped
    /// and counted (delivery is at most once).
    fn send(&self, envelope: Envelope<'_>);

    /// [`MachineController::send`] for a message carried inline ([`Parcel::Inline`]), which
    /// arrives in two registers rather than in an [`Envelope`] in memory: a runtime may implement
    /// it to write the message where it is kept straight from them. By default it sends the
    /// envelope.
    fn send_inline(&self, from: &NodeId, to: &RawHandle, message: InlineMessage) {
        self.send(Envelope { from, to, message: Parcel::Inline(message) });
    }

    /// Starts the node in `request` on `request.on`, as sent by node `from`, and returns the
    /// handle by which `from` reaches the new node (its key may be derived on demand:
    /// [`RawHandle::issued`]).
    fn spawn(&self, from: &NodeId, request: SpawnRequest<'_>) -> RawHandle;

    /// Terminates the node `target` (which may be `from` itself).
    fn terminate(&self, from: &NodeId, target: &RawHandle);

    /// A new id `prefix_<12 characters>` from this machine's id stream.
    fn new_id(&self, prefix: &str) -> NodeId;

    /// A transport that lets `for_node` reach `receiver`, a node of this machine.
    fn new_transport(&self, receiver: &NodeId, for_node: &NodeId) -> Transport;

    /// `transport`, held by `holder`, passed on to `for_node`.
    fn transfer_transport(&self, holder: &NodeId, transport: &Transport, for_node: &NodeId) -> Transport;

    /// The next draw of `node`'s own random stream.
    fn random_u64(&self, node: &NodeId) -> u64;

    /// Wakes `waker` once the clock reaches `deadline_micros`.
    fn wake_at(&self, deadline_micros: u64, waker: Waker);

    /// Delivers `message` to `node` itself after `delay_micros` (and, for
    /// [`TimerMessage::Every`], every period after that) until cancelled or the node ends.
    fn schedule(&self, node: &NodeId, delay_micros: u64, message: TimerMessage) -> TimerToken;

    /// Cancels a timer of `node`; `false` if it had already fired (one-shot) or was unknown.
    fn cancel_timer(&self, node: &NodeId, token: TimerToken) -> bool;

    /// Runs `task` beside `node` until it ends or the node does.
    fn create_task(&self, node: &NodeId, task: TaskFuture);

    /// `true` now and then under a simulation that enables it; never in a real runtime.
    fn buggify(&self, node: &NodeId) -> bool {
        let _ = node;
        false
    }
}

/// Names a timer made by [`Context::send_after`] or [`Context::send_every`], to cancel it.
///
/// It is plain data, so a node can keep it in its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimerToken(pub u64);

/// A message on its way: from which node, to which handle, and the typed message itself (it is
/// serialised only if it leaves its machine). It borrows the ids, so that a send clones only what
/// the runtime keeps.
pub struct Envelope<'a> {
    /// The sending node.
    pub from: &'a NodeId,
    /// The receiving handle.
    pub to: &'a RawHandle,
    /// The message.
    pub message: Parcel,
}

impl fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("message", &self.message.name())
            .finish()
    }
}

/// A message with its type erased. Implemented for every [`Message`].
pub trait AnyMessage: Send + 'static {
    /// `NodeType::handler`.
    fn name(&self) -> &'static str;
    /// [`stable_hash`](crate::rng::stable_hash) of the name.
    fn name_hash(&self) -> u64 {
        crate::rng::stable_hash(self.name().as_bytes())
    }
    /// [`AnyMessage::name`] and [`AnyMessage::name_hash`] in one call, for a runtime that
    /// traces every delivery.
    fn name_and_hash(&self) -> (&'static str, u64) {
        (self.name(), self.name_hash())
    }
    /// The message as JSON.
    ///
    /// # Errors
    ///
    /// When the message's `Serialize` implementation fails (a map with non-string keys, say).
    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error>;
    /// The message as `Any`, to be downcast to its node's message type.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    /// The message as `&Any`, to check its type.
    fn as_any(&self) -> &dyn Any;
    /// The [`TypeId`] of the message's own type (what [`AnyMessage::as_any`] would say), in one
    /// call.
    fn message_type_id(&self) -> TypeId {
        self.as_any().type_id()
    }
}

impl<M: Message> AnyMessage for M {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &'static str {
        Message::name(self)
    }

    fn name_hash(&self) -> u64 {
        Message::name_hash(self)
    }

    fn name_and_hash(&self) -> (&'static str, u64) {
        (Message::name(self), Message::name_hash(self))
    }

    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn message_type_id(&self) -> TypeId {
        TypeId::of::<M>()
    }
}

/// A request to start a node.
///
/// It borrows the machine's handle: a spawn clones nothing of it unless the runtime keeps it
/// (cloning a handle takes a reference count, two atomic operations a spawn need not pay).
pub struct SpawnRequest<'a> {
    /// The id the new node gets (reserved beforehand with [`Context::reserve_id`] or fresh).
    pub id: NodeId,
    /// The machine to start it on.
    pub on: &'a MachineHandle,
    /// The node's initial state.
    pub node: Box<dyn ErasedNode>,
}

impl fmt::Debug for SpawnRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnRequest")
            .field("id", &self.id)
            .field("on", &self.on)
            .field("node_type", &self.node.type_name())
            .finish()
    }
}

/// Makes a node of one type from its JSON state (a spawn that crossed machines).
pub type NodeFactory = fn(&[u8]) -> Result<Box<dyn ErasedNode>, serde_json::Error>;

/// What [`ErasedNode::handle`] did.
pub enum ErasedHandled {
    /// The handler ran to its end.
    Done,
    /// The message is for an `async` handler: run [`ErasedNode::handle_async`] with it.
    Async(Box<dyn Any + Send>),
}

impl fmt::Debug for ErasedHandled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErasedHandled::Done => f.write_str("Done"),
            ErasedHandled::Async(_) => f.write_str("Async(..)"),
        }
    }
}

/// The future of an erased `async` handler; it gives the node back when done.
pub type ErasedNodeFuture = Pin<Box<dyn Future<Output = Box<dyn ErasedNode>> + Send + 'static>>;

/// Why a runtime could not hand a message to a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The message was made for another type of node.
    #[error("message `{message}` is not for a node of type `{node_type}`")]
    WrongMessageType {
        /// The message's name.
        message: &'static str,
        /// The receiving node's type.
        node_type: &'static str,
    },
    /// The JSON does not decode as the node's message type.
    #[error("message for a `{node_type}` does not decode: {source}")]
    Decode {
        /// The receiving node's type.
        node_type: &'static str,
        /// What serde_json said.
        source: serde_json::Error,
    },
}

/// Where the delegation chain of a message being delivered comes from, for
/// [`Context::chain`]: what a runtime keeps beside a message until its handler runs.
#[derive(Debug)]
pub enum Via {
    /// A timer's message: no chain.
    Timer,
    /// The transport of the handle a message within the machine was sent through.
    Transport(Transport),
    /// A chain read off the wire.
    Chain(Arc<[NodeId]>),
}

impl Via {
    /// The chain.
    pub fn chain(&self) -> &[NodeId] {
        match self {
            Via::Timer => &[],
            Via::Transport(t) => t.chain(),
            Via::Chain(chain) => chain,
        }
    }

    /// The chain, shared (for an `async` handler, which keeps it).
    pub fn into_shared(self) -> Arc<[NodeId]> {
        match self {
            Via::Timer => Arc::from(Vec::new()),
            Via::Transport(t) => Arc::clone(t.shared_chain()),
            Via::Chain(chain) => chain,
        }
    }
}

/// What a runtime lends a synchronous handler call ([`ErasedNode::handle`]).
pub struct Call<'a> {
    /// The machine's controller.
    pub ctrl: &'a Arc<dyn MachineController>,
    /// The node's id.
    pub id: &'a NodeId,
    /// The delegation chain of the message ([`Context::chain`]).
    pub chain: &'a [NodeId],
    /// The node's own random stream, if the runtime keeps one per node; draws go through the
    /// controller otherwise.
    pub rng: Option<&'a mut DetRng>,
}

impl fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").field("id", self.id).field("chain", &self.chain).finish_non_exhaustive()
    }
}

/// A node with its type erased: what runtimes store and drive. Implemented for every [`Node`].
pub trait ErasedNode: Send + 'static {
    /// The node's [`Node::TYPE_NAME`].
    fn type_name(&self) -> &'static str;
    /// The node's state as JSON.
    ///
    /// # Errors
    ///
    /// When the state's `Serialize` implementation fails.
    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error>;
    /// Makes a node of this type from JSON.
    fn factory(&self) -> NodeFactory;
    /// Decodes a message for this node from JSON.
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Decode`] when the JSON is not one of this node's messages.
    fn decode_message(&self, json: &[u8]) -> Result<Parcel, DeliveryError>;
    /// Runs a synchronous handler, or gives an `async` handler's message back.
    ///
    /// # Errors
    ///
    /// [`DeliveryError::WrongMessageType`] when the message is not of this node's type.
    fn handle(&mut self, call: Call<'_>, message: Parcel) -> Result<ErasedHandled, DeliveryError>;
    /// [`ErasedNode::handle`] for a message carried inline, which arrives in two registers rather
    /// than as a [`Parcel`] in memory (a runtime that has the two words at hand saves a copy).
    ///
    /// # Errors
    ///
    /// As [`ErasedNode::handle`].
    fn handle_inline(&mut self, call: Call<'_>, message: InlineMessage) -> Result<ErasedHandled, DeliveryError>;
    /// Runs an `async` handler as a future that owns the node; `chain` is the message's
    /// delegation chain ([`Context::chain`]).
    fn handle_async(
        self: Box<Self>,
        ctrl: Arc<dyn MachineController>,
        id: NodeId,
        chain: Arc<[NodeId]>,
        message: Box<dyn Any + Send>,
    ) -> ErasedNodeFuture;
    /// Whether the node may have a `started` hook ([`Node::HAS_STARTED_HOOK`]).
    fn has_started_hook(&self) -> bool;
    /// Runs the node's `started` hook.
    fn started(&mut self, ctrl: &Arc<dyn MachineController>, id: &NodeId);
    /// Runs the node's `stopping` hook.
    fn stopping(&mut self, ctrl: &Arc<dyn MachineController>, id: &NodeId);
    /// The node's state, to be downcast for inspection.
    fn as_any(&self) -> &dyn Any;
}

/// The node's own message type, taken out of its parcel; a message of another type is taken
/// through JSON (a [`JsonMessage`] forwarded by the reliable layer, say), and is an error only if
/// that does not decode as the node's message type.
#[inline(always)]
fn open_message<N: Node>(message: Parcel) -> Result<N::Message, DeliveryError> {
    match message.take::<N::Message>() {
        Ok(message) => Ok(message),
        Err(other) => through_json::<N>(other),
    }
}

#[inline(never)]
fn through_json<N: Node>(message: Parcel) -> Result<N::Message, DeliveryError> {
    let name = message.name();
    let json =
        message.to_json().map_err(|_| DeliveryError::WrongMessageType { message: name, node_type: N::TYPE_NAME })?;
    serde_json::from_slice::<N::Message>(&json)
        .map_err(|source| DeliveryError::Decode { node_type: N::TYPE_NAME, source })
}

/// A message as JSON, for a node whose type the sender does not know: its receiver decodes it
/// as its own message type (and drops it, counted, if it does not decode).
#[derive(Clone, PartialEq, Eq)]
pub struct JsonMessage {
    json: Vec<u8>,
}

impl JsonMessage {
    /// Wraps `json`, which should be one of the receiver's messages.
    pub fn new(json: Vec<u8>) -> Self {
        JsonMessage { json }
    }
}

impl fmt::Debug for JsonMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonMessage({})", String::from_utf8_lossy(&self.json))
    }
}

impl AnyMessage for JsonMessage {
    fn name(&self) -> &'static str {
        "dz::JsonMessage"
    }

    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        Ok(self.json.clone())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[inline(always)]
fn dispatch<N: Node>(node: &mut N, call: Call<'_>, message: N::Message) -> ErasedHandled {
    let ctx = Context::for_runtime(call.ctrl, call.id).with_chain(call.chain);
    let mut ctx = match call.rng {
        Some(rng) => ctx.with_rng(rng),
        None => ctx,
    };
    match Node::handle(node, &mut ctx, message) {
        Handled::Done => ErasedHandled::Done,
        Handled::Async(m) => ErasedHandled::Async(Box::new(m)),
    }
}

fn from_json<N: Node>(json: &[u8]) -> Result<Box<dyn ErasedNode>, serde_json::Error> {
    Ok(Box::new(serde_json::from_slice::<N>(json)?))
}

impl<N: Node> ErasedNode for N {
    fn type_name(&self) -> &'static str {
        N::TYPE_NAME
    }

    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    fn factory(&self) -> NodeFactory {
        from_json::<N>
    }

    fn decode_message(&self, json: &[u8]) -> Result<Parcel, DeliveryError> {
        match serde_json::from_slice::<N::Message>(json) {
            Ok(m) => Ok(m.into_parcel()),
            Err(source) => Err(DeliveryError::Decode { node_type: N::TYPE_NAME, source }),
        }
    }

    fn handle(&mut self, call: Call<'_>, message: Parcel) -> Result<ErasedHandled, DeliveryError> {
        let message = open_message::<N>(message)?;
        Ok(dispatch(self, call, message))
    }

    fn handle_inline(&mut self, call: Call<'_>, message: InlineMessage) -> Result<ErasedHandled, DeliveryError> {
        let opened = match message.is::<N::Message>() {
            true => N::Message::from_inline(message),
            false => None,
        };
        let message = match opened {
            Some(message) => message,
            None => through_json::<N>(Parcel::Inline(message))?,
        };
        Ok(dispatch(self, call, message))
    }

    fn handle_async(
        self: Box<Self>,
        ctrl: Arc<dyn MachineController>,
        id: NodeId,
        chain: Arc<[NodeId]>,
        message: Box<dyn Any + Send>,
    ) -> ErasedNodeFuture {
        // `ErasedHandled::Async` only ever carries `N::Message`; anything else is a runtime bug.
        let message = match message.downcast::<N::Message>() {
            Ok(m) => *m,
            Err(_) => return Box::pin(async move { self as Box<dyn ErasedNode> }),
        };
        let future = Node::handle_async(self, Context::for_runtime_owned(ctrl, id).with_shared_chain(chain), message);
        Box::pin(async move { future.await as Box<dyn ErasedNode> })
    }

    fn has_started_hook(&self) -> bool {
        N::HAS_STARTED_HOOK
    }

    fn started(&mut self, ctrl: &Arc<dyn MachineController>, id: &NodeId) {
        Node::started(self, &mut Context::for_runtime(ctrl, id));
    }

    fn stopping(&mut self, ctrl: &Arc<dyn MachineController>, id: &NodeId) {
        Node::stopping(self, &mut Context::for_runtime(ctrl, id));
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
