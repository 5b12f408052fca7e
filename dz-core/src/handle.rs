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
use crate::security::{KeyIssuer, LinkKey, MAX_CHAIN};

/// Everything one sender needs to reach one receiver: the receiving machine's address, the
/// delegation chain of the handle (the node it was issued for, then each node it was transferred
/// to), and the link key of that chain, which seals messages between machines
/// ([`crate::security`]).
///
/// One `Arc`, so that handles stay small and cheap to clone. Inside a [`RawHandle`] it also
/// keeps the receiving node's type and machine, so that a handle is an id and this pointer (40
/// bytes). In JSON it is `{"address":"..","chain":["..",..],"key":"<base64>"}`; its `Debug`
/// never shows the key.
///
/// # Keys issued on demand
///
/// A machine that spawns a node for one of its own nodes (or its client) does not derive the
/// new handle's key at once: it issues the handle through its [`KeyIssuer`], and the key is
/// derived, from the machine's secret, only when the handle is serialised or a message is sealed
/// under it ([`RawHandle::key`]) — which for a handle that never leaves its machine is never. The
/// handles one holder gets that way share one transport, whose key depends on the receiver, so
/// the transport itself holds no key ([`Transport::key`] is `None`).
///
/// Such a transport must not become a key to another receiver. So only [`RawHandle::issued`],
/// which takes the issuing machine's [`KeyIssuer`] (whoever holds it holds the machine's secret
/// and can derive every key of that machine's nodes anyway), makes a handle that derives keys
/// from it. Taken out of its handle (with [`RawHandle::transport`]) and put into another one
/// ([`RawHandle::new`], [`RawHandle::with_transport`]) or passed on ([`Transport::transferred`]),
/// it has *no* key: that handle serialises to an error, and messages sealed under it (with a key
/// of zeros) are rejected by their receiver. To get a transport that carries its key, take it
/// from [`RawHandle::with_key`].
#[derive(Clone)]
pub struct Transport(Arc<TransportInner>);

#[derive(Clone)]
struct TransportInner {
    address: Arc<str>,
    chain: Arc<[NodeId]>,
    keying: Keying,
    /// The receiving node's machine and type, once the transport is in a handle.
    machine: Option<MachineId>,
    node_type: Cow<'static, str>,
}

/// Where a transport's key comes from.
#[derive(Clone)]
enum Keying {
    /// The key of the chain, carried along.
    Key(LinkKey),
    /// Derived on demand for the receiver of the handle the transport is in, by the machine
    /// that issued it; valid only in a handle made by [`RawHandle::issued`].
    Issued(KeyIssuer),
    /// None: an issued transport taken out of its handle.
    Void,
}

