//! The deterministic simulator: many machines in one process, one thread, virtual time.
//!
//! A [`Simulation`] holds simulated machines and the nodes on them, and runs their messages,
//! timers and tasks in virtual time that jumps from one event to the next, so hundreds of
//! simulated seconds take well under a wall second. Everything that could vary comes from the
//! seed: the order of events due at the same instant, network latency, node ids and each node's
//! random stream. The same seed and program give the same trace, entry for entry, which
//! [`Simulation::trace_hash`] sums up.
//!
//! - Messages between machines are serialised to JSON and back, as on a real network, and take a
//!   latency drawn from [`LatencyModel`] (by default mean 10 ms, sd 3 ms, at least 1 ms).
//! - They are also sealed, as between real machines ([`crate::security`]): each node's secret
//!   comes from its machine's, drawn from the seed, and a message that does not open on arrival
//!   is rejected and counted ([`Simulation::rejections`]). [`SimConfig::seal`] turns it off.
//!   A test can record the frames on the wire and inject its own ([`Simulation::tap_wire`],
//!   [`Simulation::inject_frame`]) to play the attacker.
//!   Messages within a machine skip the network but still go through the event queue.
//! - Between one sender and one receiver, messages arrive in send order, at most once.
//! - A message to a node that is gone is dropped and counted ([`NodeStats::dropped`] of its
//!   sender, [`SimStats::dropped`]); a handler that panics stops its own node only.
//! - The test itself acts as a [`Driver`] node on a machine of its own: [`Simulation::spawn`],
//!   [`Simulation::send`] and [`Simulation::driver`] use it.
//! - If a test panics while a simulation is alive, the simulation prints its seed on drop, so the
//!   run can be replayed with `Simulation::new(seed)`.
//!
//! # How a step runs
//!
//! The world (machines, nodes, timers, tasks, the event queue) sits behind one mutex, and node
//! code never runs while it is locked, so that a handler can call back through its context. The
//! run loop takes one lock per step: it puts back the node the last handler ran on, takes events
//! off the queue until one needs node code (a timer or a message whose node is idle; drops and
//! cancelled timers are settled on the way), and writes that message, its node (moved out of its
//! slot), the node's random stream and the message's chain straight into a `Handling` the loop
//! owns and reuses; then it unlocks and calls the handler on them there. Other work (a hook to
//! run, a task to poll, a waker) goes into the `Handling` too, and the step itself returns one
//! flag. Nothing of the step is moved or copied on the way, a handler that returns normally
//! leaves nothing to drop, and what the step leaves to drop (node states, futures: values whose
//! `Drop` is user code) is swapped into a reused vector and dropped unlocked. The common path (a
//! timer, or a message within a machine, to an idle node) is one inline path, and small; the rest
//! (messages between machines, receivers busy or gone, spawns, terminations, wakes, periodic
//! timers, moving on to the next instant, handlers that are `async` or panic) is out of line, so
//! that the loop carries little state.
//!
//! A handler's calls through its context take the lock once each (a send, a timer), except for
//! draws from the node's own random stream, which is lent to the handler for the call. The
//! handler borrows its node's id from a dense copy of the ids the simulation keeps beside the
//! world: no id is cloned to run a handler.
//!
//! What a message costs, in the simulator itself:
//!
//! - Within a machine: no allocation. The event takes a slot in the queue's slab of events
//!   (reused), and an entry of 24 bytes in the queue's vectors for its instant (reused); the
//!   commonest, a message carried inline through a handle issued for its sender to a node found
//!   by slot, is plain data of 24 bytes in a slab of its own, written and read field by field. The
//!   event names its receiver by slot, found when it is sent from a one-entry cache on the
//!   sender's slot (a node keeps its slot for the whole run; a receiver not started yet is named
//!   by id and looked up on arrival), so no id is cloned or hashed on the way. For
//!   [`Context::chain`] it notes only that the chain is its sender alone when the handle was
//!   issued for the sender and never passed on (the common case, which costs no reference
//!   count); otherwise it holds a clone of the handle's transport. The message itself is the box
//!   the sender's context made.
//! - A timer: a slot in the timer table (reused) and a queue entry carrying the timer's token.
//! - Between machines: the message's JSON, sealed into a new buffer, and a box for it.
//!
//! Events due at one later instant wait unsorted in a bucket of their own, ordered once when
//! their instant comes, by a counting pass over their keys and an insertion sort; an event due
//! at the current instant is put in place among those pushed since the instant began, moving up
//! from the end past those that run before it (a few), and a pop takes the lesser of the two.
//!
//! # Examples
//!
//! ```
//! use dz_core::prelude::*;
//! use dz_core::sim::Simulation;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Counter { total: u64 }
//!
//! #[node]
//! impl Counter {
//!     #[handler]
//!     fn add(&mut self, n: u64) {
//!         self.total += n;
//!     }
//! }
//!
//! let mut sim = Simulation::new(1);
//! let machine = sim.add_machine();
//! let counter = sim.spawn(Counter { total: 0 }, &machine);
//! for n in 1..=10 {
//!     counter.add(&mut sim.driver(), n); // the typed send method, from the test
//! }
//! sim.run_until_idle();
//! assert_eq!(sim.inspect(&counter, |c| c.total), Some(55));
//! assert_eq!(sim.node_stats(counter.id()).unwrap().received, 10);
//! ```

