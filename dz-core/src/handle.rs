//! Handles: what it takes to send to a node ([`Handle`]) or to spawn on a machine
//! ([`MachineHandle`]), and the [`Transport`] inside a handle.
//!
//! Handles are plain data: they serialise to JSON, travel inside messages and node state, and
//! name everything by id and address, never by pointer. Their JSON shapes:
//!
//! ```json
//! {"type":"node","id":"Ponger_x3Kq9ZbT0aLm","node_type":"Ponger","machine":"Machine_0aZ...",
//!  "transport":{"address":"sim://Machine_0aZ...","chain":["Pinger_Qw..."],
//!               "key":"q0Xh...base64...="}}
//! {"type":"machine","id":"Machine_0aZ...","address":"sim://Machine_0aZ..."}
//! ```

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::HandleError;
use crate::ids::{MachineId, NodeId};
use crate::node::{HandleApi, Node};
use crate::security::{LinkKey, MAX_CHAIN};

/// Everything one sender needs to reach one receiver: the receiving machine's address, the
/// delegation chain of the handle (the node it was issued for, then each node it was transferred
/// to), and the link key of that chain, which seals messages between machines
/// ([`crate::security`]).
///
/// One `Arc`, so that handles stay small and cheap to clone. In JSON it is
/// `{"address":"..","chain":["..",..],"key":"<base64>"}`; its `Debug` never shows the key.
#[derive(Clone)]
pub struct Transport(Arc<TransportInner>);

struct TransportInner {
    address: Arc<str>,
    chain: Arc<[NodeId]>,
    key: LinkKey,
}

impl Transport {
    /// A transport to the machine at `address`, issued for the node `issued_for`, whose link key
    /// is `key` (the receiver's [`NodeSecret::link_key`](crate::security::NodeSecret::link_key)
    /// for `issued_for`).
    ///
    /// A node that spawns or issues many handles is the first link of each of their chains: the
    /// chain `[issued_for]` made last on this thread is kept and shared with the next transport
    /// issued for the same node, so those handles share one chain instead of allocating one
    /// each. (The chain is immutable, so sharing it is invisible; only memory is saved.)
    pub fn new(address: impl Into<Arc<str>>, issued_for: NodeId, key: LinkKey) -> Self {
        Transport(Arc::new(TransportInner { address: address.into(), chain: single_chain(issued_for), key }))
    }

    /// The address of the receiving machine.
    pub fn address(&self) -> &str {
        &self.0.address
    }

    /// The delegation chain: the node the handle was issued for, then every node it was
    /// transferred to, in order. The last one is the node meant to use it.
    pub fn chain(&self) -> &[NodeId] {
        &self.0.chain
    }

    /// The chain, shared: for runtimes, which hand it to the receiver without copying it.
    pub fn shared_chain(&self) -> &Arc<[NodeId]> {
        &self.0.chain
    }

    /// The link key of the chain.
    pub fn key(&self) -> &LinkKey {
        &self.0.key
    }

    /// The same transport, transferred on to `to`: the chain gains `to`, and the key is derived
    /// from the current one ([`LinkKey::transfer`]), locally.
    pub fn transferred(&self, to: NodeId) -> Self {
        let key = self.0.key.transfer(&to);
        let mut chain = self.0.chain.to_vec();
        chain.push(to);
        Transport(Arc::new(TransportInner { address: self.0.address.clone(), chain: chain.into(), key }))
    }
}

thread_local! {
    /// The one-link chain made last on this thread, for [`Transport::new`] to share.
    static LAST_SINGLE_CHAIN: std::cell::RefCell<Option<Arc<[NodeId]>>> = const { std::cell::RefCell::new(None) };
}

/// The chain `[issued_for]`: the one made last on this thread if it is the same, else a new one
/// (which is then kept in its place).
fn single_chain(issued_for: NodeId) -> Arc<[NodeId]> {
    LAST_SINGLE_CHAIN.with(|last| {
        let mut last = last.borrow_mut();
        match last.as_ref() {
            Some(chain) if chain.len() == 1 && chain[0] == issued_for => Arc::clone(chain),
            _ => {
                let chain: Arc<[NodeId]> = Arc::from([issued_for]);
                *last = Some(Arc::clone(&chain));
                chain
            }
        }
    })
}

impl PartialEq for Transport {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.address == other.0.address && self.0.chain == other.0.chain && self.0.key == other.0.key)
    }
}

impl Eq for Transport {}

impl Hash for Transport {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.address.hash(state);
        self.0.chain.hash(state);
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("address", &self.0.address)
            .field("chain", &self.0.chain)
            .field("key", &format_args!(".."))
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportRepr<'a> {
    address: Cow<'a, str>,
    chain: Cow<'a, [NodeId]>,
    key: Cow<'a, LinkKey>,
}

