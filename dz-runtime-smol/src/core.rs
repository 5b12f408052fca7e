//! The machine's shared core and its side of the [`MachineController`] trait: what a node's
//! context calls, and where local and remote traffic part ways.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Waker;
use std::time::Instant;

use async_executor::Executor;
use dz_core::controller::{
    Envelope, ErasedNode, MachineController, NodeFactory, SpawnRequest, TaskFuture, TimerMessage,
};
use dz_core::parcel::{InlineMessage, Parcel};
use dz_core::rng::DetRng;
use dz_core::security::{KeyIssuer, LinkNonce, MachineSecret, NodeSecret, OpenError, SendLinks};
use dz_core::{MachineHandle, NodeId, RawHandle, TimerToken, Transport};

use crate::index::NAMED_SHARDS;
use crate::letter::{Letter, RemoteLetter};
use crate::padded::Padded;
use crate::peer::{self, Peers};
use crate::stats::{bump, Counters};
use crate::store::{Store, Undeliverable};
use crate::timers::{instant_after, Timers};
use crate::wire::{self, Wire};

/// Node types this machine can spawn from JSON, by type name.
pub(crate) type Registry = BTreeMap<String, NodeFactory>;

/// Limits of a machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// The largest frame accepted from a peer.
    pub(crate) max_frame_bytes: usize,
    /// The most bytes queued for one peer before sends to it fail.
    pub(crate) max_backlog_bytes: usize,
    /// Messages between machines are sealed (and only sealed ones are accepted).
    pub(crate) sealing: bool,
}

/// How many locks the sending side of the machine's sealed links is split over (by receiver).
const SEND_SHARDS: usize = 16;

/// At most one warning per this many microseconds about rejected messages; the others are
/// counted in the next warning (and always in [`crate::MachineStats`]).
const REJECT_WARN_EVERY: u64 = 1_000_000;

/// Everything a machine's threads and tasks share.
pub(crate) struct Core {
    pub(crate) handle: MachineHandle,
    start: Instant,
    pub(crate) store: Arc<Store>,
    pub(crate) timers: Timers,
    pub(crate) peers: Peers,
    registry: Registry,
    pub(crate) stats: Arc<Counters>,
    pub(crate) config: Config,
    /// The stream ids are drawn from, if the machine was given a seed.
    ids: Option<Mutex<DetRng>>,
    /// Whence the secrets of this machine's nodes derive; from the OS's entropy.
    secret: MachineSecret,
    /// Issues the handles this machine makes when it spawns nodes of its own, whose keys are
    /// derived on demand from `secret` (the same secret).
    issuer: KeyIssuer,
    /// The sending side of the sealed links out of this machine (nonce counters), split by the
    /// receiver's hash.
    send_links: Box<[Padded<Mutex<SendLinks>>]>,
    /// When a rejection was last logged at warn (machine microseconds, plus one; 0: never), and
    /// how many were not logged since.
    reject_warned_at: AtomicU64,
    rejects_unlogged: AtomicU64,
    /// The nodes' random stream when the machine was given a seed; otherwise `fastrand`'s.
    seeded: Option<Mutex<DetRng>>,
    /// The I/O executor, taken out at shutdown (which drops its tasks and their sockets).
    io: Mutex<Option<Arc<Executor<'static>>>>,
    me: Weak<Core>,
}

impl Core {
    pub(crate) fn new(
        handle: MachineHandle,
        registry: Registry,
        config: Config,
        seed: u64,
        seeded: bool,
        io: Arc<Executor<'static>>,
    ) -> Arc<Self> {
        let stats = Arc::new(Counters::default());
        let salt = handle.id().stable_hash();
        let secret = os_secret();
        Arc::new_cyclic(|me| Core {
            start: Instant::now(),
            store: Store::new(Arc::clone(&stats)),
            timers: Timers::new(),
            peers: Peers::default(),
            registry,
            stats,
            config,
            ids: seeded.then(|| Mutex::new(DetRng::substream(seed, "ids", salt))),
            secret: secret.clone(),
            issuer: KeyIssuer::new(secret),
            send_links: (0..SEND_SHARDS).map(|_| Padded(Mutex::default())).collect(),
            reject_warned_at: AtomicU64::new(0),
            rejects_unlogged: AtomicU64::new(0),
            seeded: seeded.then(|| Mutex::new(DetRng::substream(seed, "nodes", salt))),
            io: Mutex::new(Some(io)),
            me: me.clone(),
            handle,
        })
    }