mod controller;
mod faults;
mod network;
mod queue;
mod stats;
pub mod sweep;
mod tables;
pub mod trace;
mod world;

#[cfg(test)]
mod tests;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use crate::context::Context;
use crate::controller::{Call, DeliveryError, ErasedHandled, MachineController};
use crate::handle::{Handle, MachineHandle};
use crate::ids::{MachineId, NodeId};
use crate::node::Node;
use crate::parcel::Parcel;
use crate::security::{MachineSecret, RecvLinks, SendLinks};

pub use crate::driver::{Driver, DriverHandle, DriverMessage};
pub use crate::security::Rejections;
pub use faults::{Direction, FaultKind, FaultRule, FaultStats, Filter, Partition};
pub use stats::{NodeStats, SimStats};
pub use sweep::{Failure, Swarm, Sweep, SweepReport, Trial};
pub use trace::{first_divergence, Divergence, TraceEntry, TraceKind};

use controller::SimController;
use world::{Ending, HandlerChain, Handling, MachineSlot, Shared, TaskFut, Work, World};

/// The latency of messages between machines: a normal distribution, clipped below.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyModel {
    /// Mean, in milliseconds.
    pub mean_ms: f64,
    /// Standard deviation, in milliseconds.
    pub sd_ms: f64,
    /// The least latency, in milliseconds.
    pub min_ms: f64,
}

impl Default for LatencyModel {
    fn default() -> Self {
        LatencyModel { mean_ms: 10.0, sd_ms: 3.0, min_ms: 1.0 }
    }
}

/// How a simulation is set up.
///
/// Build one with struct update syntax: `SimConfig { record_trace: true, ..SimConfig::default() }`.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Latency between machines.
    pub latency: LatencyModel,
    /// Keep every trace entry (for [`Simulation::trace`]); the hash is kept either way.
    pub record_trace: bool,
    /// Fault rules in force from the start (more can be added with [`Simulation::add_fault`]).
    pub faults: Vec<FaultRule>,
    /// How often `ctx.buggify()` says yes, from 0 (never, the default) to 1.
    pub buggify_rate: f64,
    /// Seal messages between machines (on by default), as real machines do: each is encrypted
    /// and authenticated under its link's key and opened on arrival, and forged, tampered,
    /// re-addressed and replayed ones are rejected ([`Simulation::rejections`]). Off, messages
    /// cross as plain JSON, which is faster.
    pub seal: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            latency: LatencyModel::default(),
            record_trace: false,
            faults: Vec::new(),
            buggify_rate: 0.0,
            seal: true,
        }
    }
}

