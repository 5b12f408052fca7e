//! The node store and its scheduler: nodes in sharded slabs, a mailbox per node, one run queue,
//! and each worker's held set.
//!
//! ## How nodes are kept
//!
//! A node is a 48-byte slot (`shard.rs`): its id, a generation, a few flags, and a 16-byte
//! body that is either its state (boxed, behind `dyn ErasedNode`) or a box made on its first
//! mail or task that holds the state beside its mailbox (a `VecDeque` of letters) and its task
//! list — an idle node that never had mail pays for neither. Slots come in chunks of 256 that
//! never move. There is no executor task and no channel per node.
//!
//! The slots are split over 64 *shards* by the last character of the node's id (which a
//! machine chooses for the ids it makes, see `index::shard_of`), each shard with its own lock,
//! its own slab and its own hash table of slot numbers (4 bytes an entry, keyed by the hash of
//! the id in the slot; a look-up compares the ids of the slots it probes). A node's key (slot
//! index and generation) keeps its shard in the low bits of the index. So two workers running
//! different nodes rarely want the same lock, and each lock is held only for a map look-up and
//! a few `VecDeque` operations. The tasks of all nodes share one more lock, and the run queue
//! another; a thread that holds a shard may take the tasks' lock or the queue's, never the other
//! way round, and no thread holds two shards at once.
//!
//! A mailbox is a `VecDeque` of 32-byte letters: a local message (its typed value and the
//! transport it came through), a message from afar (JSON, with its sender and chain), or a
//! timer's. While a worker holds the node the mailbox's buffer is on the worker's side (the held
//! mail), and letters from other threads collect in a fresh one in the slot until the worker
//! drains them or gives the node back.
//!
//! ## How nodes are scheduled
//!
//! A node with work to do (a first `started` hook, mail, a woken `async` handler, a stop
//! request) is put once on the shared run queue. A worker takes it off and starts a
//! *conversation*: the node joins the worker's **held set** (`store/held.rs`), up to
//! `HELD_MAX` (4) nodes that the worker has checked out of the store. A held node
//! is `Busy` in the store, so no other worker runs it (a node's handlers never run
//! concurrently), and its mail moves to the worker's side: the worker takes the whole store
//! mailbox (a `VecDeque`, swapped out, not copied) as the node's *held mail*.
//!
//! A message a handler sends to a node that this worker holds is pushed onto that node's held
//! mail: no lock, no atomic operation, no reference count. A message to an idle node with an
//! empty mailbox takes it into the held set (one lock of its shard), evicting a held node that
//! has nothing to do if the set is full. Any other message goes through the store: into the
//! receiver's mailbox under its shard's lock, the receiver queued if it was idle; if it is busy
//! (held by another worker), the store's `pokes` counter is bumped. The worker runs its held
//! nodes' mail in turns (up to `BATCH` (64) letters each) until none is left, then
//! gives every held node back: its remaining held mail in front of its store mailbox, idle, and
//! queued if it has mail. After `TURNS` (4,096, `worker.rs`) turns it looks at the run queue and
//! gives up the conversation the same way if others wait there (or the machine closes): no
//! node or conversation keeps a worker from the others for long.
//!
//! After each handler (a relaxed load) and before taking a node into its held set, a worker that
//! sees `pokes` changed *drains* its held nodes: it appends each store mailbox to the held mail
//! and picks up stop requests, one shard lock at a time. So mail from other threads reaches a
//! held node within a turn, and a termination asked from elsewhere stops it before its next
//! letter (one asked by a handler on the same worker is marked in the held set at once).
//!
//! **Per-sender FIFO.** Messages from one sender to one receiver arrive in send order. While a
//! receiver R is held by worker W, its letters are its held mail (in order) and then its store
//! mailbox (in order); giving R back keeps that order, and so does a drain (store letters go to
//! the end of the held mail). A sender S sends into R's held mail only when S runs on W; into
//! R's store mailbox otherwise. The only way S's later letter could overtake an earlier one is
//! that the earlier one m1 sits in R's store mailbox while S, now on W, sends m2 into the held
//! mail. m1 went into the store mailbox either before R joined W's held set — but R joins only
//! with an empty mailbox (from a send) or with its whole mailbox taken (from the run queue), so
//! m1 is in the held mail — or while R was held, from another thread, which bumped `pokes`. In
//! the second case S was not on W when it sent m1, and is on W now; a node runs on W only as a
//! member of W's held set, which it joined either from the run queue (but W takes from the run
//! queue only with an empty held set, so R joined after S, after m1 was sent: a contradiction)
//! or by a send from a handler on W. That send took S's shard lock after S's worker gave S back,
//! which was after it pushed m1 and bumped `pokes`: the worker sees the change and drains before
//! S joins, so m1 is in R's held mail before m2. (Tasks are polled only from the run queue,
//! with an empty held set; the client and the I/O thread always send through the store.)
//! `tests/fifo_hops.rs` plays this out with a sender that hops between workers.
//!
//! An `async` handler becomes a future kept in the node's slot (`Suspended`); the node leaves
//! the held set (its held mail back in front of its store mailbox, held there until the handler
//! ends), and its waker puts it back on the run queue. Tasks made with `create_task` live in a
//! slab of their own and go through the same run queue.
//!
//! A worker that finds the run queue empty looks again for 50 µs (one such worker at a time),
//! then sleeps on a condition variable: work streaming in from another thread is picked up
//! without a wake-up per item, and an idle machine uses no CPU. Node code never runs with a lock
//! of the store held, nor with the worker's held set borrowed.
//!
//! ## What a local message costs
//!
//! A message from a handler to a node its worker holds: its parcel (inline for a variant with no
//! fields or one primitive field, else one `Box`, made by the context), a look
//! through the held set (at most four ids, compared a few words at a time), and a push onto a
//! `VecDeque` that grows only when fuller than ever before. Its transport is not cloned: the
//! letter names an entry of the worker's transport table (one per chain the conversation used,
//! up to 32; a letter that leaves the worker, when its node is given back, gets a clone). The
//! machine's `sent_local` and `delivered` counters are counted on the worker and added before
//! any node is given back (so a node seen idle has its messages counted), or every
//! `TURNS` (4,096, `worker.rs`) turns. No lock, no atomic read-modify-write.
//!
//! A message to an idle node with an empty mailbox takes that node's shard lock once (it joins
//! the held set); a message to a node busy elsewhere, or from a thread that is not a worker,
//! takes the receiver's shard lock and clones the transport (one reference count), plus the run
//! queue's lock if the receiver was idle.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LockResult, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use dz_core::controller::{ErasedNode, ErasedNodeFuture, TaskFuture};
use dz_core::security::{MachineSecret, NodeSecret, OpenError};
use dz_core::NodeId;