    /// Microseconds since the machine started.
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant of machine time `micros`.
    pub(crate) fn instant_of(&self, micros: u64) -> Instant {
        instant_after(self.start, micros)
    }

    fn arc(&self) -> Option<Arc<Core>> {
        self.me.upgrade()
    }

    /// Runs `fut` on the I/O thread (dropped if the machine is shutting down).
    pub(crate) fn spawn_io(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let io = self.io.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(executor) = io.as_ref() {
            executor.spawn(fut).detach();
        }
    }

    /// Takes the I/O executor out, so that dropping it ends every connection.
    pub(crate) fn take_io(&self) -> Option<Arc<Executor<'static>>> {
        self.io.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// A fresh id: from the machine's seeded stream if it was given a seed (so that a machine
    /// that spawns in the same order names its nodes alike), else from the calling thread's
    /// [`IdSource`], with no lock.
    pub(crate) fn fresh_id(&self, prefix: &str) -> NodeId {
        match &self.ids {
            Some(ids) => NodeId::generate(prefix, &mut ids.lock().unwrap_or_else(PoisonError::into_inner)),
            None => ID_SOURCE.with(|cell| {
                let mut source = cell.get().unwrap_or_else(IdSource::new);
                let id = source.next(prefix);
                cell.set(Some(source));
                id
            }),
        }
    }

    // ---- local delivery ----------------------------------------------------------------------

    /// Puts a message in the mailbox of `to`, a node of this machine, or drops and counts it.
    pub(crate) fn deliver_local(&self, to: &NodeId, letter: Letter) {
        if let Err(Undeliverable::NoSuchNode) = self.store.deliver(to, letter) {
            tracing::debug!(%to, "dz: dropped a message for a node that is not here");
            bump(&self.stats.dropped_no_node);
        }
    }

    /// Delivers a timer's message; `false` if its node is gone.
    pub(crate) fn deliver_timer(&self, node: &NodeId, message: Parcel) -> bool {
        self.store.deliver(node, Letter::timer(message)).is_ok()
    }

    /// Starts `node` here under `id`; `secret` is the one it was shipped with, if spawned from
    /// another machine.
    pub(crate) fn start_node(&self, from: &NodeId, id: NodeId, node: Box<dyn ErasedNode>, secret: Option<NodeSecret>) {
        if let Err((id, node)) = self.store.insert(id, node, secret) {
            tracing::warn!(%from, %id, node_type = node.type_name(), "dz: spawn refused: the id is in use (or the machine is stopping)");
            bump(&self.stats.spawn_failed);
        }
    }

    /// The transport of a handle this machine issues to `holder` for a node of type `node_type`
    /// it spawns: the one issued last on this thread if it was this machine's, for the same
    /// holder and type, else a new one (kept in its place). So a loop of spawns gives its
    /// handles one transport, and takes no lock for it.
    fn issued_transport(&self, holder: &NodeId, node_type: &'static str) -> Transport {
        LAST_ISSUED.with(|last| {
            let mut last = last.borrow_mut();
            if let Some((issued_type, transport)) = last.as_ref() {
                // One node type's name is one `&'static str`: the address settles it at once.
                // The kept transport holds this machine's address, so the pointer cannot be
                // another machine's that reuses the memory.
                if (std::ptr::eq(*issued_type, node_type) || *issued_type == node_type)
                    && Arc::ptr_eq(transport.shared_address(), self.handle.shared_address())
                    && transport.chain().first() == Some(holder)
                {
                    return transport.clone();
                }
            }
            let transport = Transport::issued(
                &self.issuer,
                Arc::clone(self.handle.shared_address()),
                self.handle.id().clone(),
                node_type,
                holder.clone(),
            );
            *last = Some((node_type, transport.clone()));
            transport
        })
    }