/// The key of a transport that has none: it opens nothing (its receiver derives another).
const VOID_KEY: LinkKey = LinkKey::from_bytes(VOID_KEY_BYTES);
const VOID_KEY_BYTES: [u8; 32] = [0; 32];

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
        Transport::with_keying(address.into(), single_chain(issued_for), Keying::Key(key))
    }

    /// A transport without a key of its own, issued by `issuer`'s machine (at `address`, with id
    /// `machine`) for the node `issued_for`, to reach nodes of type `node_type` there: the
    /// handles made from it by [`RawHandle::issued`] with the same issuer share it, and each
    /// derives its key on demand (see [the type's docs](Transport#keys-issued-on-demand)).
    pub fn issued(
        issuer: &KeyIssuer,
        address: impl Into<Arc<str>>,
        machine: MachineId,
        node_type: &'static str,
        issued_for: NodeId,
    ) -> Self {
        Transport(Arc::new(TransportInner {
            address: address.into(),
            chain: single_chain(issued_for),
            keying: Keying::Issued(issuer.clone()),
            machine: Some(machine),
            node_type: Cow::Borrowed(node_type),
        }))
    }

    fn with_keying(address: Arc<str>, chain: Arc<[NodeId]>, keying: Keying) -> Self {
        Transport(Arc::new(TransportInner { address, chain, keying, machine: None, node_type: Cow::Borrowed("") }))
    }

    /// The address of the receiving machine.
    pub fn address(&self) -> &str {
        &self.0.address
    }

    /// The address, shared: a runtime that issued the transport with its own address can tell it
    /// is local by the pointer alone.
    pub fn shared_address(&self) -> &Arc<str> {
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

    /// The link key of the chain; `None` for a transport whose key is derived on demand for the
    /// handle it is in (ask the handle: [`RawHandle::key`]) or that has none (see [the type's
    /// docs](Transport#keys-issued-on-demand)).
    pub fn key(&self) -> Option<&LinkKey> {
        match &self.0.keying {
            Keying::Key(key) => Some(key),
            Keying::Issued(_) | Keying::Void => None,
        }
    }

    /// The same transport, transferred on to `to`: the chain gains `to`, and the key is derived
    /// from the current one ([`LinkKey::transfer`]), locally. A transport without a key of its
    /// own gives one without a key: transfer the handle instead
    /// ([`Context::transfer_handle`](crate::Context::transfer_handle)), or take its transport
    /// from [`RawHandle::with_key`].
    pub fn transferred(&self, to: NodeId) -> Self {
        let keying = match &self.0.keying {
            Keying::Key(key) => Keying::Key(key.transfer(&to)),
            Keying::Issued(_) | Keying::Void => Keying::Void,
        };
        let mut chain = self.0.chain.to_vec();
        chain.push(to);
        Transport::with_keying(self.0.address.clone(), chain.into(), keying)
    }

    /// This transport, for a handle to a node of type `node_type` on `machine`: as it is if it
    /// already says so, else with those written in (in place when nobody else holds it). A
    /// transport issued without a key loses its way to derive one ([`Keying::Void`]) unless
    /// `issuer` issued it.
    fn for_handle(mut self, node_type: Cow<'static, str>, machine: &MachineId, issuer: Option<&KeyIssuer>) -> Self {
        let keeps_keying = match &self.0.keying {
            Keying::Issued(by) => issuer.is_some_and(|issuer| by.same_as(issuer)),
            Keying::Key(_) | Keying::Void => true,
        };
        // The type names of one node type are one `&'static str`: most compare by address.
        let same_type = match (&self.0.node_type, &node_type) {
            (Cow::Borrowed(a), Cow::Borrowed(b)) if std::ptr::eq(*a, *b) => true,
            (a, b) => a == b,
        };
        let fits = same_type && self.0.machine.as_ref() == Some(machine);
        if fits && keeps_keying {
            return self;
        }
        let inner = Arc::make_mut(&mut self.0);
        if !keeps_keying {
            inner.keying = Keying::Void;
        }
        inner.machine = Some(machine.clone());
        inner.node_type = node_type;
        self
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
        let (a, b) = (&*self.0, &*other.0);
        Arc::ptr_eq(&self.0, &other.0)
            || (a.address == b.address
                && a.chain == b.chain
                && a.machine == b.machine
                && a.node_type == b.node_type
                && match (&a.keying, &b.keying) {
                    (Keying::Key(a), Keying::Key(b)) => a == b,
                    (Keying::Issued(a), Keying::Issued(b)) => a.same_as(b),
                    (Keying::Void, Keying::Void) => true,
                    _ => false,
                })
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
        let key = match self.0.keying {
            Keying::Key(_) => "..",
            Keying::Issued(_) => "(derived on demand)",
            Keying::Void => "(none)",
        };
        f.debug_struct("Transport")
            .field("address", &self.0.address)
            .field("chain", &self.0.chain)
            .field("key", &format_args!("{key}"))
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

impl TransportRepr<'_> {
    fn into_transport(self) -> Result<Transport, HandleError> {
        if self.chain.is_empty() || self.chain.len() > MAX_CHAIN {
            return Err(HandleError::BadChain { len: self.chain.len(), max: MAX_CHAIN });
        }
        Ok(Transport::with_keying(
            self.address.into_owned().into(),
            self.chain.into_owned().into(),
            Keying::Key(self.key.into_owned()),
        ))
    }
}

/// Why a transport without a key does not serialise.
const NO_KEY: &str = "this transport has no key of its own: it was issued for a handle whose key is derived on \
                      demand (serialise that handle, or the transport of `RawHandle::with_key`)";

impl Serialize for Transport {
    /// # Errors
    ///
    /// For a transport without a key of its own (see [the type's
    /// docs](Transport#keys-issued-on-demand)).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(key) = self.key() else { return Err(serde::ser::Error::custom(NO_KEY)) };
        TransportRepr {
            address: Cow::Borrowed(&self.0.address),
            chain: Cow::Borrowed(&self.0.chain),
            key: Cow::Borrowed(key),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Transport {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TransportRepr::deserialize(d)?.into_transport().map_err(serde::de::Error::custom)
    }
}

/// A handle without its node type: what runtimes route by. Users hold [`Handle<N>`] instead.
///
/// 32 bytes: the receiving node's id and its [`Transport`], which also keeps the node's type and
/// machine (and is shared by the handles one holder got from one machine's spawns).
#[derive(Clone)]
pub struct RawHandle {
    id: NodeId,
    transport: Transport,
}

/// The machine of a transport made outside a handle, which a handle never has.
fn no_machine() -> &'static MachineId {
    static NONE: std::sync::OnceLock<MachineId> = std::sync::OnceLock::new();
    NONE.get_or_init(|| MachineId::new(""))
}

impl RawHandle {
    /// A handle to node `id` of type `node_type` on `machine`, reached through `transport`.
    ///
    /// A transport whose key is derived on demand keeps no way to derive one here: the handle
    /// has no key (see [`Transport`'s docs](Transport#keys-issued-on-demand)).
    pub fn new(id: NodeId, node_type: impl Into<Cow<'static, str>>, machine: MachineId, transport: Transport) -> Self {
        RawHandle { id, transport: transport.for_handle(node_type.into(), &machine, None) }
    }

    /// A handle to node `id` of type `node_type` on `machine`, through a transport `issuer`
    /// issued ([`Transport::issued`]): its key is derived on demand, from `id` and the chain
    /// (see [`Transport`'s docs](Transport#keys-issued-on-demand)). Only the machine whose
    /// secret `issuer` holds makes these, for its own nodes, whose secrets derive from its own
    /// ([`MachineSecret::node_secret`](crate::security::MachineSecret::node_secret)).
    /// Any other transport is taken as [`RawHandle::new`] takes it.
    pub fn issued(
        issuer: &KeyIssuer,
        id: NodeId,
        node_type: &'static str,
        machine: &MachineId,
        transport: Transport,
    ) -> Self {
        RawHandle { id, transport: transport.for_handle(Cow::Borrowed(node_type), machine, Some(issuer)) }
    }

    /// The receiving node's id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The receiving node's type name.
    pub fn node_type(&self) -> &str {
        &self.transport.0.node_type
    }

    /// The id of the machine the receiving node lives on.
    pub fn machine_id(&self) -> &MachineId {
        self.transport.0.machine.as_ref().unwrap_or_else(|| no_machine())
    }

    /// How to reach the receiving node. Its key may be derived on demand ([`RawHandle::key`]).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The link key of this handle: the one its transport carries, or derived now from its
    /// issuing machine's secret, or, for a handle without a key, one of zeros, which opens
    /// nothing (see [`Transport`'s docs](Transport#keys-issued-on-demand)).
    pub fn key(&self) -> Cow<'_, LinkKey> {
        match &self.transport.0.keying {
            Keying::Key(key) => Cow::Borrowed(key),
            Keying::Issued(issuer) => Cow::Owned(issuer.key_for(&self.id, &self.transport.0.chain).unwrap_or(VOID_KEY)),
            Keying::Void => Cow::Owned(VOID_KEY),
        }
    }

    /// Whether the handle has a key (its transport's, or one derived on demand).
    pub fn has_key(&self) -> bool {
        !matches!(self.transport.0.keying, Keying::Void)
    }

    /// The same handle with a transport of its own that carries the key: derived now if the
    /// handle's key is derived on demand, else the handle as it is.
    pub fn with_key(&self) -> RawHandle {
        let inner = &*self.transport.0;
        match inner.keying {
            Keying::Key(_) | Keying::Void => self.clone(),
            Keying::Issued(_) => RawHandle {
                id: self.id.clone(),
                transport: Transport(Arc::new(TransportInner {
                    keying: Keying::Key(self.key().into_owned()),
                    ..inner.clone()
                })),
            },
        }
    }

    /// The same handle with another transport (taken as [`RawHandle::new`] takes it).
    pub fn with_transport(&self, transport: Transport) -> Self {
        let inner = &*self.transport.0;
        let machine = inner.machine.as_ref().unwrap_or_else(|| no_machine());
        RawHandle { id: self.id.clone(), transport: transport.for_handle(inner.node_type.clone(), machine, None) }
    }

    /// This handle, its type name the `'static` one (as it is, or rewritten in place).
    fn with_static_type(mut self, node_type: &'static str) -> Self {
        if let Cow::Owned(_) = self.transport.0.node_type {
            Arc::make_mut(&mut self.transport.0).node_type = Cow::Borrowed(node_type);
        }
        self
    }
}