use crate::index::{shard_of, IdHashing, SHARDS, SHARD_BITS};
#[cfg(test)]
use crate::letter::Letter;
use crate::padded::Padded;
use crate::shard::{Key, Phase, Shard, State};
use crate::stats::{bump, Counters, KeptByStore};

mod held;

pub(crate) use held::Turn;

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
    /// A node joined the worker's held set, with mail: its turns follow.
    Held,
    /// A new node's `started` hook; the node is in the held set (running).
    Start {
        key: Key,
        id: NodeId,
        node: Box<dyn ErasedNode>,
    },
    /// A woken `async` handler; the node is in the held set (running).
    Poll {
        key: Key,
        id: NodeId,
        fut: ErasedNodeFuture,
        waker: Waker,
    },
    /// An idle node's `stopping` hook (it is not held).
    Stop {
        key: Key,
        id: NodeId,
        node: Box<dyn ErasedNode>,
    },
    Task {
        key: Key,
        fut: TaskFuture,
        waker: Waker,
    },
}

/// Why a message was not put in a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Undeliverable {
    NoSuchNode,
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
    shards: Box<[Padded<ShardCell>]>,
    tasks: Mutex<Tasks>,
    queue: Padded<Mutex<Queue>>,
    work: Condvar,
    /// A worker is looking for work before it sleeps (one at most, so that idle workers do not
    /// take the cores of the threads that make their work).
    spinning: AtomicBool,
    closed: AtomicBool,
    /// Bumped whenever a busy node gets mail or a stop request in the store: a worker that
    /// holds nodes drains their store mailboxes when it changes.
    pokes: Padded<AtomicU64>,
    stats: Arc<Counters>,
    me: Weak<Store>,
}