    fn is_local(&self, machine: &dz_core::MachineId, address: &str) -> bool {
        machine == self.handle.id() || address == self.handle.address()
    }

    /// Whether the node behind `to` is on this machine. A transport this machine issued shares
    /// its address, so the pointer settles the common case; any other is compared by id and text.
    #[inline(always)]
    fn is_local_handle(&self, to: &RawHandle) -> bool {
        let transport = to.transport();
        Arc::ptr_eq(transport.shared_address(), self.handle.shared_address())
            || self.is_local(to.machine_id(), transport.address())
    }

    // ---- what arrives from peers -------------------------------------------------------------

    /// Acts on a frame from a peer. An error names why the connection must close.
    pub(crate) fn receive(&self, wire: Wire<'_>) -> Result<(), &'static str> {
        match wire {
            Wire::Msg { from, to, message } => {
                if self.config.sealing {
                    self.rejected(&from, &to, OpenError::TooShort);
                    return Ok(());
                }
                let json = message.get().as_bytes().into();
                let chain = Arc::from(Vec::new());
                self.deliver_local(&to, Letter::Remote(Box::new(RemoteLetter { from, chain, json })));
                Ok(())
            }
            Wire::Spawn { from, id, node_type, state, secret } => {
                match self.registry.get(&node_type) {
                    None => {
                        tracing::warn!(%from, %id, %node_type, "dz: spawn refused: node type not registered here");
                        bump(&self.stats.spawn_failed);
                        bump(&self.stats.spawn_unknown_type);
                    }
                    Some(factory) => match factory(state.get().as_bytes()) {
                        Ok(node) => self.start_node(&from, id, node, Some(secret)),
                        Err(error) => {
                            tracing::warn!(%from, %id, %node_type, %error, "dz: spawn refused: the state does not decode");
                            bump(&self.stats.spawn_failed);
                        }
                    },
                }
                Ok(())
            }
            Wire::Terminate { from, target, chain, bytes } => {
                if self.config.sealing {
                    let opened = match (chain, bytes.as_deref().and_then(wire::sealed_bytes)) {
                        (Some(chain), Some(sealed)) => self.store.open(&target, &chain.into(), &sealed, &self.secret),
                        _ => Err(OpenError::TooShort),
                    };
                    let refused = match opened {
                        Ok(plain) if plain == wire::TERMINATE => None,
                        Ok(_) => Some(OpenError::TooShort),
                        Err(error) => Some(error),
                    };
                    if let Some(error) = refused {
                        self.rejected(&from, &target, error);
                        return Ok(());
                    }
                }
                tracing::debug!(%from, %target, "dz: termination from a peer");
                drop(self.store.terminate(&target));
                Ok(())
            }
            Wire::Hello { .. } | Wire::Ack { .. } => Err("a greeting after the handshake"),
        }
    }

    /// Acts on a batch of sealed messages from a peer: opens it once (checking its tag and its
    /// nonce against the link's replay window), then delivers its messages in order; or, if it
    /// does not open or its plaintext is not a batch, rejects it whole (counted once).
    pub(crate) fn receive_batch(&self, batch: wire::Batch<'_>) {
        let wire::Batch { from, to, chain, sealed } = batch;
        if !self.config.sealing {
            tracing::warn!(%from, %to, "dz: dropped a sealed batch: sealing is off on this machine");
            bump(&self.stats.dropped_undecodable);
            return;
        }
        let chain: Arc<[NodeId]> = chain.into();
        let plain = match self.store.open(&to, &chain, sealed, &self.secret) {
            Ok(plain) => plain,
            Err(error) => return self.rejected(&from, &to, error),
        };
        let Some(messages) = wire::batch_messages(&plain) else {
            return self.rejected(&from, &to, OpenError::TooShort);
        };
        for json in messages {
            let letter = RemoteLetter { from: from.clone(), chain: Arc::clone(&chain), json: json.into() };
            self.deliver_local(&to, Letter::Remote(Box::new(letter)));
        }
    }

    /// The next nonce of the link to the node behind `to` (the handle's chain).
    pub(crate) fn next_nonce(&self, to: &RawHandle) -> LinkNonce {
        let shard = to.id().stable_hash() as usize % SEND_SHARDS;
        let mut links = self.send_links[shard].0.lock().unwrap_or_else(PoisonError::into_inner);
        links.next_nonce(to.id(), to.transport().shared_chain(), new_instance)
    }

    /// Seals `plaintext` for the node behind `to`, on its link (the handle's chain).
    fn seal(&self, to: &RawHandle, plaintext: &[u8]) -> Vec<u8> {
        let shard = to.id().stable_hash() as usize % SEND_SHARDS;
        let mut links = self.send_links[shard].0.lock().unwrap_or_else(PoisonError::into_inner);
        links.seal(to, plaintext, new_instance)
    }

    /// Counts a message from a peer that sealing rejected, and logs it (at warn, at most once a
    /// second; the ones in between at debug, and counted in the next warning).
    ///
    /// A sealed message for a node that is not here is no attack (the node may have ended): it is
    /// counted as `dropped_no_node`, at debug, as an unsealed one would be.
    fn rejected(&self, from: &NodeId, to: &NodeId, error: OpenError) {
        let counter = match error {
            OpenError::Rejected => &self.stats.rejected_bad_tag,
            OpenError::Replayed { .. } => &self.stats.rejected_replayed,
            OpenError::BadChain => &self.stats.rejected_bad_chain,
            OpenError::UnknownReceiver => {
                bump(&self.stats.dropped_no_node);
                tracing::debug!(%from, %to, "dz: dropped a sealed message for a node that is not here");
                return;
            }
            _ => &self.stats.rejected_malformed,
        };
        bump(counter);
        let why: &dyn std::fmt::Display = match error {
            OpenError::TooShort => &"malformed: not a sealed batch (is sealing off on the sender?)",
            ref other => other,
        };
        let now = self.now() + 1;
        let last = self.reject_warned_at.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= REJECT_WARN_EVERY;
        if due && self.reject_warned_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            let unlogged = self.rejects_unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(%from, %to, error = %why, unlogged, "dz: rejected a message from a peer");
        } else {
            self.rejects_unlogged.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%from, %to, error = %why, "dz: rejected a message from a peer");
        }
    }

    /// Sends the message `message` makes from `from` to the node behind `to`: into its mailbox if
    /// it is here, else to its machine. Inlined into both ways in; the message is made only where
    /// it is put (see `Store::send_local`).
    #[inline(always)]
    fn send_parcel(&self, from: &NodeId, to: &RawHandle, message: impl FnOnce() -> Parcel) {
        if self.is_local_handle(to) {
            if let Err(Undeliverable::NoSuchNode) = self.store.send_local(to.id(), to.transport(), message) {
                tracing::debug!(to = %to.id(), "dz: dropped a message for a node that is not here");
                bump(&self.stats.dropped_no_node);
            }
            return;
        }
        self.send_remote(from, to, message());
    }

    /// [`Core::send_parcel`] to another machine.
    #[inline(never)]
    fn send_remote(&self, from: &NodeId, to: &RawHandle, message: Parcel) {
        let address = to.transport().address();
        bump(&self.stats.sent_remote);
        if self.config.sealing {
            // Sealed in batches: the link gathers messages to one receiver through one handle.
            match (message.to_json(), self.arc()) {
                (Ok(json), Some(core)) => peer::send_sealed(&core, address, from, to, &json),
                (Err(error), _) => {
                    tracing::warn!(%address, %error, "dz: cannot encode a message; dropped");
                    bump(&self.stats.send_failed);
                }
                (Ok(_), None) => bump(&self.stats.send_failed),
            }
            return;
        }
        let frame = message.to_json().and_then(|json| encode(|buf| wire::msg(buf, from, to.id(), &json)));
        self.send_frame(address, frame, "message");
    }

    /// Hands a frame for the machine at `address` to its link.
    fn send_frame(&self, address: &str, frame: Result<Vec<u8>, serde_json::Error>, what: &str) {
        match (frame, self.arc()) {
            (Ok(frame), Some(core)) => peer::send(&core, address, frame),
            (Err(error), _) => {
                tracing::warn!(%address, %error, "dz: cannot encode a {what}; dropped");
                bump(&self.stats.send_failed);
            }
            (Ok(_), None) => bump(&self.stats.send_failed),
        }
    }
}

