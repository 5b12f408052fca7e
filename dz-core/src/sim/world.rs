//! The simulated world: machines, nodes, timers, tasks and the event queue, behind one lock.
//!
//! The world never runs node code while its lock is held. [`Shared::step`] puts back the node
//! the last step ran on, then [`World::next_work`] takes events off the queue, settles those that
//! need no node code (drops, cancelled timers) and writes the first piece of work that does into
//! the run loop's [`Handling`] (a message to handle in place, other [`Work`] in
//! [`Handling::work`]), returning only whether there is one. The simulation runs the work with
//! the lock released (so that the node can call back through its context) and leaves the node
//! in the `Handling` for the next step.
//!
//! Maps keyed by id are `HashMap`s used for look-ups only and never iterated, so their seeded
//! order cannot leak into a run; everything iterated is a `Vec` or a `BTreeMap`.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};

use crate::controller::{ErasedNode, ErasedNodeFuture, MachineController, NodeFactory, TaskFuture, TimerMessage};
use crate::handle::{MachineHandle, Transport};
use crate::ids::{MachineId, NodeId};
use crate::parcel::{InlineMessage, Parcel};
use crate::rng::{BuildIdHasher, DetRng};
use crate::security::{MachineSecret, NodeSecret, RecvLinks, SendLinks};

use super::faults::Faults;
use super::queue::{Due, EventQueue, Popped};
use super::stats::{NodeStats, SimStats};
use super::tables::{NodeSlot, NodeState, NodeTable, SlotExtra, TaskSlot, TimerSlot, TimerTable};
use super::trace::{TraceKind, TraceRecorder};
use super::SimConfig;

/// Tasks woken since the last step: apart from the world, so that a waker never waits for it.
#[derive(Default)]
pub(crate) struct Wakes {
    any: AtomicBool,
    tasks: Mutex<Vec<u64>>,
}

impl Wakes {
    fn push(&self, task: u64) {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner).push(task);
        self.any.store(true, Ordering::Release);
    }

    /// The tasks woken since the last call (cheap when there are none).
    fn take(&self) -> Vec<u64> {
        if !self.any.load(Ordering::Acquire) || !self.any.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What the world and the wakers share.
pub(crate) struct Shared {
    pub(crate) world: Mutex<World>,
    pub(crate) wakes: Arc<Wakes>,
}

impl Shared {
    /// Locks the world. A panic in node code never happens under this lock, but a panic in a
    /// `Serialize` impl might; the world stays consistent either way, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One step's time under the lock: puts back the node the last step finished with (in
    /// `handling`; or stops it, if it asked to: that is then the next work), queues the tasks
    /// woken since, and takes the next piece of work due by `until`, written into `handling` (a
    /// message to handle, or else [`Handling::work`]); `false` if there is none. What the last
    /// step left to drop is swapped into `trash` (empty on entry), to be dropped unlocked; ids of
    /// nodes started since are appended to `ids`.
    pub(crate) fn step(
        &self,
        handling: &mut Handling,
        until: Option<u64>,
        trash: &mut Vec<Box<dyn Any + Send>>,
        ids: &mut Vec<NodeId>,
    ) -> bool {
        let woken = self.wakes.take();
        let mut world = self.lock();
        let mut stop = None;
        if let Some(node) = handling.node.take() {
            let rng = std::mem::take(&mut handling.lent_rng).then(|| handling.rng.clone());
            let slot = handling.slot;
            if let Some(node) = world.handler_done(slot, node, rng) {
                let id = world.nodes.slots[slot].id.clone();
                stop = world.controller_of(&id).map(|ctrl| Work::Stop { id, ctrl, node });
            }
        }
        if !woken.is_empty() {
            world.push_polls(woken);
        }
        if !world.trash.is_empty() {
            std::mem::swap(trash, &mut world.trash);
        }
        let ready = match stop {
            Some(stop) => {
                handling.work = Some(stop);
                true
            }
            None => world.next_work(until, handling),
        };
        if !world.nodes.fresh.is_empty() {
            ids.append(&mut world.nodes.fresh);
        }
        ready
    }
}

/// A message being handled and its node, written in place by the world and read in place by the
/// simulation, so that a step moves none of it around; the node stays here after its handler
/// returns, for the next step to put back.
pub(crate) struct Handling {
    /// The node's slot.
    pub(crate) slot: usize,
    /// Its machine.
    pub(crate) machine: usize,
    /// The node, out of its slot (`None` between steps once put back).
    pub(crate) node: Option<Box<dyn ErasedNode>>,
    /// The node's random stream, lent to the handler.
    pub(crate) rng: DetRng,
    /// Whether the handler had `rng` (and it goes back to the slot with the node).
    pub(crate) lent_rng: bool,
    /// The message (`None` once handed to the handler).
    pub(crate) message: Option<Parcel>,
    /// Where its chain comes from.
    pub(crate) via: HandlerChain,
    /// Work other than a message to handle, if that is what the step found.
    pub(crate) work: Option<Work>,
}

impl Handling {
    /// Sets the work a step found (a message to handle is already in place); `true`.
    #[inline(never)]
    fn set_work(&mut self, work: Work) -> bool {
        if !matches!(work, Work::Handle) {
            self.work = Some(work);
        }
        true
    }

    /// A hook or `async` handler of the node in `slot` ended normally, without its random stream:
    /// the next step puts the node back.
    pub(crate) fn finished(&mut self, slot: usize, node: Box<dyn ErasedNode>) {
        self.slot = slot;
        self.node = Some(node);
        self.lent_rng = false;
    }
}

impl Default for Handling {
    fn default() -> Self {
        Handling {
            slot: 0,
            machine: 0,
            node: None,
            rng: DetRng::from_seed(0),
            lent_rng: false,
            message: None,
            via: HandlerChain::None,
            work: None,
        }
    }
}

/// Who sent a message being delivered.
pub(crate) enum Sender {
    /// The node in this slot: its id is read from the slot, never cloned on the hot path.
    Slot(usize),
    /// A node named by id (a message that waited in a mailbox).
    Id(NodeId),
}

impl Sender {
    /// The chain of a message from this sender through a handle issued for it.
    fn own_chain(&self) -> HandlerChain {
        match self {
            Sender::Slot(i) => HandlerChain::Slot(*i),
            Sender::Id(id) => HandlerChain::Id(id.clone()),
        }
    }
}

/// Where the delegation chain of a message within a machine comes from.
pub(crate) enum LocalChain {
    /// A timer's message: it has none.
    Timer,
    /// The handle was issued for its sender and never passed on (the common case), so the chain
    /// is the sender alone: nothing is kept for it, and the send costs no reference count.
    Sender,
    /// Any other handle: its transport, kept for its chain.
    Transport(Transport),
}

impl LocalChain {
    /// The chain of a message `from` sends through `transport`.
    #[inline(always)]
    pub(crate) fn of(transport: &Transport, from: &NodeId) -> Self {
        match transport.chain() {
            [only] if only == from => LocalChain::Sender,
            _ => LocalChain::Transport(transport.clone()),
        }
    }
}

/// The delegation chain of the message being handled, as [`Handling`] keeps it.
pub(crate) enum HandlerChain {
    /// None: a timer's message.
    None,
    /// The node in this slot alone (its id is read from the simulation's dense copy of ids).
    Slot(usize),
    /// This node alone.
    Id(NodeId),
    /// The chain of this transport.
    Transport(Transport),
    /// This chain, read off the wire.
    Shared(Arc<[NodeId]>),
}

impl HandlerChain {
    /// The chain, given every node's id by slot.
    #[inline(always)]
    pub(crate) fn chain<'a>(&'a self, ids: &'a [NodeId]) -> &'a [NodeId] {
        match self {
            HandlerChain::None => &[],
            HandlerChain::Slot(i) => std::slice::from_ref(&ids[*i]),
            HandlerChain::Id(id) => std::slice::from_ref(id),
            HandlerChain::Transport(t) => t.chain(),
            HandlerChain::Shared(chain) => chain,
        }
    }

    /// The chain, shared (for an `async` handler, which keeps it).
    pub(crate) fn into_shared(self, ids: &[NodeId]) -> Arc<[NodeId]> {
        match self {
            HandlerChain::None => Arc::from(Vec::new()),
            HandlerChain::Slot(i) => Arc::from(vec![ids[i].clone()]),
            HandlerChain::Id(id) => Arc::from(vec![id]),
            HandlerChain::Transport(t) => Arc::clone(t.shared_chain()),
            HandlerChain::Shared(chain) => chain,
        }
    }
}

/// A message on its way: typed within a machine, JSON between machines.
pub(crate) enum Payload {
    /// With where its chain comes from.
    Local(Parcel, LocalChain),
    /// Boxed, so that the common local case keeps events small.
    Json(Box<JsonPayload>),
}

/// A message between machines, serialised, and sealed unless sealing is off.
#[derive(Clone)]
pub(crate) struct JsonPayload {
    pub(crate) name: &'static str,
    pub(crate) name_hash: u64,
    /// The delegation chain of the handle it was sent through.
    pub(crate) chain: Arc<[NodeId]>,
    /// Sealed: the nonce, the JSON encrypted, and the tag; opened on arrival.
    pub(crate) sealed: bool,
    pub(crate) bytes: Vec<u8>,
}

impl Payload {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Payload::Local(m, _) => m.name(),
            Payload::Json(json) => json.name,
        }
    }

    /// The message's name and its hash, for the trace.
    pub(super) fn name_and_hash(&self) -> (&'static str, u64) {
        match self {
            Payload::Local(m, _) => m.name_and_hash(),
            Payload::Json(json) => (json.name, json.name_hash),
        }
    }
}