/// A message between machines as it crosses the simulated network, recorded by
/// [`Simulation::tap_wire`] and put back by [`Simulation::inject_frame`]. Change it to play an
/// attacker: flip a byte, change the receiver, replay it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WireFrame {
    /// The sending node, as the frame names it.
    pub from: NodeId,
    /// The receiving node.
    pub to: NodeId,
    /// The sending machine.
    pub from_machine: MachineId,
    /// The receiving machine.
    pub to_machine: MachineId,
    /// The delegation chain of the handle it was sent through.
    pub chain: Vec<NodeId>,
    /// The message's name (`Node::handler`), in the clear for traces.
    pub message: &'static str,
    /// Whether `bytes` are sealed (see [`SimConfig::seal`]).
    pub sealed: bool,
    /// The sealed message (nonce, ciphertext, tag), or its JSON if not sealed.
    pub bytes: Vec<u8>,
}

/// A deterministic simulation of machines and their nodes. See the [module docs](self).
pub struct Simulation {
    shared: Arc<Shared>,
    /// Every node's id by slot, beside the world (which holds the same): a handler borrows its
    /// id from here while the world is unlocked.
    ids: Vec<NodeId>,
    /// The machines' controllers, by index, kept outside the world's lock so that running a
    /// handler needs no clone of one.
    ctrls: Vec<Arc<dyn MachineController>>,
    driver: NodeId,
    driver_ctrl: Arc<dyn MachineController>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let world = self.shared.lock();
        f.debug_struct("Simulation")
            .field("seed", &world.seed)
            .field("now_micros", &world.now)
            .field("machines", &world.machines.iter().filter(|m| !m.hidden).count())
            .field("pending_events", &world.pending_events())
            .finish()
    }
}

