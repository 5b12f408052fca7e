//! The node store and its scheduler: nodes in sharded slabs, a mailbox per node, one run queue.
//!
//! ## How nodes are kept
//!
//! A node is a 72-byte slot in a `Vec`: its id, its state (boxed, behind `dyn ErasedNode`), a
//! generation, a few flags, and a pointer to a box made on its first mail or task that holds its
//! mailbox (a `VecDeque` of letters) and its task list — an idle node that never had mail pays
//! for neither. There is no executor task and no channel per node.
//!
//! The slots are split over 64 *shards* by a hash of the node's id, each shard with its own lock,
//! its own slab and its own map from the id's 64-bit hash (kept in the [`NodeId`] since it was
//! made) to the slot; ids that share a hash are chained through their slots. A node's key (slot
//! index and generation) keeps its shard in the low bits of the index. So two workers running
//! different nodes rarely want the same lock, and each lock is held only for a map look-up and
//! a few `VecDeque` operations. The tasks of all nodes share one more lock, and the run queue
//! another; a thread that holds a shard may take the tasks' lock or the queue's, never the other
//! way round, and no thread holds two shards at once.
//!
//! ## How nodes are scheduled
//!
//! A node with work to do (a first `started` hook, mail, a woken `async` handler, a stop
//! request) is put once on the run queue; a worker takes it off, and while the worker has it the
//! node is `Busy`, so no other worker can run it: a node's handlers never run concurrently. Mail
//! that arrives meanwhile waits in the mailbox and the worker picks it up before giving the node
//! back (up to a batch; then the node goes back on the queue, behind the others).
//!
//! A message sent by a handler to an idle node of the same machine does not go through the
//! queue: the worker takes the receiver out of the store at once, with that letter (which never
//! enters the mailbox), and runs it next itself — one node at a time, giving any node kept
//! before back to the queue, and for a bounded streak. A conversation between two nodes thus
//! stays on one thread, warm in cache, and wakes no other; each message costs one lock of the
//! receiver's shard to hand it over and one of the sender's to give the sender back.
//!
//! An `async` handler becomes a future kept in the node's slot (`Suspended`); it holds the
//! mailbox until it ends, and its waker puts the node back on the run queue. Tasks made with
//! `create_task` live in a slab of their own and go through the same run queue.
//!
//! A worker that finds the run queue empty looks again for 50 µs (one such worker at a time),
//! then sleeps on a condition variable: work streaming in from another thread is picked up
//! without a wake-up per item, and an idle machine uses no CPU. Node code never runs with a lock
//! of the store held.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LockResult, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use dz_core::controller::{ErasedNode, ErasedNodeFuture, TaskFuture};
use dz_core::security::{MachineSecret, NodeSecret, OpenError};
use dz_core::NodeId;

use crate::index::{shard_of, IdHashing, SHARDS, SHARD_BITS};
use crate::letter::Letter;
use crate::padded::Padded;
use crate::shard::{Key, Shard, State};
use crate::stats::{bump, Counters};

/// How long a worker with nothing to do looks for work before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

struct TaskSlot {
    generation: u32,
    node: Key,
    /// `None` while being polled, or when the slot is vacant.
    fut: Option<TaskFuture>,
    live: bool,
    queued: bool,
    woken: bool,
}

#[derive(Clone, Copy)]
enum Runnable {
    Node(Key),
    Task(Key),
}

/// Node code for a worker to run with the store unlocked.
pub(crate) enum Job {
    Start { key: Key, id: NodeId, node: Box<dyn ErasedNode> },
    Handle { key: Key, id: NodeId, node: Box<dyn ErasedNode>, letter: Letter },
    Poll { key: Key, id: NodeId, fut: ErasedNodeFuture, waker: Waker },
    Stop { key: Key, id: NodeId, node: Box<dyn ErasedNode> },
    Task { key: Key, fut: TaskFuture, waker: Waker },
}

/// Why a message was not put in a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Undeliverable {
    NoSuchNode,
}

/// A node a worker took out of the store to run next, with the letter it runs first.
struct Kept {
    key: Key,
    id: NodeId,
    node: Box<dyn ErasedNode>,
    letter: Letter,
}