fn encode(write: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>) -> Result<Vec<u8>, serde_json::Error> {
    let mut buf = Vec::new();
    write(&mut buf)?;
    Ok(buf)
}

impl MachineController for Core {
    fn machine(&self) -> &MachineHandle {
        &self.handle
    }

    fn now_micros(&self) -> u64 {
        self.now()
    }

    fn send(&self, envelope: Envelope<'_>) {
        let Envelope { from, to, message } = envelope;
        match message {
            Parcel::Inline(inline) => self.send_inline(from, to, inline),
            Parcel::Boxed(boxed) => self.send_parcel(from, to, move || Parcel::Boxed(boxed)),
        }
    }

    fn send_inline(&self, from: &NodeId, to: &RawHandle, message: InlineMessage) {
        let (kind, word) = (message.kind(), message.word());
        self.send_parcel(from, to, move || Parcel::Inline(InlineMessage::new(kind, word)));
    }

    fn spawn(&self, from: &NodeId, request: SpawnRequest<'_>) -> RawHandle {
        let SpawnRequest { id, on, node } = request;
        let node_type = node.type_name();
        if self.is_local(on.id(), on.address()) {
            // The node's secret derives from the machine's: the handle's key is derived only if
            // it is ever needed (the handle serialised, or a message sealed under it).
            let transport = self.issued_transport(from, node_type);
            self.start_node(from, id.clone(), node, None);
            return RawHandle::issued(&self.issuer, id, node_type, self.handle.id(), transport);
        }
        // Across machines the spawner draws the node's secret (it makes the first handle before
        // the node exists) and ships it with the state; the node keeps it.
        let secret = os_bytes();
        let key = NodeSecret::from_bytes(secret).link_key(from);
        let frame =
            node.to_json().and_then(|state| encode(|buf| wire::spawn(buf, from, &id, node_type, &state, &secret)));
        drop(node);
        self.send_frame(on.address(), frame, "spawn");
        let transport = Transport::new(Arc::clone(on.shared_address()), from.clone(), key);
        RawHandle::new(id, node_type, on.id().clone(), transport)
    }