impl Serialize for Transport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TransportRepr {
            address: Cow::Borrowed(&self.0.address),
            chain: Cow::Borrowed(&self.0.chain),
            key: Cow::Borrowed(&self.0.key),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Transport {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = TransportRepr::deserialize(d)?;
        if repr.chain.is_empty() || repr.chain.len() > MAX_CHAIN {
            return Err(serde::de::Error::custom(HandleError::BadChain { len: repr.chain.len(), max: MAX_CHAIN }));
        }
        Ok(Transport(Arc::new(TransportInner {
            address: repr.address.into_owned().into(),
            chain: repr.chain.into_owned().into(),
            key: repr.key.into_owned(),
        })))
    }
}

/// A handle without its node type: what runtimes route by. Users hold [`Handle<N>`] instead.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawHandle {
    id: NodeId,
    node_type: Cow<'static, str>,
    machine: MachineId,
    transport: Transport,
}

impl RawHandle {
    /// A handle to node `id` of type `node_type` on `machine`, reached through `transport`.
    pub fn new(id: NodeId, node_type: impl Into<Cow<'static, str>>, machine: MachineId, transport: Transport) -> Self {
        RawHandle { id, node_type: node_type.into(), machine, transport }
    }

    /// The receiving node's id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The receiving node's type name.
    pub fn node_type(&self) -> &str {
        &self.node_type
    }

    /// The id of the machine the receiving node lives on.
    pub fn machine_id(&self) -> &MachineId {
        &self.machine
    }

    /// How to reach the receiving node.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The same handle with another transport.
    pub fn with_transport(&self, transport: Transport) -> Self {
        RawHandle { transport, ..self.clone() }
    }
}

impl fmt::Debug for RawHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{} via {:?}", self.id, self.machine, self.transport.chain())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeHandleRepr<'a> {
    #[serde(rename = "type")]
    kind: Cow<'a, str>,
    id: NodeId,
    node_type: Cow<'a, str>,
    machine: MachineId,
    transport: Transport,
}

impl Serialize for RawHandle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        NodeHandleRepr {
            kind: Cow::Borrowed("node"),
            id: self.id.clone(),
            node_type: Cow::Borrowed(&self.node_type),
            machine: self.machine.clone(),
            transport: self.transport.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawHandle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = NodeHandleRepr::deserialize(d)?;
        if repr.kind != "node" {
            return Err(serde::de::Error::custom(HandleError::WrongKind {
                expected: "node",
                found: repr.kind.into_owned(),
            }));
        }
        Ok(RawHandle {
            id: repr.id,
            node_type: Cow::Owned(repr.node_type.into_owned()),
            machine: repr.machine,
            transport: repr.transport,
        })
    }
}

/// A typed handle: lets one sender send messages of `N`'s type to one node of type `N`.
///
/// A handle dereferences to `N`'s generated send methods, so with a `Handle<Ponger>` whose node
/// has a `#[handler] fn ping(&mut self, n: u64)`, a handler writes `ponger.ping(ctx, 7)`; sending a
/// message `Ponger` has no handler for, or with the wrong argument types, does not compile.
///
/// Handles are made by the [`Context`](crate::Context): `spawn` returns one, `new_handle` makes one
/// to the node itself for another node, and `transfer_handle` passes one on. They serialise as
/// JSON (see the [module docs](self)); deserialising one as the wrong node type is an error.
///
/// # Examples
///
/// ```
/// # use dz_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] pub struct Ponger;
/// # #[node] impl Ponger { #[handler] fn ping(&mut self, n: u64) { let _ = n; } }
/// # #[derive(Serialize, Deserialize)] pub struct Pinger;
/// # #[node] impl Pinger { #[handler] fn pong(&mut self, n: u64) { let _ = n; } }
/// let mut sim = dz_core::sim::Simulation::new(1);
/// let machine = sim.add_machine();
/// let ponger: Handle<Ponger> = sim.spawn(Ponger, &machine);
///
/// let json = serde_json::to_string(&ponger).unwrap();
/// let back: Handle<Ponger> = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, ponger);
/// assert!(serde_json::from_str::<Handle<Pinger>>(&json).is_err()); // not a Pinger
/// ```
pub struct Handle<N: Node> {
    api: N::Api,
    _node: PhantomData<fn() -> N>,
}

impl<N: Node> Handle<N> {
    /// Types a raw handle, checking that it is for a node of type `N`.
    ///
    /// # Errors
    ///
    /// [`HandleError::WrongNodeType`] when the handle is for another type of node.
    pub fn from_raw(raw: RawHandle) -> Result<Self, HandleError> {
        if raw.node_type != N::TYPE_NAME {
            return Err(HandleError::WrongNodeType { expected: N::TYPE_NAME, found: raw.node_type.into_owned() });
        }
        let raw = RawHandle { node_type: Cow::Borrowed(N::TYPE_NAME), ..raw };
        Ok(Handle { api: N::Api::from_raw(raw), _node: PhantomData })
    }

