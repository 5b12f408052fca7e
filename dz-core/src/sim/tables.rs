//! The simulator's tables: nodes, timers and tasks, each in a slab.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::task::Waker;

use crate::controller::{ErasedNode, TimerMessage};
use crate::ids::NodeId;
use crate::rng::{BuildIdHasher, DetRng};

use super::stats::NodeStats;
use super::world::{Payload, TaskFut};

pub(super) struct TaskSlot {
    pub(super) node: NodeId,
    /// `None` while the task is being polled.
    pub(super) fut: Option<TaskFut>,
    pub(super) waker: Waker,
}

pub(super) struct TimerSlot {
    /// The node's slot in the node table.
    pub(super) node: usize,
    /// What the timer delivers: one message, or a period and a maker of messages.
    pub(super) message: TimerMessage,
}

pub(super) enum NodeState {
    /// Waiting for a message.
    Idle(Box<dyn ErasedNode>),
    /// Taken out to run a hook or a synchronous handler.
    Busy,
    /// In an `async` handler: the node lives inside that task's future.
    Suspended(u64),
    /// Terminated; the slot stays for its counters.
    Dead,
}

pub(super) struct NodeSlot {
    pub(super) id: NodeId,
    /// `id`'s [`NodeId::stable_hash`], which every delivery's trace entry and every send's link
    /// key take: kept here, as a [`NodeId`] computes it when asked.
    pub(super) hash: u64,
    pub(super) machine: usize,
    pub(super) state: NodeState,
    pub(super) rng: DetRng,
    /// What only nodes with `async` handlers or tasks, or spawned from another machine, need,
    /// boxed to keep slots small.
    pub(super) extra: Option<Box<SlotExtra>>,
    pub(super) stats: NodeStats,
    pub(super) stop_requested: bool,
    /// The slot of the node this one last sent to (`usize::MAX`: none yet): a node mostly sends
    /// to the same few, so a send mostly finds its receiver here, with no look-up by id.
    pub(super) sent_to: Cell<usize>,
}

/// The rarely used parts of a node's slot.
#[derive(Default)]
pub(super) struct SlotExtra {
    /// Messages that came while the node was in an `async` handler.
    pub(super) mailbox: VecDeque<(NodeId, Payload)>,
    /// The node's tasks (its running `async` handler among them).
    pub(super) tasks: Vec<u64>,
    /// The secret its spawner shipped with it, for a node spawned from another machine; the
    /// others' secrets derive from their machine's.
    pub(super) secret: Option<crate::security::NodeSecret>,
}

impl NodeSlot {
    /// The slot's rarely used parts, made on first use.
    pub(super) fn extra(&mut self) -> &mut SlotExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Whether messages wait in the mailbox.
    pub(super) fn has_mail(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| !e.mailbox.is_empty())
    }
}

/// The nodes, in a slab in the order they started (a dead node's slot stays, for its counters),
/// with an index by id and a one-entry cache: a handler's calls through its context all name
/// the same node, so most look-ups are of the last id looked up, and cost one comparison.
pub(super) struct NodeTable {
    pub(super) slots: Vec<NodeSlot>,
    pub(super) index: HashMap<NodeId, usize, BuildIdHasher>,
    pub(super) last: Cell<usize>,
    /// Ids of nodes inserted since the simulation last took them (it keeps its own dense copy,
    /// which handlers borrow their id from).
    pub(super) fresh: Vec<NodeId>,
}

impl NodeTable {
    pub(super) fn new() -> Self {
        NodeTable { slots: Vec::new(), index: HashMap::default(), last: Cell::new(0), fresh: Vec::new() }
    }

    #[inline(always)]
    pub(super) fn find(&self, id: &NodeId) -> Option<usize> {
        let last = self.last.get();
        if self.slots.get(last).is_some_and(|slot| slot.id == *id) {
            return Some(last);
        }
        self.find_in_index(id)
    }

    /// [`NodeTable::find`] past its cache, out of line so that the cached path stays small.
    #[inline(never)]
    fn find_in_index(&self, id: &NodeId) -> Option<usize> {
        let i = self.index.get(id).copied()?;
        self.last.set(i);
        Some(i)
    }

