//! The node store and its scheduler: nodes in a slab, a mailbox per node, one run queue.
//!
//! A node is a slot in a `Vec`: its state (boxed), its mailbox (a `VecDeque`) and a few flags.
//! There is no executor task and no channel per node. A node with work to do (a first `started`
//! hook, mail, a woken `async` handler, a stop request) is put once on the run queue; a worker
//! takes it off, and while the worker has it the node is `Busy`, so no other worker can run it:
//! a node's handlers never run concurrently. Mail that arrives meanwhile waits in the mailbox and
//! the worker picks it up before giving the node back.
//!
//! An `async` handler becomes a future kept in the node's slot (`Suspended`); it holds the
//! mailbox until it ends, and its waker puts the node back on the run queue. Tasks made with
//! `create_task` live in a second slab and go through the same run queue.
//!
//! A message sent by a handler to an idle node of the same machine does not go through the
//! queue: the worker keeps its receiver to run next itself (one node at a time, bumping any
//! earlier one to the queue, and for at most a bounded streak), so a conversation between two
//! nodes stays on one thread and wakes no other.
//!
//! Workers that find the run queue empty sleep on a condition variable: an idle machine uses no
//! CPU. Node code never runs with the store locked.

use std::any::Any;
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Wake, Waker};

use dz_core::controller::{AnyMessage, ErasedNode, ErasedNodeFuture, TaskFuture};
use dz_core::NodeId;

use crate::stats::{bump, Counters};

/// A message waiting in a mailbox: typed if it came from this machine, JSON if from afar (it is
/// decoded by the worker that runs the node).
pub(crate) enum Mail {
    Local(Box<dyn AnyMessage>),
    Json(Box<[u8]>),
}

impl Mail {
    fn name(&self) -> &'static str {
        match self {
            Mail::Local(m) => m.name(),
            Mail::Json(_) => "(from the network)",
        }
    }
}

/// A message and its sender.
pub(crate) struct Letter {
    pub(crate) from: NodeId,
    pub(crate) mail: Mail,
}

/// A node's slot: index and generation, so that a key never names a later node in the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

enum State {
    /// Free slot.
    Vacant,
    /// Spawned; its `started` hook has not run yet.
    Starting(Box<dyn ErasedNode>),
    /// Waiting for mail.
    Idle(Box<dyn ErasedNode>),
    /// A worker has it (a hook, a handler, or a poll of its `async` handler).
    Busy,
    /// Inside an `async` handler that is waiting; the node lives in the future.
    Suspended(ErasedNodeFuture),
}

struct Slot {
    id: NodeId,
    generation: u32,
    state: State,
    mailbox: VecDeque<Letter>,
    /// On the run queue.
    queued: bool,
    /// Its `async` handler was woken while being polled.
    woken: bool,
    /// Asked to stop: it stops once what runs now ends.
    stop: bool,
    tasks: Vec<Key>,
}

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

thread_local! {
    /// On a worker thread: its store (by address, only compared) and the node it runs next.
    static NEXT: Cell<(usize, Option<Key>)> = const { Cell::new((0, None)) };
}

/// Values whose drop runs user code (node states, futures): dropped after unlocking.
pub(crate) type Trash = Vec<Box<dyn Any + Send>>;

/// Nodes taken out of the store with their ids.
pub(crate) type IdleNodes = Vec<(NodeId, Box<dyn ErasedNode>)>;

struct Inner {
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: HashMap<NodeId, u32>,
    tasks: Vec<TaskSlot>,
    free_tasks: Vec<u32>,
    run_queue: VecDeque<Runnable>,
    sleeping: usize,
    closed: bool,
}

/// The store: every node of the machine, its mail, its tasks, and the run queue.
pub(crate) struct Store {
    inner: Mutex<Inner>,
    work: Condvar,
    stats: Arc<Counters>,
    me: Weak<Store>,
}

impl Store {
    pub(crate) fn new(stats: Arc<Counters>) -> Arc<Self> {
        Arc::new_cyclic(|me| Store {
            inner: Mutex::new(Inner {
                slots: Vec::new(),
                free: Vec::new(),
                index: HashMap::new(),
                tasks: Vec::new(),
                free_tasks: Vec::new(),
                run_queue: VecDeque::new(),
                sleeping: 0,
                closed: false,
            }),
            work: Condvar::new(),
            stats,
            me: me.clone(),
        })
    }