/// A node's initial state on its way.
pub(crate) enum SpawnPayload {
    Local(Box<dyn ErasedNode>),
    Json(Box<JsonSpawn>),
}

/// A node's initial state on its way to another machine, with the secret its spawner drew for
/// it (the spawner made the first handle to it, so it had to know the secret first).
pub(crate) struct JsonSpawn {
    pub(crate) type_name: &'static str,
    pub(crate) factory: NodeFactory,
    pub(crate) state: Vec<u8>,
    pub(crate) secret: NodeSecret,
}

/// The receiver of a message on its way.
pub(crate) enum Target {
    /// The node in this slot, found when the message was sent (a node keeps its slot for the
    /// whole run, so the slot names it as well as its id does, and costs no look-up on arrival).
    Slot(usize),
    /// A node not found when the message was sent (not started yet, or never to be); boxed, so
    /// that the common case keeps events small.
    Id(Box<NodeId>),
}

/// What the queue holds. The common event, a message, is kept to 64 bytes (the rare big ones
/// are boxed), since every event is written into the queue's slab and read back out: 8 for the
/// sender and the machine, 16 for the receiver, 24 for the message's [`Parcel`] (which carries
/// small messages inline rather than in a box of their own) and 16 for where its chain comes
/// from.
pub(crate) enum Event {
    /// `from` is the sender's slot (every sender has one), `machine` the index of the machine
    /// it was sent to (both below 2^32, to keep the event small: see [`Event::deliver`]).
    Deliver {
        from: u32,
        machine: u32,
        to: Target,
        payload: Payload,
    },
    Spawn(Box<SpawnEvent>),
    Terminate(Box<TerminateEvent>),
    Crash {
        machine: usize,
    },
    Restart {
        machine: usize,
    },
    WakeAt(Waker),
    Poll {
        task: u64,
    },
    Drain {
        node: NodeId,
    },
}

impl Event {
    /// A message from the node in slot `from` to `to` on machine `machine`.
    #[inline(always)]
    pub(crate) fn deliver(from: usize, to: Target, machine: usize, payload: Payload) -> Self {
        debug_assert!(from <= u32::MAX as usize && machine <= u32::MAX as usize, "more than 2^32 nodes or machines");
        Event::Deliver { from: from as u32, machine: machine as u32, to, payload }
    }
}