thread_local! {
    /// On a worker thread: its store (by address, only compared).
    static WORKER_OF: Cell<usize> = const { Cell::new(0) };
    /// On a worker thread: the node it runs next.
    static NEXT: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

/// Values whose drop runs user code (node states, futures): dropped after unlocking.
pub(crate) type Trash = Vec<Box<dyn Any + Send>>;

/// Nodes taken out of the store with their ids.
pub(crate) type IdleNodes = Vec<(NodeId, Box<dyn ErasedNode>)>;

/// The tasks of all nodes.
#[derive(Default)]
struct Tasks {
    slots: Vec<TaskSlot>,
    free: Vec<u32>,
}

/// What waits to run, and the workers waiting for it.
struct Queue {
    runnables: VecDeque<Runnable>,
    sleeping: usize,
    closed: bool,
}

/// The store: every node of the machine, its mail, its tasks, and the run queue.
pub(crate) struct Store {
    shards: Box<[Padded<Mutex<Shard>>]>,
    tasks: Mutex<Tasks>,
    queue: Padded<Mutex<Queue>>,
    work: Condvar,
    /// A worker is looking for work before it sleeps (one at most, so that idle workers do not
    /// take the cores of the threads that make their work).
    spinning: AtomicBool,
    closed: AtomicBool,
    stats: Arc<Counters>,
    me: Weak<Store>,
}

/// Recovers a guard from a poisoned lock: the store stays consistent whatever panics (node code
/// never runs under its locks).
fn relock<T>(result: LockResult<MutexGuard<'_, T>>) -> MutexGuard<'_, T> {
    result.unwrap_or_else(PoisonError::into_inner)
}

impl Tasks {
    fn slot_mut(&mut self, key: Key) -> Option<&mut TaskSlot> {
        self.slots.get_mut(key.index as usize).filter(|t| t.generation == key.generation && t.live)
    }

    fn free(&mut self, key: Key) -> Option<TaskFuture> {
        let slot = self.slot_mut(key)?;
        slot.live = false;
        slot.queued = false;
        let fut = slot.fut.take();
        self.free.push(key.index);
        fut
    }
}

impl Store {
    pub(crate) fn new(stats: Arc<Counters>) -> Arc<Self> {
        let hashing = IdHashing::new();
        Arc::new_cyclic(|me| Store {
            shards: (0..SHARDS).map(|_| Padded(Mutex::new(Shard::new(hashing)))).collect(),
            tasks: Mutex::default(),
            queue: Padded(Mutex::new(Queue { runnables: VecDeque::new(), sleeping: 0, closed: false })),
            work: Condvar::new(),
            spinning: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            stats,
            me: me.clone(),
        })
    }

    fn shard(&self, shard: usize) -> MutexGuard<'_, Shard> {
        relock(self.shards[shard].0.lock())
    }

    fn shard_of_key(&self, key: Key) -> MutexGuard<'_, Shard> {
        self.shard(key.index as usize & (SHARDS - 1))
    }

    fn tasks(&self) -> MutexGuard<'_, Tasks> {
        relock(self.tasks.lock())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        relock(self.queue.0.lock())
    }

    /// Puts `runnable` on the run queue and wakes a sleeping worker for it. Called with no shard
    /// locked, or with one (shards are always locked before the queue, never after).
    fn push_runnable(&self, runnable: Runnable) {
        let mut queue = self.queue();
        queue.runnables.push_back(runnable);
        if queue.sleeping > 0 {
            self.work.notify_one();
        }
    }

    // ---- nodes in --------------------------------------------------------------------------

    /// Puts a new node in place; its `started` hook runs first. `secret` is the one a node
    /// spawned from another machine was shipped with. Gives the node back if its id is in use
    /// or the store is closed.
    pub(crate) fn insert(
        &self,
        id: NodeId,
        node: Box<dyn ErasedNode>,
        secret: Option<NodeSecret>,
    ) -> Result<(), Box<dyn ErasedNode>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(node);
        }
        let shard = shard_of(&id);
        let mut guard = self.shard(shard);
        if guard.contains(&id) {
            return Err(node);
        }
        let key = guard.new_slot(shard, id, State::Starting(node));
        let slot = &mut guard.slots[(key.index >> SHARD_BITS) as usize];
        slot.queued = true;
        if let Some(secret) = secret {
            slot.extra().secret = Some(Box::new(secret));
        }
        drop(guard);
        self.push_runnable(Runnable::Node(key));
        self.stats.spawned.bump();
        Ok(())
    }

    /// Puts a node in place that needs no `started` hook and takes no work (the client node).
    pub(crate) fn insert_idle(&self, id: NodeId, node: Box<dyn ErasedNode>) {
        let shard = shard_of(&id);
        self.shard(shard).new_slot(shard, id, State::Idle(node));
    }

    /// Puts `letter` in the mailbox of node `to`, and the node on the run queue if it was idle.
    ///
    /// On one of this store's workers, an idle receiver is not queued but taken out at once with
    /// its first letter, for the worker to run next itself (a message a handler sends wakes its
    /// receiver on the same thread, warm in cache, with no other thread woken and no second
    /// trip to the store); a node kept before goes back to the run queue.
    pub(crate) fn deliver(&self, to: &NodeId, letter: Letter) -> Result<(), Undeliverable> {
        let shard = shard_of(to);
        let mut guard = self.shard(shard);
        let Some((slot, key)) = guard.find(to, shard) else { return Err(Undeliverable::NoSuchNode) };
        let idle = matches!(slot.state, State::Idle(_)) && !slot.queued;
        if !idle || slot.has_mail() {
            slot.extra().mailbox.push_back(letter);
            return Ok(());
        }
        if !self.on_worker() {
            slot.extra().mailbox.push_back(letter);
            slot.queued = true;
            drop(guard);
            self.push_runnable(Runnable::Node(key));
            return Ok(());
        }
        // Idle with an empty mailbox: the letter goes with the node, and never into the mailbox.
        let node = match std::mem::replace(&mut slot.state, State::Busy) {
            State::Idle(node) => node,
            other => {
                // Not reached: `idle` was checked under this same lock.
                slot.state = other;
                slot.extra().mailbox.push_back(letter);
                return Ok(());
            }
        };
        let kept = Kept { key, id: slot.id.clone(), node, letter };
        drop(guard);
        if let Some(before) = NEXT.with(|next| next.borrow_mut().replace(kept)) {
            self.give_back(before);
        }
        Ok(())
    }

    /// Whether this thread is one of this store's workers.
    fn on_worker(&self) -> bool {
        WORKER_OF.with(|of| of.get() == self as *const Store as usize)
    }

    /// Marks this thread as one of this store's workers.
    pub(crate) fn enter_worker(&self) {
        WORKER_OF.with(|of| of.set(self as *const Store as usize));
    }

    /// The job of the node this worker kept to run next, if any.
    pub(crate) fn take_next(&self) -> Option<Job> {
        let Kept { key, id, node, letter } = NEXT.with(|next| next.borrow_mut().take())?;
        Some(Job::Handle { key, id, node, letter })
    }

    /// Puts the node this worker kept to run next back in the store, on the run queue (for
    /// fairness, or because the worker stops).
    pub(crate) fn spill_next(&self) {
        if let Some(kept) = NEXT.with(|next| next.borrow_mut().take()) {
            self.give_back(kept);
        }
    }

    /// Puts a kept node back: idle, its letter first in its mailbox, on the run queue.
    fn give_back(&self, kept: Kept) {
        let Kept { key, id: _, node, letter } = kept;
        let mut guard = self.shard_of_key(key);
        let Some(slot) = guard.slot_mut(key) else { return };
        slot.state = State::Idle(node);
        slot.extra().mailbox.push_front(letter);
        slot.queued = true;
        drop(guard);
        self.push_runnable(Runnable::Node(key));
    }

    /// Asks node `id` to stop: an idle node runs its `stopping` hook next; a busy one stops when
    /// what runs now ends; one suspended in an `async` handler ends at once, unhooked (its state
    /// is inside the handler). Returns what to drop unlocked.
    pub(crate) fn terminate(&self, id: &NodeId) -> Trash {
        let shard = shard_of(id);
        let mut guard = self.shard(shard);
        let Some((slot, key)) = guard.find(id, shard) else { return Vec::new() };
        slot.stop = true;
        match slot.state {
            State::Suspended(_) => self.bury_in(&mut guard, key, false),
            State::Idle(_) if !slot.queued => {
                slot.queued = true;
                drop(guard);
                self.push_runnable(Runnable::Node(key));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Adds a task beside node `id`; gives it back if the node is gone.
    pub(crate) fn create_task(&self, id: &NodeId, fut: TaskFuture) -> Result<(), TaskFuture> {
        let shard = shard_of(id);
        let mut guard = self.shard(shard);
        let Some((slot, node)) = guard.find(id, shard) else { return Err(fut) };
        let mut tasks = self.tasks();
        let task = match tasks.free.pop() {
            Some(i) => i,
            None => {
                tasks.slots.push(TaskSlot { generation: 0, node, fut: None, live: false, queued: false, woken: false });
                (tasks.slots.len() - 1) as u32
            }
        };
        let task_slot = &mut tasks.slots[task as usize];
        task_slot.generation = task_slot.generation.wrapping_add(1);
        task_slot.node = node;
        task_slot.fut = Some(fut);
        task_slot.live = true;
        task_slot.queued = true;
        task_slot.woken = false;
        let key = Key { index: task, generation: task_slot.generation };
        slot.extra().tasks.push(key);
        drop(tasks);
        drop(guard);
        self.push_runnable(Runnable::Task(key));
        Ok(())
    }

    // ---- workers ---------------------------------------------------------------------------

    /// The next job, waiting until there is one; `None` once closed.
    ///
    /// A worker that finds the queue empty looks again for up to [`SPIN`] before it sleeps (if
    /// no other worker is doing so already): work that comes in a stream from another thread (a
    /// client spawning nodes, a peer's frames) is then picked up without a sleep and a wake-up
    /// per item, while an idle machine still sleeps after that short while.
    pub(crate) fn next_job(&self) -> Option<Job> {
        let mut spinning_since: Option<Instant> = None;
        let job = loop {
            let runnable = {
                let mut queue = self.queue();
                loop {
                    if queue.closed {
                        break None;
                    }
                    if let Some(runnable) = queue.runnables.pop_front() {
                        break Some(runnable);
                    }
                    if spinning_since.is_none() && !self.spinning.swap(true, Ordering::Acquire) {
                        spinning_since = Some(Instant::now());
                    }
                    if spinning_since.is_some_and(|since| since.elapsed() < SPIN) {
                        break None;
                    }
                    if spinning_since.take().is_some() {
                        self.spinning.store(false, Ordering::Release);
                    }
                    queue.sleeping += 1;
                    queue = relock(self.work.wait(queue));
                    queue.sleeping -= 1;
                }
            };
            match runnable {
                Some(runnable) => {
                    if let Some(job) = self.take_job(runnable) {
                        break Some(job);
                    }
                }
                None if spinning_since.is_some() && !self.closed.load(Ordering::Acquire) => {
                    for _ in 0..64 {
                        std::hint::spin_loop();
                    }
                }
                None => break None,
            }
        };
        if spinning_since.is_some() {
            self.spinning.store(false, Ordering::Release);
        }
        job
    }

    fn take_job(&self, runnable: Runnable) -> Option<Job> {
        match runnable {
            Runnable::Node(key) => {
                let mut guard = self.shard_of_key(key);
                let slot = guard.slot_mut(key)?;
                slot.queued = false;
                let id = slot.id.clone();
                match std::mem::replace(&mut slot.state, State::Busy) {
                    State::Starting(node) => Some(Job::Start { key, id, node }),
                    State::Idle(node) if slot.stop => Some(Job::Stop { key, id, node }),
                    State::Idle(node) => match slot.pop_letter() {
                        Some(letter) => Some(Job::Handle { key, id, node, letter }),
                        None => {
                            slot.state = State::Idle(node);
                            None
                        }
                    },
                    State::Suspended(fut) => {
                        slot.woken = false;
                        Some(Job::Poll { key, id, fut, waker: self.node_waker(key) })
                    }
                    other => {
                        slot.state = other;
                        None
                    }
                }
            }
            Runnable::Task(key) => {
                let mut tasks = self.tasks();
                let slot = tasks.slots.get_mut(key.index as usize).filter(|t| t.generation == key.generation)?;
                slot.queued = false;
                slot.woken = false;
                let fut = slot.fut.take()?;
                Some(Job::Task { key, fut, waker: self.task_waker(key) })
            }
        }
    }

    /// A handler or hook of node `key` ended normally and gives the node back. If the worker may
    /// go on (`more`), the node's next job is returned at once, with no trip through the queue.
    pub(crate) fn put_back(&self, key: Key, node: Box<dyn ErasedNode>, more: bool) -> (Option<Job>, Trash) {
        let mut guard = self.shard_of_key(key);
        let Some(slot) = guard.slot_mut(key) else { return (None, vec![Box::new(node)]) };
        if slot.stop {
            return (Some(Job::Stop { key, id: slot.id.clone(), node }), Vec::new());
        }
        if !slot.has_mail() {
            slot.state = State::Idle(node);
            return (None, Vec::new());
        }
        if more {
            if let Some(letter) = slot.pop_letter() {
                return (Some(Job::Handle { key, id: slot.id.clone(), node, letter }), Vec::new());
            }
        }
        slot.state = State::Idle(node);
        slot.queued = true;
        drop(guard);
        self.push_runnable(Runnable::Node(key));
        (None, Vec::new())
    }

    /// Node `key`'s `async` handler is waiting: keep its future until its waker fires.
    pub(crate) fn suspend(&self, key: Key, fut: ErasedNodeFuture) -> Trash {
        let mut guard = self.shard_of_key(key);
        let Some(slot) = guard.slot_mut(key) else { return vec![Box::new(fut)] };
        slot.state = State::Suspended(fut);
        if slot.stop {
            return self.bury_in(&mut guard, key, false);
        }
        if slot.woken && !slot.queued {
            slot.woken = false;
            slot.queued = true;
            drop(guard);
            self.push_runnable(Runnable::Node(key));
        }
        Vec::new()
    }

    /// A task is waiting: keep it until its waker fires.
    pub(crate) fn task_pending(&self, key: Key, fut: TaskFuture) -> Trash {
        let mut tasks = self.tasks();
        let Some(slot) = tasks.slot_mut(key) else { return vec![Box::new(fut)] };
        slot.fut = Some(fut);
        if slot.woken && !slot.queued {
            slot.woken = false;
            slot.queued = true;
            drop(tasks);
            self.push_runnable(Runnable::Task(key));
        }
        Vec::new()
    }

    /// A task ended (or panicked: then `panicked` and its node stops too).
    pub(crate) fn task_done(&self, key: Key, panicked: bool) -> Trash {
        let node = {
            let mut tasks = self.tasks();
            let Some(slot) = tasks.slot_mut(key) else { return Vec::new() };
            let node = slot.node;
            tasks.free(key);
            node
        };
        let mut guard = self.shard_of_key(node);
        if let Some(extra) = guard.slot_mut(node).and_then(|n| n.extra.as_mut()) {
            extra.tasks.retain(|&t| t != key);
        }
        if panicked {
            return self.bury_in(&mut guard, node, true);
        }
        Vec::new()
    }

    /// Ends node `key` for good: its state, tasks and mail go (mail counted as dropped), its slot
    /// is freed. `panicked` counts it as such.
    pub(crate) fn bury(&self, key: Key, panicked: bool) -> Trash {
        let mut guard = self.shard_of_key(key);
        self.bury_in(&mut guard, key, panicked)
    }

    /// [`Store::bury`] with `key`'s shard locked.
    fn bury_in(&self, shard: &mut Shard, key: Key, panicked: bool) -> Trash {
        let mut trash: Trash = Vec::new();
        let Some(slot) = shard.slot_mut(key) else { return trash };
        match std::mem::replace(&mut slot.state, State::Vacant) {
            State::Starting(node) | State::Idle(node) => trash.push(Box::new(node)),
            State::Suspended(fut) => trash.push(Box::new(fut)),
            State::Busy | State::Vacant => {}
        }
        let (mailbox, tasks, sealed_links) = match slot.extra.as_mut() {
            Some(extra) => {
                // The slot's next node gets the box, but not this node's secret.
                extra.secret = None;
                (
                    std::mem::take(&mut extra.mailbox),
                    std::mem::take(&mut extra.tasks),
                    std::mem::take(&mut extra.sealed_links),
                )
            }
            None => (VecDeque::new(), Vec::new(), false),
        };
        let id = slot.id.clone();
        slot.queued = false;
        let local = key.index >> SHARD_BITS;
        shard.unlink(&id, local);
        if sealed_links {
            shard.recv.forget_receiver(&id);
        }
        shard.free.push(local);
        shard.live -= 1;
        if !tasks.is_empty() {
            let mut table = self.tasks();
            for task in tasks {
                if let Some(fut) = table.free(task) {
                    trash.push(Box::new(fut));
                }
            }
        }
        for letter in mailbox {
            tracing::debug!(from = letter.sender(), to = %id, message = letter.name(), "dz: dropped: node ended");
            bump(&self.stats.dropped_no_node);
        }
        bump(&self.stats.terminated);
        if panicked {
            bump(&self.stats.panicked);
        }
        trash
    }

    // ---- wakers ----------------------------------------------------------------------------

    pub(crate) fn node_waker(&self, key: Key) -> Waker {
        Waker::from(Arc::new(StoreWaker { store: self.me.clone(), runnable: Runnable::Node(key) }))
    }

    fn task_waker(&self, key: Key) -> Waker {
        Waker::from(Arc::new(StoreWaker { store: self.me.clone(), runnable: Runnable::Task(key) }))
    }

    fn wake(&self, runnable: Runnable) {
        match runnable {
            Runnable::Node(key) => {
                let mut guard = self.shard_of_key(key);
                let Some(slot) = guard.slot_mut(key) else { return };
                match slot.state {
                    State::Suspended(_) if !slot.queued => {
                        slot.queued = true;
                        drop(guard);
                        self.push_runnable(runnable);
                    }
                    State::Busy => slot.woken = true,
                    _ => {}
                }
            }
            Runnable::Task(key) => {
                let mut tasks = self.tasks();
                let Some(slot) = tasks.slot_mut(key) else { return };
                if slot.fut.is_none() {
                    slot.woken = true;
                } else if !slot.queued {
                    slot.queued = true;
                    drop(tasks);
                    self.push_runnable(runnable);
                }
            }
        }
    }

    // ---- sealed messages ---------------------------------------------------------------------

    /// Opens a message sealed for node `to` with the delegation chain `chain`, with the links
    /// into `to`'s shard, under its lock (the node's secret — shipped with it, or else derived
    /// from `machine` — is needed only on a link's first message). Every rejection is counted
    /// there too.
    ///
    /// # Errors
    ///
    /// Why the message is rejected; [`OpenError::UnknownReceiver`] if `to` is not here (not
    /// counted as a rejection: the caller drops it as a message for no node).
    pub(crate) fn open(
        &self,
        to: &NodeId,
        chain: &Arc<[NodeId]>,
        sealed: &[u8],
        machine: &MachineSecret,
    ) -> Result<Vec<u8>, OpenError> {
        let mut guard = self.shard(shard_of(to));
        let shard = &mut *guard;
        let Some(local) = shard.local_of(to) else {
            // Not a rejection: the node has ended or never was (counted as `dropped_no_node`).
            return Err(OpenError::UnknownReceiver);
        };
        let slot = &mut shard.slots[local as usize];
        let shipped = slot.extra.as_ref().and_then(|extra| extra.secret.as_deref());
        let plain =
            shard.recv.open(to, chain, sealed, || Some(shipped.cloned().unwrap_or_else(|| machine.node_secret(to))))?;
        slot.extra().sealed_links = true;
        Ok(plain)
    }

    /// The secret of node `id`: the one it was shipped with if it was spawned from another
    /// machine, else derived from `machine` (also for a node that is not here: a handle made
    /// for it opens nothing).
    pub(crate) fn node_secret(&self, id: &NodeId, machine: &MachineSecret) -> NodeSecret {
        let mut guard = self.shard(shard_of(id));
        let shard = &mut *guard;
        let shipped = shard
            .local_of(id)
            .and_then(|local| shard.slots[local as usize].extra.as_ref())
            .and_then(|extra| extra.secret.as_deref().cloned());
        drop(guard);
        shipped.unwrap_or_else(|| machine.node_secret(id))
    }

    // ---- outside looks and the end -----------------------------------------------------------

    /// Runs `f` on node `id`'s state if it is idle.
    pub(crate) fn inspect<R>(&self, id: &NodeId, f: impl FnOnce(&dyn ErasedNode) -> R) -> Option<R> {
        let shard = shard_of(id);
        let mut guard = self.shard(shard);
        let (slot, _) = guard.find(id, shard)?;
        match &slot.state {
            State::Idle(node) => Some(f(&**node)),
            _ => None,
        }
    }

    /// Whether node `id` is here and has not ended.
    pub(crate) fn contains(&self, id: &NodeId) -> bool {
        self.shard(shard_of(id)).contains(id)
    }

    /// How many nodes live here.
    pub(crate) fn len(&self) -> usize {
        (0..SHARDS).map(|shard| self.shard(shard).live).sum()
    }

    /// Stops the workers: `next_job` returns `None` from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.queue().closed = true;
        self.work.notify_all();
    }

    /// Takes every idle node out (for its `stopping` hook) and empties the store; returns the
    /// nodes and what else to drop unlocked.
    pub(crate) fn drain(&self) -> (IdleNodes, Trash) {
        let mut idle = Vec::new();
        let mut trash: Trash = Vec::new();
        for shard in 0..SHARDS {
            let mut guard = self.shard(shard);
            for slot in guard.slots.drain(..) {
                match slot.state {
                    State::Idle(node) => idle.push((slot.id, node)),
                    State::Starting(node) => trash.push(Box::new(node)),
                    State::Suspended(fut) => trash.push(Box::new(fut)),
                    State::Busy | State::Vacant => {}
                }
            }
            guard.index.clear();
            guard.free.clear();
            guard.live = 0;
        }
        for task in std::mem::take(&mut *self.tasks()).slots {
            if let Some(fut) = task.fut {
                trash.push(Box::new(fut));
            }
        }
        self.queue().runnables.clear();
        (idle, trash)
    }
}

/// Puts a node or task back on the run queue when its future is woken.
struct StoreWaker {
    store: Weak<Store>,
    runnable: Runnable,
}

impl Wake for StoreWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(store) = self.store.upgrade() {
            store.wake(self.runnable);
        }
    }
}