/// A shard's lock, and the count of nodes spawned into the shard beside it (on the lock's cache
/// line, which a spawn has in hand anyway).
struct ShardCell {
    lock: Mutex<Shard>,
    /// Written only under `lock`, so a spawn adds one with a plain load and store (no locked
    /// instruction: each of those waits for every store before it); read with no lock.
    spawned: AtomicU64,
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
            shards: (0..SHARDS)
                .map(|_| Padded(ShardCell { lock: Mutex::new(Shard::new(hashing)), spawned: AtomicU64::new(0) }))
                .collect(),
            tasks: Mutex::default(),
            queue: Padded(Mutex::new(Queue { runnables: VecDeque::new(), sleeping: 0, closed: false })),
            work: Condvar::new(),
            spinning: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            pokes: Padded(AtomicU64::new(0)),
            stats,
            me: me.clone(),
        })
    }

    fn shard(&self, shard: usize) -> MutexGuard<'_, Shard> {
        relock(self.shards[shard].0.lock.lock())
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

    /// Puts a new node in place; its `started` hook, if it has one, runs first (on a worker,
    /// through the run queue); one without is idle at once. `secret` is the one a node
    /// spawned from another machine was shipped with. Gives the id and the node back if the id
    /// is in use or the store is closed.
    pub(crate) fn insert(
        &self,
        id: NodeId,
        node: Box<dyn ErasedNode>,
        secret: Option<NodeSecret>,
    ) -> Result<(), (NodeId, Box<dyn ErasedNode>)> {
        if self.closed.load(Ordering::Acquire) {
            return Err((id, node));
        }
        let hash = id.stable_hash();
        let shard = shard_of(&id);
        // A node without a `started` hook has nothing to run before its first message: it is
        // idle at once, and costs the run queue and a worker nothing.
        let starts = node.has_started_hook();
        let mut guard = self.shard(shard);
        let key = guard.insert_new(shard, (id, hash), node, starts)?;
        let slot = &mut guard.slots[(key.index >> SHARD_BITS) as usize];
        slot.queued = starts;
        if let Some(secret) = secret {
            slot.extra().secret = Some(Box::new(secret));
        }
        let spawned = &self.shards[shard].0.spawned;
        spawned.store(spawned.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        drop(guard);
        if starts {
            self.push_runnable(Runnable::Node(key));
        }
        Ok(())
    }

    /// The counters kept here rather than in the machine's [`Counters`].
    pub(crate) fn kept_counts(&self) -> KeptByStore {
        KeptByStore { spawned: self.shards.iter().map(|cell| cell.0.spawned.load(Ordering::Relaxed)).sum() }
    }

    /// Puts a node in place that needs no `started` hook and takes no work (the client node).
    pub(crate) fn insert_idle(&self, id: NodeId, node: Box<dyn ErasedNode>) {
        let shard = shard_of(&id);
        self.shard(shard).new_slot(shard, id, State::Idle(node));
    }

    /// Asks node `id` to stop: an idle node runs its `stopping` hook next; a busy one stops when
    /// what runs now ends; one suspended in an `async` handler ends at once, unhooked (its state
    /// is inside the handler). Returns what to drop unlocked.
    pub(crate) fn terminate(&self, id: &NodeId) -> Trash {
        if self.stop_if_held(id) {
            return Vec::new();
        }
        let shard = shard_of(id);
        let mut guard = self.shard(shard);
        let Some((slot, key)) = guard.find(id, shard) else { return Vec::new() };
        slot.stop = true;
        match slot.phase() {
            Phase::Suspended => self.bury_in(&mut guard, key, false),
            Phase::Busy => {
                self.poke();
                Vec::new()
            }
            Phase::Idle if !slot.queued => {
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
                self.take_node_job(&mut guard, key)
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
        if let Some(extra) = guard.slot_mut(node).and_then(|n| n.extra_mut()) {
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
        match slot.replace_state(State::Vacant) {
            State::Starting(node) | State::Idle(node) => trash.push(Box::new(node)),
            State::Suspended(fut) => trash.push(Box::new(fut)),
            State::Busy | State::Vacant => {}
        }
        let (mailbox, tasks, sealed_links) = match slot.extra_mut() {
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
                match slot.phase() {
                    Phase::Suspended if !slot.queued => {
                        slot.queued = true;
                        drop(guard);
                        self.push_runnable(runnable);
                    }
                    Phase::Busy => slot.woken = true,
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
        let shipped = slot.extra_ref().and_then(|extra| extra.secret.as_deref());
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
            .and_then(|local| shard.slots[local as usize].extra_ref())
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
        slot.idle_node().map(f)
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
            for slot in guard.slots.drain() {
                match slot.into_parts() {
                    (id, State::Idle(node)) => idle.push((id, node)),
                    (_, State::Starting(node)) => trash.push(Box::new(node)),
                    (_, State::Suspended(fut)) => trash.push(Box::new(fut)),
                    (_, State::Busy | State::Vacant) => {}
                }
            }
            guard.clear_index();
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