impl Simulation {
    /// A simulation whose every choice comes from `seed`, with the default [`SimConfig`].
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, SimConfig::default())
    }

    /// A simulation with `config`.
    pub fn with_config(seed: u64, config: SimConfig) -> Self {
        let mut world = World::new(seed, config);
        world.faults.rules = world.config.faults.clone();
        let shared = Arc::new(Shared { world: Mutex::new(world), wakes: Arc::default() });
        let driver_ctrl = Self::new_machine(&shared, true);
        let ctrls = vec![Arc::clone(&driver_ctrl)];
        let driver = {
            let mut world = shared.lock();
            let id = world.new_node_id(Driver::TYPE_NAME);
            let machine = world.machines.len() - 1;
            world.insert_idle(id.clone(), machine, Box::new(Driver));
            id
        };
        Simulation { shared, ids: Vec::new(), ctrls, driver, driver_ctrl }
    }

    fn new_machine(shared: &Arc<Shared>, hidden: bool) -> Arc<dyn MachineController> {
        let mut world = shared.lock();
        let id = world.new_machine_id();
        let handle = MachineHandle::new(id.clone(), format!("sim://{id}"));
        let index = world.machines.len();
        let ctrl: Arc<dyn MachineController> =
            Arc::new(SimController { handle: handle.clone(), index, shared: Arc::clone(shared) });
        let secret = MachineSecret::from_rng(&mut world.secrets_rng);
        world.add_machine(MachineSlot {
            handle,
            ctrl: Arc::clone(&ctrl),
            hidden,
            down: false,
            secret,
            send_links: SendLinks::default(),
            recv_links: RecvLinks::default(),
        });
        ctrl
    }

    /// The seed this simulation runs from.
    pub fn seed(&self) -> u64 {
        self.shared.lock().seed
    }

    /// Adds a machine and returns its handle, to spawn nodes on.
    pub fn add_machine(&mut self) -> MachineHandle {
        let ctrl = Self::new_machine(&self.shared, false);
        let handle = ctrl.machine().clone();
        self.ctrls.push(ctrl);
        handle
    }

    /// The machines added so far, in the order they were added.
    pub fn machines(&self) -> Vec<MachineHandle> {
        self.shared.lock().machines.iter().filter(|m| !m.hidden).map(|m| m.handle.clone()).collect()
    }

    /// Virtual time, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.shared.lock().now / 1000
    }

    /// Virtual time, in microseconds.
    pub fn now_micros(&self) -> u64 {
        self.shared.lock().now
    }

    /// A context of the test's own [`Driver`] node, through which a test calls nodes' typed send
    /// methods (`counter.add(&mut sim.driver(), 5)`) or anything else a context offers.
    pub fn driver(&self) -> Context<'static, Driver> {
        Context::for_runtime_owned(Arc::clone(&self.driver_ctrl), self.driver.clone())
    }

    /// The id of the test's [`Driver`] node: handles the test holds were issued for it.
    pub fn driver_id(&self) -> &NodeId {
        &self.driver
    }

    /// Spawns `node` on `on` from the test, returning a handle for the test to use.
    pub fn spawn<N: Node>(&mut self, node: N, on: &MachineHandle) -> Handle<N> {
        self.driver().spawn(node, on)
    }

    /// Sends `msg` to the node behind `to`, from the test.
    pub fn send<N: Node>(&mut self, to: &Handle<N>, msg: N::Message) {
        self.driver().send(to, msg);
    }

    /// Passes a handle the test holds on to the node `for_node`.
    pub fn transfer_handle<N: Node>(&mut self, handle: &Handle<N>, for_node: &NodeId) -> Handle<N> {
        self.driver().transfer_handle(handle, for_node)
    }

    /// Terminates the node behind `handle`, from the test.
    pub fn terminate<N: Node>(&mut self, handle: &Handle<N>) {
        self.driver().terminate(handle);
    }

    /// Runs until no event is left; returns the number of events run.
    ///
    /// A periodic timer never runs out of events: with one running, use [`Simulation::run_for`].
    pub fn run_until_idle(&mut self) -> u64 {
        self.run_until_micros(None)
    }

    /// Runs every event due in the next `ms` milliseconds of virtual time, then moves the clock to
    /// the end of that span; returns the number of events run.
    pub fn run_for(&mut self, ms: u64) -> u64 {
        let end = self.now_micros().saturating_add(ms.saturating_mul(1000));
        let events = self.run_until_micros(Some(end));
        let mut world = self.shared.lock();
        world.now = world.now.max(end);
        events
    }

    fn run_until_micros(&mut self, until: Option<u64>) -> u64 {
        let before = self.shared.lock().stats.events;
        let mut handling = Handling::default();
        let mut trash = Vec::new();
        loop {
            // One lock per step: the last handler's node goes back, the next work comes out.
            // What a step leaves behind (node states, futures) is dropped with the world unlocked.
            let ready = self.shared.step(&mut handling, until, &mut trash, &mut self.ids);
            if !trash.is_empty() {
                trash.clear();
            }
            if !ready {
                break;
            }
            if handling.work.is_none() {
                self.handle(&mut handling);
            } else if let Some(work) = handling.work.take() {
                self.perform(work, &mut handling);
            }
        }
        self.shared.lock().stats.events - before
    }

    /// Runs the handler of the message in `handling` with the world unlocked; a node whose
    /// handler ended normally is left in `handling`, for the next step to put back.
    #[inline(always)]
    fn handle(&self, handling: &mut Handling) {
        let handled = {
            let ctrl = &self.ctrls[handling.machine];
            // The handler borrows its id from the dense copy: no clone, no cold cache line.
            let id = &self.ids[handling.slot];
            let (Some(node), Some(message)) = (&mut handling.node, handling.message.take()) else {
                unreachable!("the world writes a node and a message for Work::Handle")
            };
            let (chain, rng) = (handling.via.chain(&self.ids), &mut handling.rng);
            let call = Call { ctrl, id, chain, rng: Some(rng) };
            // An inline message goes in its two words: a fresh parcel copied through memory
            // stalls on the stores that just wrote it.
            catch_unwind(AssertUnwindSafe(|| match message {
                Parcel::Inline(inline) => node.handle_inline(call, inline),
                message => node.handle(call, message),
            }))
        };
        // A handler that ran to its end leaves nothing to drop and nothing more to do. (Each
        // other arm moves its value out, so that the first needs no drop glue.)
        match handled {
            Ok(Ok(ErasedHandled::Done)) => {}
            Ok(Ok(ErasedHandled::Async(message))) => self.start_async_handler(message, handling),
            Ok(Err(e)) => self.handled_wrong_type(&e, handling),
            Err(panic) => self.handler_panicked(&*panic, handling),
        }
    }

    /// The handler in `handling` is `async`: it runs as a task that owns its node.
    #[inline(never)]
    fn start_async_handler(&self, message: Box<dyn std::any::Any + Send>, handling: &mut Handling) {
        let ctrl = &self.ctrls[handling.machine];
        let id = self.ids[handling.slot].clone();
        let node = handling.node.take().expect("the node is in `handling`");
        handling.lent_rng = false;
        self.shared.lock().restore_rng(&id, handling.rng.clone());
        let via = std::mem::replace(&mut handling.via, HandlerChain::None);
        let fut = node.handle_async(Arc::clone(ctrl), id.clone(), via.into_shared(&self.ids), message);
        let task = self.shared.lock().create_task(&id, TaskFut::Handler(fut), &self.shared.wakes);
        if let Some(task) = task {
            let work = {
                let mut world = self.shared.lock();
                world.suspend(&id, task);
                world.take_for_poll(task)
            };
            if let Some(work) = work {
                self.perform(work, handling);
            }
        }
    }

    /// The message in `handling` was not for its node's type: the node goes back.
    #[inline(never)]
    fn handled_wrong_type(&self, e: &DeliveryError, handling: &mut Handling) {
        let id = self.ids[handling.slot].clone();
        tracing::warn!(node = %id, error = %e, "dz sim: message of the wrong type");
        handling.lent_rng = false;
        if let Some(node) = handling.node.take() {
            self.shared.lock().put_back(&id, node);
        }
    }

    /// The handler in `handling` panicked: its node ends with it, dropped here, unlocked.
    #[inline(never)]
    fn handler_panicked(&self, panic: &(dyn std::any::Any + Send), handling: &mut Handling) {
        let id = self.ids[handling.slot].clone();
        handling.lent_rng = false;
        let node = handling.node.take();
        self.node_panicked(&id, panic);
        drop(node);
    }

    /// Runs node code other than a handler (hooks, tasks, wakers) with the world unlocked, then
    /// gives the world the result; a node whose hook ended normally is left in `handling`, for
    /// the next step to put back.
    #[inline(never)]
    fn perform(&self, work: Work, handling: &mut Handling) {
        match work {
            Work::Handle => self.handle(handling),
            Work::Start { id, ctrl, mut node } => match catch_unwind(AssertUnwindSafe(|| node.started(&ctrl, &id))) {
                Ok(()) => match self.shared.lock().slot_of(&id) {
                    Some(slot) => handling.finished(slot, node),
                    None => drop(node),
                },
                Err(panic) => self.node_panicked(&id, &*panic),
            },
            Work::Stop { id, ctrl, mut node } => {
                let result = catch_unwind(AssertUnwindSafe(|| node.stopping(&ctrl, &id)));
                let mut world = self.shared.lock();
                world.trash.push(Box::new(node));
                match result {
                    Ok(()) => world.bury(&id, Ending::Terminated),
                    Err(panic) => {
                        drop(world);
                        self.node_panicked(&id, &*panic);
                    }
                }
            }
            Work::Poll { task, mut fut, waker } => {
                let mut cx = TaskContext::from_waker(&waker);
                let polled = catch_unwind(AssertUnwindSafe(|| match &mut fut {
                    TaskFut::Handler(f) => f.as_mut().poll(&mut cx).map(Some),
                    TaskFut::Plain(f) => f.as_mut().poll(&mut cx).map(|()| None),
                }));
                match polled {
                    Ok(Poll::Pending) => self.shared.lock().return_task(task, fut),
                    Ok(Poll::Ready(node)) => {
                        let mut world = self.shared.lock();
                        let owner = world.finish_task(task);
                        world.trash.push(fut_box(fut));
                        match (owner, node) {
                            (Some(id), Some(node)) => match world.slot_of(&id) {
                                Some(slot) => handling.finished(slot, node),
                                None => world.trash.push(Box::new(node)),
                            },
                            (None, Some(node)) => world.trash.push(Box::new(node)),
                            (_, None) => {}
                        }
                    }
                    Err(panic) => {
                        let owner = self.shared.lock().task_node(task);
                        self.shared.lock().trash.push(fut_box(fut));
                        if let Some(id) = owner {
                            self.node_panicked(&id, &*panic);
                        }
                    }
                }
            }
            Work::Wake(waker) => waker.wake(),
        }
    }

    fn node_panicked(&self, id: &NodeId, panic: &(dyn std::any::Any + Send)) {
        let what = sweep::panic_message(panic);
        tracing::warn!(node = %id, panic = %what, "dz sim: node panicked and stopped");
        self.shared.lock().bury(id, Ending::Panicked);
    }

    // ---- faults ----------------------------------------------------------------------------

    /// Adds a fault rule, in force from now on. See [`FaultRule`].
    ///
    /// # Examples
    ///
    /// ```
    /// use dz_core::sim::{FaultKind, FaultRule, Filter, Simulation};
    /// let mut sim = Simulation::new(1);
    /// sim.add_fault(FaultRule { kind: FaultKind::Drop, rate: 0.1, filter: Filter::any() });
    /// assert_eq!(sim.faults().len(), 1);
    /// sim.clear_faults();
    /// assert!(sim.faults().is_empty());
    /// ```
    pub fn add_fault(&mut self, rule: FaultRule) {
        self.shared.lock().faults.rules.push(rule);
    }

    /// The fault rules in force.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.lock().faults.rules.clone()
    }

    /// Removes every fault rule (partitions stay until they heal).
    pub fn clear_faults(&mut self) {
        self.shared.lock().faults.rules.clear();
    }

    /// Cuts `machines` off from the rest, in `direction`, for the next `duration_ms`; returns
    /// the partition.
    pub fn partition(&mut self, machines: &[MachineHandle], direction: Direction, duration_ms: u64) -> Partition {
        let now = self.now_micros();
        let partition = Partition {
            machines: machines.iter().map(|m| m.id().clone()).collect(),
            direction,
            start_micros: now,
            end_micros: now.saturating_add(duration_ms.saturating_mul(1000)),
        };
        self.add_partition(partition.clone());
        partition
    }

    /// Adds a partition with its own window (which may start later).
    pub fn add_partition(&mut self, partition: Partition) {
        let mut world = self.shared.lock();
        let now = world.now;
        world.faults.prune(now);
        world.faults.partitions.push(partition);
    }

    /// Heals every partition now.
    pub fn heal(&mut self) {
        self.shared.lock().faults.partitions.clear();
    }

    /// Sets the latency of messages from machine `from` to machine `to` (one direction).
    pub fn set_link_latency(&mut self, from: &MachineHandle, to: &MachineHandle, latency: LatencyModel) {
        self.shared.lock().faults.link_latency.insert((from.id().clone(), to.id().clone()), latency);
    }

    /// Crashes `machine`: its nodes end at once (no stopping hook), with their timers and tasks,
    /// and messages to them are dropped. Nothing can be spawned there until [`Simulation::restart`].
    pub fn crash(&mut self, machine: &MachineHandle) {
        let mut world = self.shared.lock();
        if let Some(index) = world.machine_of(machine.id()) {
            world.crash(index);
        }
    }

    /// Crashes `machine` at virtual time `at_ms` (or now, if that has passed), and restarts it
    /// `down_ms` later if given.
    pub fn schedule_crash(&mut self, machine: &MachineHandle, at_ms: u64, down_ms: Option<u64>) {
        let mut world = self.shared.lock();
        if let Some(index) = world.machine_of(machine.id()) {
            let at = at_ms.saturating_mul(1000);
            world.schedule_crash(index, at, down_ms.map(|ms| at.saturating_add(ms.saturating_mul(1000))));
        }
    }

    /// Restarts a crashed `machine`, empty, under the same id.
    pub fn restart(&mut self, machine: &MachineHandle) {
        let mut world = self.shared.lock();
        if let Some(index) = world.machine_of(machine.id()) {
            world.restart(index);
        }
    }

    /// Counters of the faults injected so far.
    pub fn fault_stats(&self) -> FaultStats {
        self.shared.lock().faults.stats
    }

    /// Reads the state of the node behind `handle`: `f` gets it, and its result is returned.
    /// `None` if the node is gone, has not started yet, or is inside an `async` handler (its state
    /// is then inside the handler).
    ///
    /// `f` runs with the simulation locked: it must not call into the simulation.
    pub fn inspect<N: Node, R>(&self, handle: &Handle<N>, f: impl FnOnce(&N) -> R) -> Option<R> {
        let world = self.shared.lock();
        let node = world.idle_node(handle.id())?;
        node.as_any().downcast_ref::<N>().map(f)
    }

    /// Whether the node `id` has started and not ended.
    pub fn is_alive(&self, id: &NodeId) -> bool {
        self.shared.lock().is_alive(id)
    }

    /// The counters of node `id`, alive or ended; `None` if it never started.
    pub fn node_stats(&self, id: &NodeId) -> Option<NodeStats> {
        self.shared.lock().node_stats(id)
    }

    /// The sealed messages rejected on arrival so far, by reason, over every machine.
    pub fn rejections(&self) -> Rejections {
        let world = self.shared.lock();
        world.machines.iter().fold(Rejections::default(), |sum, m| sum.plus(&m.recv_links.rejections()))
    }

    /// Starts (`true`) or stops recording the frames that cross machines, for
    /// [`Simulation::take_wire_frames`]. Off by default.
    pub fn tap_wire(&mut self, on: bool) {
        let mut world = self.shared.lock();
        match (on, world.wiretap.is_some()) {
            (true, false) => world.wiretap = Some(Vec::new()),
            (false, true) => world.wiretap = None,
            _ => {}
        }
    }

    /// The frames recorded since the last call (see [`Simulation::tap_wire`]).
    pub fn take_wire_frames(&mut self) -> Vec<WireFrame> {
        self.shared.lock().wiretap.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Puts `frame` on the wire, as an attacker on the network could: it reaches
    /// `frame.to_machine` after the network's latency and is opened there like any other. Its
    /// sender is taken to be `frame.from` (the driver, if no such node exists). Returns `false`
    /// if `frame.to_machine` is not a machine of this simulation.
    ///
    /// # Examples
    ///
    /// ```
    /// # use dz_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] pub struct Counter { total: u64 }
    /// # #[node] impl Counter { #[handler] fn add(&mut self, n: u64) { self.total += n; } }
    /// let mut sim = dz_core::sim::Simulation::new(5);
    /// let m = sim.add_machine();
    /// let counter = sim.spawn(Counter { total: 0 }, &m);
    /// sim.tap_wire(true);
    /// counter.add(&mut sim.driver(), 5);
    /// sim.run_until_idle();
    /// let frame = sim.take_wire_frames().pop().unwrap();
    /// sim.inject_frame(frame); // a replay
    /// sim.run_until_idle();
    /// assert_eq!(sim.inspect(&counter, |c| c.total), Some(5));
    /// assert_eq!(sim.rejections().replayed, 1);
    /// ```
    pub fn inject_frame(&mut self, frame: WireFrame) -> bool {
        self.shared.lock().inject(frame, &self.driver)
    }

    /// The counters of the whole run.
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats
    }

    /// The hash of the trace so far: equal for two runs of the same program and seed.
    pub fn trace_hash(&self) -> u64 {
        self.shared.lock().trace.hash()
    }

    /// How many entries the trace has so far.
    pub fn trace_len(&self) -> u64 {
        self.shared.lock().trace.len()
    }

    /// Keeps every trace entry from now on (or stops keeping them); see [`Simulation::trace`].
    pub fn record_trace(&mut self, keep: bool) {
        self.shared.lock().trace.keep_entries(keep);
    }

    /// The trace entries kept so far (empty unless [`SimConfig::record_trace`] or
    /// [`Simulation::record_trace`] asked for them).
    pub fn trace(&self) -> Vec<TraceEntry> {
        self.shared.lock().trace.entries().map(<[TraceEntry]>::to_vec).unwrap_or_default()
    }

    /// The time of the next event, in microseconds, if any.
    pub fn next_event_micros(&self) -> Option<u64> {
        self.shared.lock().next_event_micros()
    }
}

fn fut_box(fut: TaskFut) -> Box<dyn std::any::Any + Send> {
    match fut {
        TaskFut::Handler(f) => Box::new(f),
        TaskFut::Plain(f) => Box::new(f),
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let world = self.shared.lock();
            eprintln!(
                "dz sim: a panic while this simulation was alive; seed {} (replay with Simulation::new({})), \
                 at {} us of virtual time",
                world.seed, world.seed, world.now
            );
        }
        let trash = self.shared.lock().clear();
        drop(trash);
    }
}