    fn terminate(&self, from: &NodeId, target: &RawHandle) {
        let address = target.transport().address();
        if self.is_local(target.machine_id(), address) {
            drop(self.store.terminate(target.id()));
        } else {
            let frame = if self.config.sealing {
                let sealed = self.seal(target, wire::TERMINATE);
                encode(|buf| wire::terminate(buf, from, target.id(), Some((target.transport().chain(), &sealed))))
            } else {
                encode(|buf| wire::terminate(buf, from, target.id(), None))
            };
            self.send_frame(address, frame, "termination");
        }
    }

    fn new_id(&self, prefix: &str) -> NodeId {
        self.fresh_id(prefix)
    }

    fn new_transport(&self, receiver: &NodeId, for_node: &NodeId) -> Transport {
        let key = self.store.node_secret(receiver, &self.secret).link_key(for_node);
        Transport::new(Arc::clone(self.handle.shared_address()), for_node.clone(), key)
    }

    fn transfer_transport(&self, _holder: &NodeId, transport: &Transport, for_node: &NodeId) -> Transport {
        transport.transferred(for_node.clone())
    }

    fn random_u64(&self, _node: &NodeId) -> u64 {
        match &self.seeded {
            Some(rng) => rng.lock().unwrap_or_else(PoisonError::into_inner).next_u64(),
            None => fastrand::u64(..),
        }
    }

    fn wake_at(&self, deadline_micros: u64, waker: Waker) {
        if deadline_micros <= self.now() {
            waker.wake();
        } else {
            self.timers.wake_at(deadline_micros, waker);
        }
    }

    fn schedule(&self, node: &NodeId, delay_micros: u64, message: TimerMessage) -> TimerToken {
        let at = self.now().saturating_add(delay_micros);
        TimerToken(self.timers.schedule(node, at, message))
    }