/// The commonest event, kept apart from [`Event`] as plain data: a message within a machine,
/// carried inline, sent through a handle issued for its sender, to a node found by slot on the
/// sender's machine (a node never changes machine, so it is on it still when the message
/// arrives). It goes in the queue's slab of light events, written and read field by field.
#[derive(Clone, Copy)]
pub(crate) struct LocalSend {
    /// The sender's slot.
    pub(crate) from: u32,
    /// The receiver's slot.
    pub(crate) to: u32,
    pub(crate) message: InlineMessage,
}

/// A node on its way to the machine it is spawned on.
pub(crate) struct SpawnEvent {
    pub(crate) from: NodeId,
    pub(crate) id: NodeId,
    pub(crate) machine: usize,
    pub(crate) node: SpawnPayload,
}

/// A termination on its way.
pub(crate) struct TerminateEvent {
    pub(crate) from: NodeId,
    pub(crate) target: NodeId,
}

const _: () = assert!(std::mem::size_of::<Event>() <= 64 && std::mem::size_of::<Option<Event>>() <= 64);

pub(crate) enum TaskFut {
    /// An `async` handler: owns its node and gives it back.
    Handler(ErasedNodeFuture),
    /// A task made with `create_task`.
    Plain(TaskFuture),
}

pub(crate) struct MachineSlot {
    pub(crate) handle: MachineHandle,
    pub(crate) ctrl: Arc<dyn MachineController>,
    pub(crate) hidden: bool,
    /// Crashed and not restarted: nothing runs there, and nothing can be spawned there.
    pub(crate) down: bool,
    /// Whence the secrets of the nodes spawned here come (drawn afresh on restart).
    pub(crate) secret: MachineSecret,
    /// The links this machine sends sealed messages on.
    pub(crate) send_links: SendLinks,
    /// The links into this machine, and what was rejected on them.
    pub(crate) recv_links: RecvLinks,
}

/// Node code to run with the world unlocked.
pub(crate) enum Work {
    /// A message to handle, written into the step's [`Handling`].
    Handle,
    Start {
        id: NodeId,
        ctrl: Arc<dyn MachineController>,
        node: Box<dyn ErasedNode>,
    },
    Stop {
        id: NodeId,
        ctrl: Arc<dyn MachineController>,
        node: Box<dyn ErasedNode>,
    },
    Poll {
        task: u64,
        fut: TaskFut,
        waker: Waker,
    },
    Wake(Waker),
}

/// Why a node ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Terminated,
    Panicked,
    /// Its machine crashed.
    Crashed,
}

pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) now: u64,
    pub(crate) config: SimConfig,
    pub(super) queue: EventQueue<Event, LocalSend>,
    pub(super) sched_rng: DetRng,
    pub(super) latency_rng: DetRng,
    pub(super) ids_rng: DetRng,
    pub(super) misc_rng: DetRng,
    pub(super) buggify_rng: DetRng,
    /// Machine secrets, secrets of nodes spawned across machines, and link instances.
    pub(super) secrets_rng: DetRng,
    /// Frames between machines, recorded while a test taps the wire.
    pub(crate) wiretap: Option<Vec<super::WireFrame>>,
    /// Seeds the keys of events within a machine (see `due_on_link`).
    pub(super) link_salt: u64,
    pub(crate) machines: Vec<MachineSlot>,
    pub(super) machine_index: HashMap<MachineId, usize, BuildIdHasher>,
    pub(super) nodes: NodeTable,
    /// The last due of each link, keyed by the two ids' stable hashes (no clones on the hot path;
    /// two links whose hash pairs collide would only be ordered as one link, a harmless extra
    /// constraint that 128 bits make all but impossible).
    pub(super) links: HashMap<(u64, u64), Due, BuildIdHasher>,
    pub(super) timers: TimerTable,
    pub(super) tasks: HashMap<u64, TaskSlot, BuildIdHasher>,
    pub(super) next_task: u64,
    pub(crate) trace: TraceRecorder,
    pub(crate) stats: SimStats,
    pub(crate) faults: Faults,
    /// Values that run user code when dropped (node states, futures): dropped after unlocking.
    pub(crate) trash: Vec<Box<dyn Any + Send>>,
}

struct TaskWaker {
    task: u64,
    wakes: Arc<Wakes>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.push(self.task);
    }
}

impl World {
    pub(crate) fn new(seed: u64, config: SimConfig) -> Self {
        World {
            seed,
            now: 0,
            trace: TraceRecorder::new(config.record_trace),
            config,
            queue: EventQueue::new(),
            sched_rng: DetRng::stream(seed, "scheduler"),
            latency_rng: DetRng::stream(seed, "latency"),
            ids_rng: DetRng::stream(seed, "ids"),
            misc_rng: DetRng::stream(seed, "misc"),
            link_salt: DetRng::stream(seed, "links").next_u64(),
            buggify_rng: DetRng::stream(seed, "buggify"),
            secrets_rng: DetRng::stream(seed, "secrets"),
            wiretap: None,
            machines: Vec::new(),
            machine_index: HashMap::default(),
            nodes: NodeTable::new(),
            links: HashMap::default(),
            timers: TimerTable::new(),
            tasks: HashMap::default(),
            next_task: 0,
            stats: SimStats::default(),
            faults: Faults::new(seed),
            trash: Vec::new(),
        }
    }

    // ---- machines and nodes -------------------------------------------------------------

    pub(crate) fn new_machine_id(&mut self) -> MachineId {
        MachineId::generate("Machine", &mut self.ids_rng)
    }

    pub(crate) fn add_machine(&mut self, slot: MachineSlot) -> usize {
        let index = self.machines.len();
        self.machine_index.insert(slot.handle.id().clone(), index);
        self.machines.push(slot);
        index
    }

    pub(crate) fn machine_of(&self, id: &MachineId) -> Option<usize> {
        self.machine_index.get(id).copied()
    }

    pub(crate) fn new_node_id(&mut self, prefix: &str) -> NodeId {
        NodeId::generate(prefix, &mut self.ids_rng)
    }