    /// Types a raw handle made by this crate for a node of type `N`.
    pub(crate) fn typed(raw: RawHandle) -> Self {
        debug_assert_eq!(raw.node_type, N::TYPE_NAME);
        Handle { api: N::Api::from_raw(raw), _node: PhantomData }
    }

    /// The receiving node's id.
    pub fn id(&self) -> &NodeId {
        self.api.raw().id()
    }

    /// The id of the machine the receiving node lives on.
    pub fn machine_id(&self) -> &MachineId {
        self.api.raw().machine_id()
    }

    /// The untyped handle.
    pub fn raw(&self) -> &RawHandle {
        self.api.raw()
    }

    /// The untyped handle, by value.
    pub fn into_raw(self) -> RawHandle {
        self.api.raw().clone()
    }
}

/// Names a [`Handle`] already has, which `#[node]` therefore refuses as handler names (a
/// handler called `id` would be hidden behind [`Handle::id`]).
#[doc(hidden)]
pub const RESERVED_HANDLE_METHODS: &[&str] = &[
    "id",
    "machine_id",
    "raw",
    "into_raw",
    "from_raw",
    "clone",
    "clone_from",
    "fmt",
    "eq",
    "ne",
    "hash",
    "serialize",
    "deserialize",
    "deref",
    "to_owned",
    "borrow",
    "into",
    "try_into",
    "type_id",
];

impl<N: Node> Deref for Handle<N> {
    type Target = N::Api;

    fn deref(&self) -> &N::Api {
        &self.api
    }
}

impl<N: Node> Clone for Handle<N> {
    fn clone(&self) -> Self {
        Handle { api: N::Api::from_raw(self.api.raw().clone()), _node: PhantomData }
    }
}

impl<N: Node> PartialEq for Handle<N> {
    fn eq(&self, other: &Self) -> bool {
        self.raw() == other.raw()
    }
}

impl<N: Node> Eq for Handle<N> {}

impl<N: Node> Hash for Handle<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw().hash(state);
    }
}

impl<N: Node> fmt::Debug for Handle<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle<{}>({:?})", N::TYPE_NAME, self.raw())
    }
}

impl<N: Node> Serialize for Handle<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw().serialize(s)
    }
}

impl<'de, N: Node> Deserialize<'de> for Handle<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Handle::from_raw(RawHandle::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// What it takes to spawn nodes on a machine: its id and address.
///
/// JSON: `{"type":"machine","id":"Machine_...","address":"..."}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MachineHandle {
    id: MachineId,
    address: Arc<str>,
}

impl MachineHandle {
    /// The handle of machine `id` listening at `address`.
    pub fn new(id: MachineId, address: impl Into<Arc<str>>) -> Self {
        MachineHandle { id, address: address.into() }
    }

    /// The machine's id.
    pub fn id(&self) -> &MachineId {
        &self.id
    }

    /// The machine's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The machine's address, shared: transports to this machine clone it instead of copying
    /// the text.
    pub fn shared_address(&self) -> &Arc<str> {
        &self.address
    }
}

impl fmt::Debug for MachineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MachineHandle({} at {})", self.id, self.address)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MachineHandleRepr<'a> {
    #[serde(rename = "type")]
    kind: Cow<'a, str>,
    id: MachineId,
    address: Cow<'a, str>,
}

impl Serialize for MachineHandle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MachineHandleRepr { kind: Cow::Borrowed("machine"), id: self.id.clone(), address: Cow::Borrowed(&self.address) }
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MachineHandle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = MachineHandleRepr::deserialize(d)?;
        if repr.kind != "machine" {
            return Err(serde::de::Error::custom(HandleError::WrongKind {
                expected: "machine",
                found: repr.kind.into_owned(),
            }));
        }
        Ok(MachineHandle { id: repr.id, address: repr.address.into_owned().into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::NodeSecret;

    fn transport(issued_for: &NodeId) -> Transport {
        Transport::new("sim://M", issued_for.clone(), NodeSecret::from_bytes([3; 32]).link_key(issued_for))
    }

    #[test]
    fn transports_issued_for_one_node_share_its_chain() {
        let (a, b) = (NodeId::new("A_1"), NodeId::new("B_1"));
        let first = transport(&a);
        let second = transport(&a);
        assert!(Arc::ptr_eq(first.shared_chain(), second.shared_chain()));
        let other = transport(&b);
        assert_eq!(other.chain(), std::slice::from_ref(&b));
        let third = transport(&a);
        assert_eq!(third.chain(), std::slice::from_ref(&a));
        assert!(!Arc::ptr_eq(first.shared_chain(), third.shared_chain()), "only the last chain is kept");
        // Transferring one of them leaves the others' chains alone.
        let on = first.transferred(b.clone());
        assert_eq!(on.chain(), [a.clone(), b]);
        assert_eq!(second.chain(), [a]);
    }
}