    fn cancel_timer(&self, node: &NodeId, token: TimerToken) -> bool {
        self.timers.cancel(node, token.0)
    }

    fn create_task(&self, node: &NodeId, task: TaskFuture) {
        if let Err(task) = self.store.create_task(node, task) {
            drop(task);
        }
    }
}

/// A machine secret from the OS's entropy.
pub(crate) fn os_secret() -> MachineSecret {
    MachineSecret::from_bytes(os_bytes())
}

thread_local! {
    /// The transport of the handles a machine issued last on this thread (for one holder, to one
    /// type of node), which the next such spawn shares (see [`Core::issued_transport`]). It
    /// stays after its machine is gone until another spawn on the thread replaces it: one
    /// transport per thread, like the handles the machine's users keep.
    static LAST_ISSUED: std::cell::RefCell<Option<(&'static str, Transport)>> = const { std::cell::RefCell::new(None) };

    /// The generator that unseeded machines draw ids from on this thread: seeded from the OS's
    /// entropy on first use, so that threads and processes draw apart, and taken without a lock.
    static ID_SOURCE: std::cell::Cell<Option<IdSource>> = const { std::cell::Cell::new(None) };
}

/// How many ids in a row one thread makes for one shard.
///
/// A spawn writes a slot and a table entry in its id's shard; ids that name one shard for a run
/// let those writes follow each other through one slab and one table, which stay in the cache
/// for the run. A loop of 100,000 spawns ran about 14% faster with runs of 64 than with shards at
/// random, and 5% faster again with runs of 2,048 than of 256 (a shard's table, about 1,600
/// entries at that size, is then mostly made within one run; with shorter runs it has gone cold
/// by the time the thread comes back to it).
///
/// The price: up to 2,048 nodes one thread spawns in a row share a lock, which workers running
/// many of them at once take in turn. Bench P (200 nodes spawned in a row, so one shard with
/// runs of 256 too, run by two workers) scales as before; a machine with many more cores than
/// this one's two, running thousands of nodes spawned by one thread, may want shorter runs.
const SHARD_RUN: u32 = 2048;

/// The ids of one thread: 11 random characters from a `fastrand` generator seeded from the OS,
/// and a last character that names the shard of the current run ([`SHARD_RUN`] ids, then the
/// next shard of the [`NAMED_SHARDS`], from a random first one). So every shard gets its share of
/// the ids, and two ids can only be alike if they end alike and share 11 random characters.
///
/// It keeps the generator as its one word of state (`Copy`, so that the thread's cell is read and
/// written with no `Option` taken out and put back).
#[derive(Clone, Copy)]
struct IdSource {
    rng_state: u64,
    shard: u8,
    left: u32,
}

impl IdSource {
    fn new() -> Self {
        let seed = os_bytes();
        let mut word = [0u8; 8];
        word.copy_from_slice(&seed[..8]);
        let mut rng = fastrand::Rng::with_seed(u64::from_le_bytes(word));
        let shard = rng.u8(..NAMED_SHARDS as u8);
        IdSource { rng_state: rng.get_seed(), shard, left: SHARD_RUN }
    }

    fn next(&mut self, prefix: &str) -> NodeId {
        if self.left == 0 {
            self.shard = (self.shard + 1) % NAMED_SHARDS as u8;
            self.left = SHARD_RUN;
        }
        self.left -= 1;
        let mut rng = fastrand::Rng::with_seed(self.rng_state);
        let entropy = [rng.u64(..), rng.u64(..)];
        self.rng_state = rng.get_seed();
        NodeId::from_entropy_ending(prefix, entropy, self.shard)
    }
}

/// 32 bytes of the OS's entropy. Without entropy a machine cannot keep its links safe, so
/// failing to get it is not something to carry on from.
fn os_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut bytes).expect("the OS gives no entropy: secrets cannot be drawn");
    bytes
}

/// The instance number of a sending side of a link, new on this machine: from the OS's entropy
/// (drawn once per link, so the system call does not weigh on messages).
fn new_instance() -> u32 {
    let mut bytes = [0u8; 4];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes),
        Err(_) => fastrand::u32(..),
    }
}