#[cfg(test)]
mod tests {
    use dz_core::Driver;

    use super::*;
    use crate::letter::RemoteLetter;

    fn ids(n: usize) -> Vec<NodeId> {
        (0..n).map(|i| NodeId::from(format!("Driver_{i:012}"))).collect()
    }

    /// Stops node `id` as a worker would: terminate, take its job, bury it.
    fn stop(store: &Store, id: &NodeId) {
        drop(store.terminate(id));
        let runnable = store.queue().runnables.pop_front();
        match runnable.and_then(|r| store.take_job(r)) {
            Some(Job::Stop { key, .. }) => drop(store.bury(key, false)),
            _ => panic!("no stop job for {id}"),
        }
    }

    #[test]
    fn ids_that_share_a_hash_are_found_removed_and_reused_apart() {
        let store = Store::new(Arc::default());
        let all = ids(300);
        for id in &all {
            store.insert_idle(id.clone(), Box::new(Driver));
        }
        assert_eq!(store.len(), 300);
        // Remove every other node: from the head, the middle and the end of the chains.
        for id in all.iter().step_by(2) {
            stop(&store, id);
        }
        assert_eq!(store.len(), 150);
        for (i, id) in all.iter().enumerate() {
            assert_eq!(store.contains(id), i % 2 == 1, "{id}");
            let letter = Letter::Remote(Box::new(RemoteLetter {
                from: id.clone(),
                chain: Arc::from(Vec::new()),
                json: Box::new([]),
            }));
            assert_eq!(store.deliver(id, letter).is_ok(), i % 2 == 1, "{id}");
        }
        // The freed slots take new nodes, and an id in use is refused.
        for id in all.iter().step_by(2) {
            assert!(store.insert(id.clone(), Box::new(Driver), None).is_ok());
        }
        assert!(store.insert(all[1].clone(), Box::new(Driver), None).is_err());
        assert_eq!(store.len(), 300);
        assert!(all.iter().all(|id| store.contains(id)));
        assert!(!store.contains(&NodeId::from("Driver_elsewhere")));
    }
}