    /// Puts a node in place at once, without a spawn event (the driver).
    pub(crate) fn insert_idle(&mut self, id: NodeId, machine: usize, node: Box<dyn ErasedNode>) {
        let slot = self.new_slot(&id, machine, NodeState::Idle(node));
        self.nodes.insert(slot);
    }

    pub(super) fn new_slot(&self, id: &NodeId, machine: usize, state: NodeState) -> NodeSlot {
        let hash = id.stable_hash();
        NodeSlot {
            id: id.clone(),
            hash,
            machine,
            state,
            rng: DetRng::substream(self.seed, "node", hash),
            extra: None,
            stats: NodeStats::default(),
            stop_requested: false,
            sent_to: std::cell::Cell::new(usize::MAX),
        }
    }

    /// The secret of node `id`: the one its spawner shipped with it, or its machine's
    /// derivation; `None` if there is no such node.
    pub(crate) fn node_secret(&self, id: &NodeId) -> Option<NodeSecret> {
        let slot = self.nodes.get(id)?;
        Some(slot_secret(slot, &self.machines[slot.machine].secret))
    }

    pub(crate) fn node_stats(&self, id: &NodeId) -> Option<NodeStats> {
        self.nodes.get(id).map(|s| s.stats)
    }

    pub(crate) fn is_alive(&self, id: &NodeId) -> bool {
        self.nodes.get(id).is_some_and(|s| !matches!(s.state, NodeState::Dead))
    }

    pub(crate) fn idle_node(&self, id: &NodeId) -> Option<&dyn ErasedNode> {
        match &self.nodes.get(id)?.state {
            NodeState::Idle(node) => Some(&**node),
            _ => None,
        }
    }