impl PartialEq for RawHandle {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&*self.transport.0, &*other.transport.0);
        self.id == other.id
            && (Arc::ptr_eq(&self.transport.0, &other.transport.0)
                || (a.address == b.address
                    && a.chain == b.chain
                    && a.machine == b.machine
                    && a.node_type == b.node_type
                    && self.has_key() == other.has_key()
                    && self.key() == other.key()))
    }
}

impl Eq for RawHandle {}

impl Hash for RawHandle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.node_type().hash(state);
        self.machine_id().hash(state);
        self.transport.hash(state);
    }
}

impl fmt::Debug for RawHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{} via {:?}", self.id, self.machine_id(), self.transport.chain())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeHandleRepr<'a> {
    #[serde(rename = "type")]
    kind: Cow<'a, str>,
    id: Cow<'a, NodeId>,
    node_type: Cow<'a, str>,
    machine: Cow<'a, MachineId>,
    transport: TransportRepr<'a>,
}

impl Serialize for RawHandle {
    /// # Errors
    ///
    /// For a handle without a key (see [`Transport`'s docs](Transport#keys-issued-on-demand)).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.has_key() {
            return Err(serde::ser::Error::custom(NO_KEY));
        }
        let inner = &*self.transport.0;
        NodeHandleRepr {
            kind: Cow::Borrowed("node"),
            id: Cow::Borrowed(&self.id),
            node_type: Cow::Borrowed(&inner.node_type),
            machine: Cow::Borrowed(self.machine_id()),
            transport: TransportRepr {
                address: Cow::Borrowed(&inner.address),
                chain: Cow::Borrowed(&inner.chain),
                key: self.key(),
            },
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
        let transport = repr.transport.into_transport().map_err(serde::de::Error::custom)?;
        Ok(RawHandle::new(
            repr.id.into_owned(),
            Cow::Owned(repr.node_type.into_owned()),
            repr.machine.into_owned(),
            transport,
        ))
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
        if raw.node_type() != N::TYPE_NAME {
            return Err(HandleError::WrongNodeType { expected: N::TYPE_NAME, found: raw.node_type().to_owned() });
        }
        let raw = raw.with_static_type(N::TYPE_NAME);
        Ok(Handle { api: N::Api::from_raw(raw), _node: PhantomData })
    }

    /// Types a raw handle made by this crate for a node of type `N`.
    pub(crate) fn typed(raw: RawHandle) -> Self {
        debug_assert_eq!(raw.node_type(), N::TYPE_NAME);
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
    use crate::security::{MachineSecret, NodeSecret};

    /// A handle as a machine issues one when it spawns `receiver` for `holder`, its key derived
    /// on demand; and the machine's secret.
    fn issued(receiver: &str, holder: &str) -> (RawHandle, MachineSecret, KeyIssuer) {
        let secret = MachineSecret::from_bytes([9; 32]);
        let issuer = KeyIssuer::new(secret.clone());
        let machine = MachineId::new("Machine_1");
        let transport = Transport::issued(&issuer, "tcp://m", machine.clone(), "Idle", NodeId::new(holder));
        (RawHandle::issued(&issuer, NodeId::new(receiver), "Idle", &machine, transport), secret, issuer)
    }

    #[test]
    fn a_raw_handle_is_32_bytes() {
        assert_eq!(std::mem::size_of::<RawHandle>(), 32);
    }

    #[test]
    fn keys_derived_on_demand_are_the_eager_keys_for_chains_of_one_to_three_links() {
        let (lazy, secret, _) = issued("Idle_1", "Client_1");
        let (receiver, holder) = (NodeId::new("Idle_1"), NodeId::new("Client_1"));
        // What the machine derived at spawn before: the node's secret, from the machine's.
        let eager_key = secret.node_secret(&receiver).link_key(&holder);
        assert_eq!(*lazy.key(), eager_key);
        let mut eager = RawHandle::new(
            receiver.clone(),
            "Idle",
            MachineId::new("Machine_1"),
            Transport::new("tcp://m", holder.clone(), eager_key),
        );
        assert_eq!(lazy, eager);
        assert_eq!(serde_json::to_string(&lazy).unwrap(), serde_json::to_string(&eager).unwrap());
        let mut handle = lazy.clone();
        let mut chain = vec![holder];
        for hop in ["Bob_1", "Carol_1"] {
            chain.push(NodeId::new(hop));
            eager = eager.with_transport(eager.transport().transferred(NodeId::new(hop)));
            handle = handle.with_transport(handle.with_key().transport().transferred(NodeId::new(hop)));
            assert_eq!(handle.transport().chain(), &chain[..]);
            assert_eq!(*handle.key(), *eager.key(), "{} links", chain.len());
            assert_eq!(Some(handle.key().into_owned()), secret.node_secret(&receiver).key_for_chain(&chain));
            assert_eq!(serde_json::to_string(&handle).unwrap(), serde_json::to_string(&eager).unwrap());
        }
        // Serialised, it comes back with the key in it.
        let back: RawHandle = serde_json::from_str(&serde_json::to_string(&lazy).unwrap()).unwrap();
        assert_eq!(back.transport().key(), Some(&*lazy.key()));
        assert_eq!(back, lazy);
    }

    #[test]
    fn an_issued_transport_put_in_another_handle_has_no_key() {
        let (lazy, secret, issuer) = issued("Idle_1", "Client_1");
        let (other, holder) = (NodeId::new("Idle_2"), NodeId::new("Client_1"));
        let stolen = lazy.transport().clone();
        assert_eq!(stolen.key(), None);
        assert!(serde_json::to_string(&stolen).is_err(), "a transport alone has no key to show");
        let valid = secret.node_secret(&other).link_key(&holder);
        let machine = MachineId::new("Machine_1");
        let forged = [
            RawHandle::new(other.clone(), "Idle", machine.clone(), stolen.clone()),
            lazy.with_transport(stolen.clone()),
            RawHandle::issued(
                &KeyIssuer::new(MachineSecret::from_bytes([9; 32])),
                other.clone(),
                "Idle",
                &machine,
                stolen.clone(),
            ),
            RawHandle::new(other.clone(), "Idle", machine.clone(), stolen.transferred(NodeId::new("Mallory_1"))),
        ];
        for handle in &forged {
            assert!(!handle.has_key(), "{handle:?}");
            assert_ne!(*handle.key(), valid);
            assert!(serde_json::to_string(handle).unwrap_err().to_string().contains("no key of its own"));
        }
        // The handle it came from is untouched, and its issuer still makes the handle it means.
        assert!(lazy.has_key());
        assert_eq!(*lazy.key(), secret.node_secret(&NodeId::new("Idle_1")).link_key(&holder));
        let rightful = RawHandle::issued(&issuer, other, "Idle", &machine, stolen);
        assert_eq!(*rightful.key(), valid);
    }

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