    /// The store stays consistent whatever panics (node code never runs under the lock).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push_runnable(&self, inner: &mut Inner, runnable: Runnable) {
        inner.run_queue.push_back(runnable);
        if inner.sleeping > 0 {
            self.work.notify_one();
        }
    }

    // ---- nodes in --------------------------------------------------------------------------

    /// Puts a new node in place; its `started` hook runs first. Gives the node back if its id is
    /// in use or the store is closed.
    pub(crate) fn insert(&self, id: NodeId, node: Box<dyn ErasedNode>) -> Result<(), Box<dyn ErasedNode>> {
        let mut inner = self.lock();
        if inner.closed || inner.index.contains_key(&id) {
            return Err(node);
        }
        let key = Self::new_slot(&mut inner, id, State::Starting(node));
        inner.slots[key.index as usize].queued = true;
        self.push_runnable(&mut inner, Runnable::Node(key));
        bump(&self.stats.spawned);
        Ok(())
    }

    /// Puts a node in place that needs no `started` hook and takes no work (the client node).
    pub(crate) fn insert_idle(&self, id: NodeId, node: Box<dyn ErasedNode>) {
        let mut inner = self.lock();
        Self::new_slot(&mut inner, id, State::Idle(node));
    }

    fn new_slot(inner: &mut Inner, id: NodeId, state: State) -> Key {
        let index = match inner.free.pop() {
            Some(i) => i,
            None => {
                inner.slots.push(Slot {
                    id: id.clone(),
                    generation: 0,
                    state: State::Vacant,
                    mailbox: VecDeque::new(),
                    queued: false,
                    woken: false,
                    stop: false,
                    tasks: Vec::new(),
                });
                (inner.slots.len() - 1) as u32
            }
        };
        let slot = &mut inner.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.id = id.clone();
        slot.state = state;
        slot.queued = false;
        slot.woken = false;
        slot.stop = false;
        inner.index.insert(id, index);
        Key { index, generation: inner.slots[index as usize].generation }
    }

    fn slot_mut(inner: &mut Inner, key: Key) -> Option<&mut Slot> {
        inner
            .slots
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation && !matches!(s.state, State::Vacant))
    }

    /// Puts `letter` in the mailbox of node `to`, and the node on the run queue if it was idle.
    pub(crate) fn deliver(&self, to: &NodeId, letter: Letter) -> Result<(), Undeliverable> {
        let mut inner = self.lock();
        let Some(&index) = inner.index.get(to) else { return Err(Undeliverable::NoSuchNode) };
        let slot = &mut inner.slots[index as usize];
        slot.mailbox.push_back(letter);
        if matches!(slot.state, State::Idle(_)) && !slot.queued {
            slot.queued = true;
            let key = Key { index, generation: slot.generation };
            match self.keep_next(key) {
                Some(None) => {}
                Some(Some(bumped)) => self.push_runnable(&mut inner, Runnable::Node(bumped)),
                None => self.push_runnable(&mut inner, Runnable::Node(key)),
            }
        }
        Ok(())
    }

    /// On one of this store's workers: makes `key` the node it runs next (a message it just
    /// sent wakes its receiver on the same thread, warm in cache, with no other thread woken)
    /// and returns the node that was next before, if any, for the run queue. `None` elsewhere.
    fn keep_next(&self, key: Key) -> Option<Option<Key>> {
        let me = self as *const Store as usize;
        NEXT.with(|next| {
            let (owner, before) = next.get();
            if owner != me {
                return None;
            }
            next.set((owner, Some(key)));
            Some(before)
        })
    }

    /// Marks this thread as one of this store's workers.
    pub(crate) fn enter_worker(&self) {
        NEXT.with(|next| next.set((self as *const Store as usize, None)));
    }

    /// The job of the node this worker kept to run next, if any.
    pub(crate) fn take_next(&self) -> Option<Job> {
        let key = NEXT.with(|next| {
            let (owner, key) = next.get();
            next.set((owner, None));
            key
        })?;
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        self.take_job(&mut inner, Runnable::Node(key))
    }

    /// Puts the node this worker kept to run next on the run queue instead (fairness).
    pub(crate) fn spill_next(&self) {
        let key = NEXT.with(|next| {
            let (owner, key) = next.get();
            next.set((owner, None));
            key
        });
        if let Some(key) = key {
            let mut inner = self.lock();
            self.push_runnable(&mut inner, Runnable::Node(key));
        }
    }

    /// Asks node `id` to stop: an idle node runs its `stopping` hook next; a busy one stops when
    /// what runs now ends; one suspended in an `async` handler ends at once, unhooked (its state
    /// is inside the handler). Returns what to drop unlocked.
    pub(crate) fn terminate(&self, id: &NodeId) -> Trash {
        let mut inner = self.lock();
        let Some(&index) = inner.index.get(id) else { return Vec::new() };
        let slot = &mut inner.slots[index as usize];
        let key = Key { index, generation: slot.generation };
        slot.stop = true;
        match slot.state {
            State::Suspended(_) => self.bury_locked(&mut inner, key, false),
            State::Idle(_) if !slot.queued => {
                slot.queued = true;
                self.push_runnable(&mut inner, Runnable::Node(key));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Adds a task beside node `id`; gives it back if the node is gone.
    pub(crate) fn create_task(&self, id: &NodeId, fut: TaskFuture) -> Result<(), TaskFuture> {
        let mut inner = self.lock();
        let Some(&index) = inner.index.get(id) else { return Err(fut) };
        let node = Key { index, generation: inner.slots[index as usize].generation };
        let task = match inner.free_tasks.pop() {
            Some(i) => i,
            None => {
                inner.tasks.push(TaskSlot { generation: 0, node, fut: None, live: false, queued: false, woken: false });
                (inner.tasks.len() - 1) as u32
            }
        };
        let slot = &mut inner.tasks[task as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.node = node;
        slot.fut = Some(fut);
        slot.live = true;
        slot.queued = true;
        slot.woken = false;
        let key = Key { index: task, generation: slot.generation };
        inner.slots[index as usize].tasks.push(key);
        self.push_runnable(&mut inner, Runnable::Task(key));
        Ok(())
    }

    // ---- workers ---------------------------------------------------------------------------

    /// The next job, waiting (without spinning) until there is one; `None` once closed.
    pub(crate) fn next_job(&self) -> Option<Job> {
        let mut inner = self.lock();
        loop {
            if inner.closed {
                return None;
            }
            while let Some(runnable) = inner.run_queue.pop_front() {
                if let Some(job) = self.take_job(&mut inner, runnable) {
                    return Some(job);
                }
            }
            inner.sleeping += 1;
            inner = self.work.wait(inner).unwrap_or_else(PoisonError::into_inner);
            inner.sleeping -= 1;
        }
    }

    fn take_job(&self, inner: &mut Inner, runnable: Runnable) -> Option<Job> {
        match runnable {
            Runnable::Node(key) => {
                let slot = Self::slot_mut(inner, key)?;
                slot.queued = false;
                let id = slot.id.clone();
                match std::mem::replace(&mut slot.state, State::Busy) {
                    State::Starting(node) => Some(Job::Start { key, id, node }),
                    State::Idle(node) if slot.stop => Some(Job::Stop { key, id, node }),
                    State::Idle(node) => match slot.mailbox.pop_front() {
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
                let slot = inner.tasks.get_mut(key.index as usize).filter(|t| t.generation == key.generation)?;
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
        let mut inner = self.lock();
        let Some(slot) = Self::slot_mut(&mut inner, key) else { return (None, vec![Box::new(node)]) };
        let id = slot.id.clone();
        if slot.stop {
            return (Some(Job::Stop { key, id, node }), Vec::new());
        }
        if slot.mailbox.is_empty() {
            slot.state = State::Idle(node);
            return (None, Vec::new());
        }
        if more {
            if let Some(letter) = slot.mailbox.pop_front() {
                return (Some(Job::Handle { key, id, node, letter }), Vec::new());
            }
        }
        slot.state = State::Idle(node);
        slot.queued = true;
        self.push_runnable(&mut inner, Runnable::Node(key));
        (None, Vec::new())
    }

    /// Node `key`'s `async` handler is waiting: keep its future until its waker fires.
    pub(crate) fn suspend(&self, key: Key, fut: ErasedNodeFuture) -> Trash {
        let mut inner = self.lock();
        let Some(slot) = Self::slot_mut(&mut inner, key) else { return vec![Box::new(fut)] };
        slot.state = State::Suspended(fut);
        if slot.stop {
            return self.bury_locked(&mut inner, key, false);
        }
        if slot.woken && !slot.queued {
            slot.woken = false;
            slot.queued = true;
            self.push_runnable(&mut inner, Runnable::Node(key));
        }
        Vec::new()
    }

    /// A task is waiting: keep it until its waker fires.
    pub(crate) fn task_pending(&self, key: Key, fut: TaskFuture) -> Trash {
        let mut inner = self.lock();
        let Some(slot) = inner.tasks.get_mut(key.index as usize).filter(|t| t.generation == key.generation && t.live)
        else {
            return vec![Box::new(fut)];
        };
        slot.fut = Some(fut);
        if slot.woken && !slot.queued {
            slot.woken = false;
            slot.queued = true;
            self.push_runnable(&mut inner, Runnable::Task(key));
        }
        Vec::new()
    }

    /// A task ended (or panicked: then `panicked` and its node stops too).
    pub(crate) fn task_done(&self, key: Key, panicked: bool) -> Trash {
        let mut inner = self.lock();
        let Some(slot) = inner.tasks.get_mut(key.index as usize).filter(|t| t.generation == key.generation && t.live)
        else {
            return Vec::new();
        };
        let node = slot.node;
        Self::free_task(&mut inner, key);
        if let Some(n) = Self::slot_mut(&mut inner, node) {
            n.tasks.retain(|&t| t != key);
        }
        if panicked {
            return self.bury_locked(&mut inner, node, true);
        }
        Vec::new()
    }

    fn free_task(inner: &mut Inner, key: Key) -> Option<TaskFuture> {
        let slot = inner.tasks.get_mut(key.index as usize).filter(|t| t.generation == key.generation && t.live)?;
        slot.live = false;
        slot.queued = false;
        let fut = slot.fut.take();
        inner.free_tasks.push(key.index);
        fut
    }

    /// Ends node `key` for good: its state, tasks and mail go (mail counted as dropped), its slot
    /// is freed. `panicked` counts it as such.
    pub(crate) fn bury(&self, key: Key, panicked: bool) -> Trash {
        let mut inner = self.lock();
        self.bury_locked(&mut inner, key, panicked)
    }

    fn bury_locked(&self, inner: &mut Inner, key: Key, panicked: bool) -> Trash {
        let mut trash: Trash = Vec::new();
        let Some(slot) = Self::slot_mut(inner, key) else { return trash };
        match std::mem::replace(&mut slot.state, State::Vacant) {
            State::Starting(node) | State::Idle(node) => trash.push(Box::new(node)),
            State::Suspended(fut) => trash.push(Box::new(fut)),
            State::Busy | State::Vacant => {}
        }
        let mailbox = std::mem::take(&mut slot.mailbox);
        let tasks = std::mem::take(&mut slot.tasks);
        let id = slot.id.clone();
        slot.queued = false;
        inner.index.remove(&id);
        inner.free.push(key.index);
        for task in tasks {
            if let Some(fut) = Self::free_task(inner, task) {
                trash.push(Box::new(fut));
            }
        }
        for letter in mailbox {
            tracing::debug!(from = %letter.from, to = %id, message = letter.mail.name(), "dz: dropped: node ended");
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
        let mut inner = self.lock();
        match runnable {
            Runnable::Node(key) => {
                let Some(slot) = Self::slot_mut(&mut inner, key) else { return };
                match slot.state {
                    State::Suspended(_) if !slot.queued => {
                        slot.queued = true;
                        self.push_runnable(&mut inner, runnable);
                    }
                    State::Busy => slot.woken = true,
                    _ => {}
                }
            }
            Runnable::Task(key) => {
                let Some(slot) = inner.tasks.get_mut(key.index as usize).filter(|t| t.generation == key.generation)
                else {
                    return;
                };
                if !slot.live {
                    return;
                }
                if slot.fut.is_none() {
                    slot.woken = true;
                } else if !slot.queued {
                    slot.queued = true;
                    self.push_runnable(&mut inner, runnable);
                }
            }
        }
    }

    // ---- outside looks and the end -----------------------------------------------------------

    /// Runs `f` on node `id`'s state if it is idle.
    pub(crate) fn inspect<R>(&self, id: &NodeId, f: impl FnOnce(&dyn ErasedNode) -> R) -> Option<R> {
        let inner = self.lock();
        let &index = inner.index.get(id)?;
        match &inner.slots[index as usize].state {
            State::Idle(node) => Some(f(&**node)),
            _ => None,
        }
    }

    /// Whether node `id` is here and has not ended.
    pub(crate) fn contains(&self, id: &NodeId) -> bool {
        self.lock().index.contains_key(id)
    }

    /// How many nodes live here.
    pub(crate) fn len(&self) -> usize {
        self.lock().index.len()
    }

    /// Stops the workers: `next_job` returns `None` from now on.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    /// Takes every idle node out (for its `stopping` hook) and empties the store; returns the
    /// nodes and what else to drop unlocked.
    pub(crate) fn drain(&self) -> (IdleNodes, Trash) {
        let mut inner = self.lock();
        let mut idle = Vec::new();
        let mut trash: Trash = Vec::new();
        for slot in inner.slots.drain(..) {
            match slot.state {
                State::Idle(node) => idle.push((slot.id, node)),
                State::Starting(node) => trash.push(Box::new(node)),
                State::Suspended(fut) => trash.push(Box::new(fut)),
                State::Busy | State::Vacant => {}
            }
        }
        for task in inner.tasks.drain(..) {
            if let Some(fut) = task.fut {
                trash.push(Box::new(fut));
            }
        }
        inner.index.clear();
        inner.free.clear();
        inner.free_tasks.clear();
        inner.run_queue.clear();
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