    pub(crate) fn pending_events(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn next_event_micros(&self) -> Option<u64> {
        self.queue.peek_micros()
    }

    pub(crate) fn node_random(&mut self, id: &NodeId) -> u64 {
        match self.nodes.get_mut(id) {
            Some(slot) => slot.rng.next_u64(),
            None => self.misc_rng.next_u64(),
        }
    }

    // ---- scheduling ---------------------------------------------------------------------

    /// An event due at `micros`, among others due then in an order drawn from the seed.
    pub(super) fn due_at(&mut self, micros: u64) -> Due {
        Due { micros, key: self.sched_rng.next_u64() }
    }

    /// An event on the link `from -> to`, due at `micros` but never before one already sent on
    /// that link (equal dues fall back to insertion order): a link keeps its send order.
    ///
    /// Within a machine (due now) the key is drawn from the seed, the link and the instant, so
    /// every event of one link at one instant has the same key and keeps its insertion order,
    /// with no bookkeeping; between machines, latency can reorder, so the last due of each link is
    /// kept and a later send never comes before it.
    #[inline(always)]
    pub(super) fn due_on_link(&mut self, from: &NodeId, to: &NodeId, micros: u64) -> Due {
        self.due_on_hashed_link((from.stable_hash(), to.stable_hash()), micros)
    }

    /// [`World::due_on_link`] for the link whose ends' ids hash to `from` and `to`
    /// ([`NodeId::stable_hash`]), for a caller that has them at hand (a slot keeps its id's).
    #[inline(always)]
    pub(super) fn due_on_hashed_link(&mut self, (from, to): (u64, u64), micros: u64) -> Due {
        if micros == self.now {
            let link = from.rotate_left(17) ^ to;
            return Due { micros, key: crate::rng::mix(self.link_salt ^ link ^ micros.wrapping_mul(0x9e37_79b9)) };
        }
        self.due_on_link_later((from, to), micros)
    }

    /// [`World::due_on_link`] for a later instant (a message between machines).
    #[inline(never)]
    fn due_on_link_later(&mut self, link: (u64, u64), micros: u64) -> Due {
        let due = self.due_at(micros);
        let last = self.links.entry(link).or_insert(due);
        if due > *last {
            *last = due;
        }
        *last
    }

    /// The network's delay from machine `from` to machine `to`: none within a machine.
    pub(super) fn latency(&mut self, from: usize, to: usize) -> u64 {
        if from == to {
            return 0;
        }
        let l = self
            .faults
            .latency_of(self.machines[from].handle.id(), self.machines[to].handle.id())
            .unwrap_or(self.config.latency);
        let ms = self.latency_rng.normal(l.mean_ms, l.sd_ms).max(l.min_ms);
        (ms * 1000.0).round() as u64
    }

    pub(crate) fn push_wake_at(&mut self, micros: u64, waker: Waker) {
        let due = self.due_at(micros.max(self.now));
        self.queue.push(due, Event::WakeAt(waker));
    }

    pub(crate) fn push_polls(&mut self, tasks: Vec<u64>) {
        for task in tasks {
            let due = self.due_at(self.now);
            self.queue.push(due, Event::Poll { task });
        }
    }

    /// Sets a timer for `node`; its token (a dead or unknown node's timer never fires, and its
    /// token cancels nothing).
    pub(crate) fn schedule(&mut self, node: &NodeId, delay: u64, message: TimerMessage) -> u64 {
        let alive = self.nodes.find(node).filter(|&i| !matches!(self.nodes.slots[i].state, NodeState::Dead));
        let Some(index) = alive else {
            self.trash.push(Box::new(message));
            return u64::MAX;
        };
        let due = self.due_at(self.now.saturating_add(delay));
        // The queue carries the token itself: firing touches the timer's slot, not the slab.
        let token = self.timers.insert(TimerSlot { node: index, message });
        self.queue.push_direct(due, token);
        token
    }

    pub(crate) fn cancel_timer(&mut self, node: &NodeId, token: u64) -> bool {
        let index = self.nodes.find(node);
        if self.timers.get(token).map_or(true, |t| Some(t.node) != index) {
            return false;
        }
        self.remove_timer(token);
        true
    }

    /// Forgets a timer. Its message maker is dropped here: it is a closure over message values,
    /// which cannot reach the simulation.
    pub(super) fn remove_timer(&mut self, token: u64) {
        self.timers.remove(token);
    }

    /// Takes a task's future out to poll it (`None` if it is gone or already being polled).
    pub(crate) fn take_for_poll(&mut self, task: u64) -> Option<Work> {
        let slot = self.tasks.get_mut(&task)?;
        let fut = slot.fut.take()?;
        Some(Work::Poll { task, fut, waker: slot.waker.clone() })
    }

    /// The slot of node `id`.
    pub(crate) fn slot_of(&self, id: &NodeId) -> Option<usize> {
        self.nodes.find(id)
    }

    /// The controller of the machine node `id` lives on.
    pub(crate) fn controller_of(&self, id: &NodeId) -> Option<Arc<dyn MachineController>> {
        let slot = self.nodes.get(id)?;
        Some(Arc::clone(&self.machines[slot.machine].ctrl))
    }

    /// Traces a node stopping itself.
    pub(crate) fn record_stop(&mut self, id: &NodeId) {
        self.trace.record(self.now, TraceKind::Terminate, id, id, "terminate");
    }

    pub(crate) fn create_task(&mut self, node: &NodeId, fut: TaskFut, wakes: &Arc<Wakes>) -> Option<u64> {
        let alive = self.nodes.get(node).is_some_and(|s| !matches!(s.state, NodeState::Dead));
        if !alive {
            self.trash_task(fut);
            return None;
        }
        let task = self.next_task;
        self.next_task += 1;
        let waker = Waker::from(Arc::new(TaskWaker { task, wakes: Arc::clone(wakes) }));
        if let Some(slot) = self.nodes.get_mut(node) {
            slot.extra().tasks.push(task);
        }
        self.tasks.insert(task, TaskSlot { node: node.clone(), fut: Some(fut), waker });
        Some(task)
    }

    pub(super) fn trash_task(&mut self, fut: TaskFut) {
        match fut {
            TaskFut::Handler(f) => self.trash.push(Box::new(f)),
            TaskFut::Plain(f) => self.trash.push(Box::new(f)),
        }
    }

    // ---- taking events off the queue ------------------------------------------------------

    /// Takes events off the queue up to `until` (virtual microseconds, inclusive) until one needs
    /// node code, and writes that work into `handling` (a message to handle, or else
    /// [`Handling::work`]); `false` when no event is due by then. The common case moves no
    /// [`Work`] around: it returns one flag.
    pub(crate) fn next_work(&mut self, until: Option<u64>, handling: &mut Handling) -> bool {
        loop {
            let Some((due, popped)) = self.queue.pop_by(until) else { return false };
            self.now = self.now.max(due.micros);
            self.stats.events += 1;
            // The common cases, kept small and in one path: a timer's message, or a message
            // within a machine to a node found by slot when it was sent. The message is written
            // into `handling` at once, from where it is (an inline one word by word), and taken
            // back only if its node cannot handle it now.
            let (index, from, transport, machine) = match popped {
                Popped::Direct(token) => match self.fire_timer(token, &mut handling.message) {
                    Some(node) => (node, node, LocalChain::Timer, None),
                    None => continue,
                },
                Popped::Light(LocalSend { from, to, message }) => {
                    handling.message = Some(Parcel::Inline(message));
                    (to as usize, from as usize, LocalChain::Sender, None)
                }
                Popped::Event(slot) => match self.queue.take_event(slot) {
                    Some(Event::Deliver {
                        from,
                        to: Target::Slot(index),
                        machine,
                        payload: Payload::Local(message, transport),
                    }) => {
                        handling.message = Some(message);
                        (index, from as usize, transport, Some(machine as usize))
                    }
                    Some(event) => match self.on_other_event(event, handling) {
                        Some(work) => return handling.set_work(work),
                        None => continue,
                    },
                    None => continue,
                },
            };
            // The receiver's slot is looked up once, here, for all that follows.
            let slot = &mut self.nodes.slots[index];
            let on_its_machine = machine.map_or(true, |m| m == slot.machine);
            if !on_its_machine || !matches!(slot.state, NodeState::Idle(_)) {
                // Busy, gone, or elsewhere: the message waits in the mailbox, or is dropped.
                let Some(message) = handling.message.take() else { unreachable!("written just above") };
                let payload = Payload::Local(message, transport);
                match self.deliver_elsewhere(index, from, machine, payload, handling) {
                    Some(work) => return handling.set_work(work),
                    None => continue,
                }
            }
            let NodeState::Idle(node) = std::mem::replace(&mut slot.state, NodeState::Busy) else {
                unreachable!("checked just above")
            };
            slot.stats.received += 1;
            handling.slot = index;
            handling.machine = slot.machine;
            handling.rng = slot.rng.clone();
            handling.lent_rng = true;
            let to_hash = slot.hash;
            let (name, name_hash) = match &handling.message {
                Some(message) => message.name_and_hash(),
                None => unreachable!("written above"),
            };
            handling.node = Some(node);
            handling.via = match transport {
                LocalChain::Timer => HandlerChain::None,
                LocalChain::Sender => HandlerChain::Slot(from),
                LocalChain::Transport(t) => HandlerChain::Transport(t),
            };
            self.nodes.last.set(index);
            self.stats.delivered += 1;
            if self.trace.keeps_entries() {
                let slots = &self.nodes.slots;
                let (from, to) = (&slots[from].id, &slots[index].id);
                self.trace.record_hashed(self.now, TraceKind::Deliver, from, to, name, name_hash);
            } else {
                let from_hash = if from == index { to_hash } else { self.nodes.slots[from].hash };
                self.trace.record_hashes(self.now, TraceKind::Deliver, from_hash, to_hash, name_hash);
            }
            return true;
        }
    }

    /// [`World::next_work`] for a message within a machine to a node found by slot that is not
    /// idle where it was sent to (`machine`, `None` for a timer's message).
    #[inline(never)]
    fn deliver_elsewhere(
        &mut self,
        index: usize,
        from: usize,
        machine: Option<usize>,
        payload: Payload,
        handling: &mut Handling,
    ) -> Option<Work> {
        if machine.is_some_and(|m| m != self.nodes.slots[index].machine) {
            let (from, to) = (self.nodes.slots[from].id.clone(), self.nodes.slots[index].id.clone());
            self.drop_message(&from, &to, payload.name(), "node is not on that machine");
            return None;
        }
        self.deliver_to_slot(index, Sender::Slot(from), payload, handling)
    }

    /// [`World::next_work`] for every event but a message within a machine to a node found by
    /// slot where it was sent (the common case, kept small): messages between machines among
    /// them.
    #[inline(never)]
    fn on_other_event(&mut self, event: Event, handling: &mut Handling) -> Option<Work> {
        match event {
            Event::Deliver { from, to: Target::Slot(index), machine, payload }
                if machine as usize == self.nodes.slots[index].machine =>
            {
                self.deliver_to_slot(index, Sender::Slot(from as usize), payload, handling)
            }
            Event::Deliver { from, to: Target::Slot(index), payload, .. } => {
                let from = from as usize;
                let (from, to) = (self.nodes.slots[from].id.clone(), self.nodes.slots[index].id.clone());
                self.drop_message(&from, &to, payload.name(), "node is not on that machine");
                None
            }
            Event::Deliver { from, to: Target::Id(to), machine, payload } => {
                self.deliver(Sender::Slot(from as usize), *to, Some(machine as usize), payload, handling)
            }
            Event::Crash { machine } => {
                self.crash(machine);
                None
            }
            Event::Restart { machine } => {
                self.restart(machine);
                None
            }
            Event::Spawn(spawn) => {
                let SpawnEvent { from, id, machine, node } = *spawn;
                self.start_node(from, id, machine, node)
            }
            Event::Terminate(terminate) => self.stop_node(terminate.from, terminate.target),
            Event::WakeAt(waker) => Some(Work::Wake(waker)),
            Event::Poll { task } => self.take_for_poll(task),
            Event::Drain { node } => {
                let slot = self.nodes.get_mut(&node)?;
                if !matches!(slot.state, NodeState::Idle(_)) {
                    return None;
                }
                let (from, payload) = slot.extra.as_mut()?.mailbox.pop_front()?;
                self.deliver(Sender::Id(from), node, None, payload, handling)
            }
        }
    }

    /// Hands a message to its node, queues it if the node is in an `async` handler, or drops it.
    /// `machine` is where the sender meant it to go (`None`: already checked).
    fn deliver(
        &mut self,
        from: Sender,
        to: NodeId,
        machine: Option<usize>,
        payload: Payload,
        handling: &mut Handling,
    ) -> Option<Work> {
        let Some(index) = self.nodes.find(&to) else {
            let from = self.sender_id(&from);
            self.drop_message(&from, &to, payload.name(), "no such node");
            return None;
        };
        if machine.is_some_and(|m| m != self.nodes.slots[index].machine) {
            let from = self.sender_id(&from);
            self.drop_message(&from, &to, payload.name(), "node is not on that machine");
            return None;
        }
        self.deliver_to_slot(index, from, payload, handling)
    }

    /// The id of a sender, cloned (for the paths that are not hot).
    fn sender_id(&self, from: &Sender) -> NodeId {
        match from {
            Sender::Slot(i) => self.nodes.slots[*i].id.clone(),
            Sender::Id(id) => id.clone(),
        }
    }

    /// [`World::deliver`] to the node in slot `index`: the message, its node and what the handler
    /// needs are written into `handling`. (Out of line: [`World::next_work`] has the common case,
    /// a message within a machine to an idle node, inline.)
    #[inline(never)]
    fn deliver_to_slot(
        &mut self,
        index: usize,
        from: Sender,
        mut payload: Payload,
        handling: &mut Handling,
    ) -> Option<Work> {
        let (name, name_hash) = payload.name_and_hash();
        if let Payload::Json(json) = &mut payload {
            if json.sealed {
                if let Err(why) = self.open(index, json) {
                    let (from, to) = (self.sender_id(&from), self.nodes.slots[index].id.clone());
                    self.stats.rejected += 1;
                    self.trace.record(self.now, TraceKind::Rejected, &from, &to, name);
                    tracing::warn!(%from, %to, message = name, error = %why, "dz sim: sealed message rejected");
                    self.drop_message(&from, &to, name, "rejected");
                    return None;
                }
            }
        }
        // The handler's calls through its context will name this node: look-ups start here.
        self.nodes.last.set(index);
        match self.nodes.slots[index].state {
            NodeState::Dead => {
                let (from, to) = (self.sender_id(&from), self.nodes.slots[index].id.clone());
                self.drop_message(&from, &to, name, "node terminated");
                return None;
            }
            NodeState::Busy | NodeState::Suspended(_) => {
                let from = self.sender_id(&from);
                self.nodes.slots[index].extra().mailbox.push_back((from, payload));
                return None;
            }
            NodeState::Idle(_) => {}
        }
        let slot = &mut self.nodes.slots[index];
        let NodeState::Idle(node) = std::mem::replace(&mut slot.state, NodeState::Busy) else {
            unreachable!("checked just above")
        };
        let (message, via) = match payload {
            Payload::Local(m, LocalChain::Timer) => (m, HandlerChain::None),
            Payload::Local(m, LocalChain::Sender) => (m, from.own_chain()),
            Payload::Local(m, LocalChain::Transport(t)) => (m, HandlerChain::Transport(t)),
            Payload::Json(json) => match node.decode_message(&json.bytes) {
                Ok(m) => (m, HandlerChain::Shared(json.chain)),
                Err(e) => {
                    slot.state = NodeState::Idle(node);
                    let (from, to) = (self.sender_id(&from), self.nodes.slots[index].id.clone());
                    tracing::warn!(%from, %to, message = name, error = %e, "dz sim: message does not decode");
                    self.drop_message(&from, &to, name, "does not decode");
                    return None;
                }
            },
        };
        self.hand_over(index, &from, node, (message, via), (name, name_hash), handling);
        Some(Work::Handle)
    }

    /// Hands `message` and `node`, taken out of slot `index`, to the handler: they are written
    /// into `handling`, and the delivery is counted and traced.
    #[inline(always)]
    fn hand_over(
        &mut self,
        index: usize,
        from: &Sender,
        node: Box<dyn ErasedNode>,
        (message, via): (Parcel, HandlerChain),
        (name, name_hash): (&'static str, u64),
        handling: &mut Handling,
    ) {
        let slot = &mut self.nodes.slots[index];
        slot.stats.received += 1;
        handling.slot = index;
        handling.machine = slot.machine;
        handling.node = Some(node);
        handling.rng = slot.rng.clone();
        handling.lent_rng = true;
        handling.message = Some(message);
        handling.via = via;
        self.stats.delivered += 1;
        let slots = &self.nodes.slots;
        let from = match from {
            Sender::Slot(i) => &slots[*i].id,
            Sender::Id(id) => id,
        };
        self.trace.record_hashed(self.now, TraceKind::Deliver, from, &slots[index].id, name, name_hash);
    }

    /// Opens a sealed message for the node in slot `index`, in place; the machine counts a
    /// rejection by its reason.
    fn open(&mut self, index: usize, json: &mut JsonPayload) -> Result<(), crate::security::OpenError> {
        let slot = &self.nodes.slots[index];
        let machine = &mut self.machines[slot.machine];
        let secret = &machine.secret;
        let plain = machine.recv_links.open(&slot.id, &json.chain, &json.bytes, || Some(slot_secret(slot, secret)))?;
        json.bytes = plain;
        json.sealed = false;
        Ok(())
    }

    /// The next message of the periodic timer `token`, in the timer table's slot `index`, which
    /// is queued again a period later.
    #[inline(never)]
    fn fire_periodic(&mut self, index: usize, token: u64) -> Option<Parcel> {
        let Some(TimerSlot { message: TimerMessage::Every { period_micros, make }, .. }) = self.timers.at_mut(index)
        else {
            return None;
        };
        let next = self.now.saturating_add(*period_micros);
        let message = make();
        let due = self.due_at(next);
        self.queue.push_direct(due, token);
        Some(message)
    }

    /// Fires the timer `token`: writes the message to deliver into `message` and returns its
    /// node's slot, found with one look-up in the timer table. A node's timers are not unlinked
    /// when it ends: they are dropped here, when they come due and find their node gone.
    #[inline(always)]
    fn fire_timer(&mut self, token: u64, message: &mut Option<Parcel>) -> Option<usize> {
        let index = self.timers.locate(token)?;
        let (node, once) = match self.timers.at_mut(index)? {
            TimerSlot { node, message: TimerMessage::Once(_) } => (*node, true),
            TimerSlot { node, .. } => (*node, false),
        };
        if matches!(self.nodes.slots[node].state, NodeState::Dead) {
            self.timers.remove_at(index);
            return None;
        }
        if once {
            // An inline message is copied out word by word and its slot emptied in place; any
            // other is moved out with its slot.
            if let Some(TimerSlot { message: TimerMessage::Once(Parcel::Inline(inline)), .. }) =
                self.timers.at_mut(index)
            {
                let (kind, word) = (inline.kind(), inline.word());
                self.timers.clear_at(index);
                *message = Some(Parcel::Inline(InlineMessage::new(kind, word)));
            } else {
                match self.timers.remove_at(index)?.message {
                    TimerMessage::Once(once) => *message = Some(once),
                    TimerMessage::Every { .. } => return None,
                }
            }
        } else {
            *message = Some(self.fire_periodic(index, token)?);
        }
        self.nodes.slots[node].stats.sent += 1;
        Some(node)
    }

    fn start_node(&mut self, from: NodeId, id: NodeId, machine: usize, node: SpawnPayload) -> Option<Work> {
        if self.machines[machine].down {
            self.stats.spawn_failed += 1;
            if let SpawnPayload::Local(node) = node {
                self.trash.push(Box::new(node));
            }
            return None;
        }
        if self.nodes.contains_key(&id) {
            self.stats.spawn_failed += 1;
            tracing::error!(%from, %id, "dz sim: spawn under an id already in use");
            if let SpawnPayload::Local(node) = node {
                self.trash.push(Box::new(node));
            }
            return None;
        }
        let (node, secret) = match node {
            SpawnPayload::Local(node) => (node, None),
            SpawnPayload::Json(json) => match (json.factory)(&json.state) {
                Ok(node) => (node, Some(json.secret)),
                Err(e) => {
                    self.stats.spawn_failed += 1;
                    let node_type = json.type_name;
                    tracing::error!(%from, %id, node_type, error = %e, "dz sim: a node's state does not decode");
                    return None;
                }
            },
        };
        let type_name = node.type_name();
        let mut slot = self.new_slot(&id, machine, NodeState::Busy);
        if let Some(secret) = secret {
            slot.extra().secret = Some(secret);
        }
        self.nodes.insert(slot);
        self.stats.spawned += 1;
        self.trace.record(self.now, TraceKind::Spawn, &from, &id, type_name);
        let ctrl = Arc::clone(&self.machines[machine].ctrl);
        Some(Work::Start { id, ctrl, node })
    }

    fn stop_node(&mut self, from: NodeId, target: NodeId) -> Option<Work> {
        let slot = self.nodes.get_mut(&target)?;
        match std::mem::replace(&mut slot.state, NodeState::Busy) {
            NodeState::Idle(node) => {
                let ctrl = Arc::clone(&self.machines[slot.machine].ctrl);
                self.trace.record(self.now, TraceKind::Terminate, &from, &target, "terminate");
                Some(Work::Stop { id: target, ctrl, node })
            }
            NodeState::Suspended(task) => {
                // Its state lives in the suspended handler's future: it ends with it, unhooked.
                slot.state = NodeState::Suspended(task);
                self.trace.record(self.now, TraceKind::Terminate, &from, &target, "terminate");
                self.bury(&target, Ending::Terminated);
                None
            }
            other => {
                // Already dead, or a hook of it is running (it stops once that ends).
                let dead = matches!(other, NodeState::Dead);
                slot.state = other;
                slot.stop_requested |= !dead;
                None
            }
        }
    }

    // ---- results of work -------------------------------------------------------------------

    /// A handler or hook ended and gives its node back: it waits for its next message, or, if it
    /// asked to stop meanwhile, is given back to be stopped.
    pub(crate) fn handler_done(
        &mut self,
        index: usize,
        node: Box<dyn ErasedNode>,
        rng: Option<DetRng>,
    ) -> Option<Box<dyn ErasedNode>> {
        let slot = &mut self.nodes.slots[index];
        if let Some(rng) = rng {
            slot.rng = rng;
        }
        // The common case, kept small: the node goes back to the slot it left busy, with no stop
        // asked for and nothing in its mailbox.
        if let (NodeState::Busy, false, false) = (&slot.state, slot.stop_requested, slot.has_mail()) {
            slot.state = NodeState::Idle(node);
            return None;
        }
        self.handler_done_otherwise(index, node)
    }

    /// [`World::handler_done`] for a node that asked to stop, is gone, or may have mail.
    #[inline(never)]
    fn handler_done_otherwise(&mut self, index: usize, node: Box<dyn ErasedNode>) -> Option<Box<dyn ErasedNode>> {
        let slot = &mut self.nodes.slots[index];
        if slot.stop_requested {
            let id = slot.id.clone();
            self.record_stop(&id);
            return Some(node);
        }
        self.put_back_at(index, node);
        None
    }

    /// Gives a node back to its slot: it waits for its next message.
    pub(crate) fn put_back(&mut self, id: &NodeId, node: Box<dyn ErasedNode>) {
        match self.nodes.find(id) {
            Some(index) => self.put_back_at(index, node),
            None => self.trash.push(Box::new(node)),
        }
    }

    /// [`World::put_back`] to the slot at `index`.
    #[inline(always)]
    fn put_back_at(&mut self, index: usize, node: Box<dyn ErasedNode>) {
        let slot = &mut self.nodes.slots[index];
        if matches!(slot.state, NodeState::Dead) {
            self.trash.push(Box::new(node));
            return;
        }
        slot.state = NodeState::Idle(node);
        if slot.has_mail() {
            let node = slot.id.clone();
            let due = self.due_at(self.now);
            self.queue.push(due, Event::Drain { node });
        }
    }

    /// Gives a node back the random stream its handler had.
    pub(crate) fn restore_rng(&mut self, id: &NodeId, rng: DetRng) {
        if let Some(slot) = self.nodes.get_mut(id) {
            slot.rng = rng;
        }
    }

    /// The node's `async` handler now runs as `task`.
    pub(crate) fn suspend(&mut self, id: &NodeId, task: u64) {
        if let Some(slot) = self.nodes.get_mut(id) {
            slot.state = NodeState::Suspended(task);
        }
    }

    /// A polled task is still pending: it goes back to wait for its waker.
    pub(crate) fn return_task(&mut self, task: u64, fut: TaskFut) {
        match self.tasks.get_mut(&task) {
            Some(slot) => slot.fut = Some(fut),
            None => self.trash_task(fut),
        }
    }

    /// A polled task has finished; returns its node.
    pub(crate) fn finish_task(&mut self, task: u64) -> Option<NodeId> {
        let slot = self.tasks.remove(&task)?;
        if let Some(node) = self.nodes.get_mut(&slot.node) {
            if let Some(extra) = &mut node.extra {
                extra.tasks.retain(|&t| t != task);
            }
        }
        Some(slot.node)
    }

    /// The node of a task.
    pub(crate) fn task_node(&self, task: u64) -> Option<NodeId> {
        self.tasks.get(&task).map(|t| t.node.clone())
    }

    /// Ends a node for good: its state, timers, tasks and queued messages go (the messages are
    /// counted as dropped for their senders). The slot stays, dead, for its counters.
    pub(crate) fn bury(&mut self, id: &NodeId, ending: Ending) {
        let Some(slot) = self.nodes.get_mut(id) else { return };
        if matches!(slot.state, NodeState::Dead) {
            return;
        }
        let state = std::mem::replace(&mut slot.state, NodeState::Dead);
        let SlotExtra { mailbox, tasks, .. } = slot.extra.take().map(|extra| *extra).unwrap_or_default();
        if let NodeState::Idle(node) = state {
            self.trash.push(Box::new(node));
        }
        for task in tasks {
            if let Some(TaskSlot { fut: Some(fut), .. }) = self.tasks.remove(&task) {
                self.trash_task(fut);
            }
        }
        for (from, payload) in mailbox {
            self.drop_message(&from, id, payload.name(), "node terminated");
        }
        self.stats.terminated += 1;
        if ending == Ending::Panicked {
            self.stats.panicked += 1;
            self.trace.record(self.now, TraceKind::Terminate, id, id, "panic");
        }
    }

    /// Empties the world (breaking the cycles between it and its controllers).
    pub(crate) fn clear(&mut self) -> Vec<Box<dyn Any + Send>> {
        let mut trash = std::mem::take(&mut self.trash);
        for event in self.queue.clear() {
            trash.push(Box::new(event));
        }
        for slot in self.nodes.drain() {
            trash.push(Box::new(slot));
        }
        for (_, task) in self.tasks.drain() {
            trash.push(Box::new(task));
        }
        for timer in self.timers.drain() {
            trash.push(Box::new(timer.message));
        }
        for machine in self.machines.drain(..) {
            trash.push(Box::new(machine.ctrl));
        }
        trash
    }
}

/// The secret of the node in `slot`, whose machine's secret is `machine`.
fn slot_secret(slot: &NodeSlot, machine: &MachineSecret) -> NodeSecret {
    match slot.extra.as_ref().and_then(|extra| extra.secret.as_ref()) {
        Some(shipped) => shipped.clone(),
        None => machine.node_secret(&slot.id),
    }
}