    #[inline]
    pub(super) fn get(&self, id: &NodeId) -> Option<&NodeSlot> {
        self.find(id).map(|i| &self.slots[i])
    }

    #[inline]
    pub(super) fn get_mut(&mut self, id: &NodeId) -> Option<&mut NodeSlot> {
        self.find(id).map(|i| &mut self.slots[i])
    }

    /// The slot of node `to`, a receiver of the node in slot `sender`.
    #[inline(always)]
    pub(super) fn find_receiver(&self, sender: usize, to: &NodeId) -> Option<usize> {
        let cached = self.slots[sender].sent_to.get();
        if self.slots.get(cached).is_some_and(|slot| slot.id == *to) {
            return Some(cached);
        }
        let i = self.index.get(to).copied()?;
        self.slots[sender].sent_to.set(i);
        Some(i)
    }

    pub(super) fn contains_key(&self, id: &NodeId) -> bool {
        self.find(id).is_some()
    }

    pub(super) fn insert(&mut self, slot: NodeSlot) {
        self.fresh.push(slot.id.clone());
        self.index.insert(slot.id.clone(), self.slots.len());
        self.slots.push(slot);
    }

    pub(super) fn drain(&mut self) -> impl Iterator<Item = NodeSlot> + '_ {
        self.index.clear();
        self.last.set(0);
        self.slots.drain(..)
    }
}

/// Timers in a slab; a token is the slot's index and a generation, so that a cancelled timer's
/// token never names a later timer in the same slot.
pub(super) struct TimerTable {
    pub(super) slots: Vec<(u32, Option<TimerSlot>)>,
    pub(super) free: Vec<u32>,
}

impl TimerTable {
    pub(super) fn new() -> Self {
        TimerTable { slots: Vec::new(), free: Vec::new() }
    }

    pub(super) fn insert(&mut self, timer: TimerSlot) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let (generation, slot) = &mut self.slots[index as usize];
        // 31 bits, so that a token fits below 2^63 and travels in a queue entry.
        *generation = generation.wrapping_add(1) & 0x7fff_ffff;
        *slot = Some(timer);
        (u64::from(*generation) << 32) | u64::from(index)
    }

    #[inline(always)]
    pub(super) fn locate(&self, token: u64) -> Option<usize> {
        let index = (token & 0xffff_ffff) as usize;
        let (generation, slot) = self.slots.get(index)?;
        (u64::from(*generation) == token >> 32 && slot.is_some()).then_some(index)
    }

    pub(super) fn get(&self, token: u64) -> Option<&TimerSlot> {
        self.locate(token).and_then(|i| self.slots[i].1.as_ref())
    }

    pub(super) fn remove(&mut self, token: u64) -> Option<TimerSlot> {
        let i = self.locate(token)?;
        self.remove_at(i)
    }

    /// The timer in slot `index` (found with [`TimerTable::locate`]).
    #[inline(always)]
    pub(super) fn at_mut(&mut self, index: usize) -> Option<&mut TimerSlot> {
        self.slots.get_mut(index).and_then(|(_, slot)| slot.as_mut())
    }

    /// Removes the timer in slot `index` (found with [`TimerTable::locate`]).
    #[inline(always)]
    pub(super) fn remove_at(&mut self, index: usize) -> Option<TimerSlot> {
        let timer = self.slots.get_mut(index)?.1.take()?;
        self.free.push(index as u32);
        Some(timer)
    }

    /// Empties slot `index` (found with [`TimerTable::locate`]) where it is, its timer dropped
    /// in place rather than moved out (for a timer whose message the caller has read already).
    #[inline(always)]
    pub(super) fn clear_at(&mut self, index: usize) {
        if let Some((_, timer @ Some(_))) = self.slots.get_mut(index) {
            *timer = None;
            self.free.push(index as u32);
        }
    }

    pub(super) fn drain(&mut self) -> impl Iterator<Item = TimerSlot> + '_ {
        self.free.clear();
        self.slots.drain(..).filter_map(|(_, t)| t)
    }
}
