//! A shard of the node store: a slab of node slots and the table from ids to slots, behind one
//! of the store's locks (the store, in `store.rs`, does the locking and the scheduling).
//!
//! A slot is 48 bytes: the node's id (24), a 16-byte body, a generation and a few flags. The
//! body is the node's boxed state while the node has nothing else, or a box ([`Extra`]) that
//! holds the state beside the node's mailbox, task list and the rest, made on the node's first
//! mail or task (or when it suspends) and kept for the slot's next nodes. So an idle node that
//! never had mail costs its slot, its state's own allocation and its table entry.
//!
//! The slots are kept in chunks of [`CHUNK`] that never move: the slab grows by a chunk, with no
//! copy of the slots it has and no half-used doubled buffer.
//!
//! The table is a hash table of slot numbers (4 bytes an entry) keyed by the hash of the id in
//! the slot ([`IdHashing`] over [`NodeId::stable_hash`]): a look-up compares ids in the slots it
//! probes, so ids that share a hash need nothing of their own.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::mem;
use std::ops::{Index, IndexMut};

use hashbrown::HashTable;

use dz_core::controller::{ErasedNode, ErasedNodeFuture};
use dz_core::security::{NodeSecret, RecvLinks};
use dz_core::NodeId;

use crate::index::{IdHashing, SHARD_BITS};
use crate::letter::Letter;

/// A node's slot: index and generation, so that a key never names a later node in the same slot.
/// A node's index keeps its shard in its low [`SHARD_BITS`] bits; a task's is its slot's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// Where a slot's node is, with what it holds there: what [`Slot::replace_state`] takes and
/// gives.
pub(crate) enum State {
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

/// [`State`] without what it holds: what a slot says of its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Vacant,
    Starting,
    Idle,
    Busy,
    Suspended,
}

/// A slot's 16 bytes besides its id: the state alone, or the box of everything.
enum Body {
    /// A starting or idle node's state, for a slot without an [`Extra`].
    Bare(Box<dyn ErasedNode>),
    /// The slot's box, if it has one; a starting or idle node's state is in it.
    Boxed(Option<Box<Extra>>),
}

/// A node's place in its shard: 48 bytes, so that a million idle nodes cost little more than
/// their states and ids.
pub(crate) struct Slot {
    pub(crate) id: NodeId,
    body: Body,
    pub(crate) generation: u32,
    phase: Phase,
    /// On the run queue.
    pub(crate) queued: bool,
    /// Its `async` handler was woken while being polled.
    pub(crate) woken: bool,
    /// Asked to stop: it stops once what runs now ends.
    pub(crate) stop: bool,
}

/// What only nodes that get mail or make tasks (or were spawned from afar, or suspend) need.
#[derive(Default)]
pub(crate) struct Extra {
    pub(crate) mailbox: VecDeque<Letter>,
    pub(crate) tasks: Vec<Key>,
    /// The secret a node spawned from another machine was shipped with (its spawner drew it);
    /// `None` for a node spawned here, whose secret derives from the machine's.
    pub(crate) secret: Option<Box<NodeSecret>>,
    /// A sealed message to this node has opened: the shard's [`RecvLinks`] remember links into
    /// it, to forget when it ends.
    pub(crate) sealed_links: bool,
    /// The state of a starting or idle node.
    node: Option<Box<dyn ErasedNode>>,
    /// The waiting `async` handler of a suspended node.
    suspended: Option<ErasedNodeFuture>,
}

impl Slot {
    /// A new slot holding `state` (which a [`State::Suspended`] cannot be: a new node is
    /// starting, idle, or not yet there).
    fn new(id: NodeId, state: State) -> Self {
        let (body, phase) = match state {
            State::Starting(node) => (Body::Bare(node), Phase::Starting),
            State::Idle(node) => (Body::Bare(node), Phase::Idle),
            State::Busy => (Body::Boxed(None), Phase::Busy),
            State::Vacant | State::Suspended(_) => (Body::Boxed(None), Phase::Vacant),
        };
        Slot { id, body, generation: 1, phase, queued: false, woken: false, stop: false }
    }

    /// What the slot holds, by kind.
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// The slot's box, made now if it has none (taking the bare state into it).
    pub(crate) fn extra(&mut self) -> &mut Extra {
        if let Body::Bare(_) = self.body {
            let node = self.take_node();
            self.body = Body::Boxed(Some(Box::new(Extra { node, ..Extra::default() })));
        }
        match &mut self.body {
            Body::Boxed(extra) => extra.get_or_insert_with(Box::default),
            Body::Bare(_) => unreachable!("boxed just above"),
        }
    }

    /// The slot's box, if it has one.
    pub(crate) fn extra_ref(&self) -> Option<&Extra> {
        match &self.body {
            Body::Boxed(extra) => extra.as_deref(),
            Body::Bare(_) => None,
        }
    }

    /// The slot's box, if it has one.
    pub(crate) fn extra_mut(&mut self) -> Option<&mut Extra> {
        match &mut self.body {
            Body::Boxed(extra) => extra.as_deref_mut(),
            Body::Bare(_) => None,
        }
    }

    pub(crate) fn has_mail(&self) -> bool {
        self.extra_ref().is_some_and(|e| !e.mailbox.is_empty())
    }

    /// The state of the node if it is idle.
    pub(crate) fn idle_node(&self) -> Option<&dyn ErasedNode> {
        if self.phase != Phase::Idle {
            return None;
        }
        match &self.body {
            Body::Bare(node) => Some(&**node),
            Body::Boxed(extra) => extra.as_ref()?.node.as_deref(),
        }
    }

    fn take_node(&mut self) -> Option<Box<dyn ErasedNode>> {
        match &mut self.body {
            Body::Bare(_) => match mem::replace(&mut self.body, Body::Boxed(None)) {
                Body::Bare(node) => Some(node),
                Body::Boxed(_) => None,
            },
            Body::Boxed(extra) => extra.as_mut()?.node.take(),
        }
    }

    fn put_node(&mut self, node: Box<dyn ErasedNode>) {
        match &mut self.body {
            Body::Boxed(Some(extra)) => extra.node = Some(node),
            body => *body = Body::Bare(node),
        }
    }

    /// Puts `new` in the slot and gives back what it held.
    pub(crate) fn replace_state(&mut self, new: State) -> State {
        let old = match self.phase {
            Phase::Vacant => State::Vacant,
            Phase::Busy => State::Busy,
            Phase::Starting => self.take_node().map_or(State::Vacant, State::Starting),
            Phase::Idle => self.take_node().map_or(State::Vacant, State::Idle),
            Phase::Suspended => {
                self.extra_mut().and_then(|e| e.suspended.take()).map_or(State::Vacant, State::Suspended)
            }
        };
        self.phase = match new {
            State::Vacant => Phase::Vacant,
            State::Busy => Phase::Busy,
            State::Starting(node) => {
                self.put_node(node);
                Phase::Starting
            }
            State::Idle(node) => {
                self.put_node(node);
                Phase::Idle
            }
            State::Suspended(fut) => {
                self.extra().suspended = Some(fut);
                Phase::Suspended
            }
        };
        old
    }

    /// Puts `new` in a slot that holds nothing to give back (busy or vacant).
    pub(crate) fn set_state(&mut self, new: State) {
        let old = self.replace_state(new);
        debug_assert!(matches!(old, State::Busy | State::Vacant), "a state dropped by set_state");
    }

    /// The slot's id and what it holds, for the end of the store.
    pub(crate) fn into_parts(mut self) -> (NodeId, State) {
        let state = self.replace_state(State::Vacant);
        (self.id, state)
    }
}

/// log2 of [`CHUNK`].
const CHUNK_BITS: u32 = 8;

/// Slots per chunk of a shard's slab (12 KiB of slots).
pub(crate) const CHUNK: usize = 1 << CHUNK_BITS;

/// A shard's slab: chunks of [`CHUNK`] slots that never move once made.
#[derive(Default)]
pub(crate) struct Slots {
    chunks: Vec<Vec<Slot>>,
    len: usize,
}

impl Slots {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Slot> {
        self.chunks.get_mut(index >> CHUNK_BITS)?.get_mut(index & (CHUNK - 1))
    }

    fn push(&mut self, slot: Slot) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(slot),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(slot);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    /// Takes every slot out.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Slot> {
        self.len = 0;
        mem::take(&mut self.chunks).into_iter().flatten()
    }
}

impl Index<usize> for Slots {
    type Output = Slot;

    fn index(&self, index: usize) -> &Slot {
        &self.chunks[index >> CHUNK_BITS][index & (CHUNK - 1)]
    }
}

impl IndexMut<usize> for Slots {
    fn index_mut(&mut self, index: usize) -> &mut Slot {
        &mut self.chunks[index >> CHUNK_BITS][index & (CHUNK - 1)]
    }
}

/// Part of the nodes (those whose id hashes to it), with its own lock.
///
/// Its table holds slot numbers, keyed by the hash of the id in the slot: 4 bytes per entry
/// where the id itself as key would take 24, and the slot says which id it holds.
///
/// It also keeps the receiving side of the sealed links into its nodes (their keys and replay
/// windows), so that a frame is opened under the lock that guards its receiver's secret.
pub(crate) struct Shard {
    pub(crate) slots: Slots,
    pub(crate) free: Vec<u32>,
    index: HashTable<u32>,
    hashing: IdHashing,
    pub(crate) live: usize,
    pub(crate) recv: RecvLinks,
}

impl Shard {
    pub(crate) fn new(hashing: IdHashing) -> Self {
        Shard {
            slots: Slots::default(),
            free: Vec::new(),
            index: HashTable::new(),
            hashing,
            live: 0,
            recv: RecvLinks::default(),
        }
    }

    /// The table's hash of the id whose [`NodeId::stable_hash`] is `hash`. The unit tests keep
    /// only two bits of it, so that they probe past many ids that share one.
    fn table_hash(hashing: &IdHashing, hash: u64) -> u64 {
        const MASK: u64 = if cfg!(test) { 0b11 } else { u64::MAX };
        hashing.hash_one(hash) & MASK
    }

    /// The local index of node `id`'s slot.
    pub(crate) fn local_of(&self, id: &NodeId) -> Option<u32> {
        let hash = Self::table_hash(&self.hashing, id.stable_hash());
        let slots = &self.slots;
        self.index.find(hash, |&local| slots[local as usize].id == *id).copied()
    }

    /// Whether node `id` is here.
    pub(crate) fn contains(&self, id: &NodeId) -> bool {
        self.local_of(id).is_some()
    }

    /// Takes slot `local` (which holds `id`) out of the table.
    pub(crate) fn unlink(&mut self, id: &NodeId, local: u32) {
        let hash = Self::table_hash(&self.hashing, id.stable_hash());
        if let Ok(entry) = self.index.find_entry(hash, |&at| at == local) {
            entry.remove();
        }
    }

    /// Empties the table (the slots are drained apart).
    pub(crate) fn clear_index(&mut self) {
        self.index.clear();
    }

    /// The slot of `key` (whose shard this is), if it still holds that node.
    pub(crate) fn slot_mut(&mut self, key: Key) -> Option<&mut Slot> {
        self.slots
            .get_mut((key.index >> SHARD_BITS) as usize)
            .filter(|s| s.generation == key.generation && s.phase != Phase::Vacant)
    }

    /// The slot and key of node `id`.
    pub(crate) fn find(&mut self, id: &NodeId, shard: usize) -> Option<(&mut Slot, Key)> {
        let local = self.local_of(id)?;
        let slot = &mut self.slots[local as usize];
        let key = Key { index: (local << SHARD_BITS) | shard as u32, generation: slot.generation };
        Some((slot, key))
    }

    /// Puts a new node in a slot under `id` (whose [`NodeId::stable_hash`] is `hash`), unless a
    /// node of this shard has that id already (then it gives `id` and `node` back): one probe of the
    /// table checks the id is free and links the slot in. The node is `Starting` if `starts` (it
    /// has a `started` hook to run), else `Idle`.
    pub(crate) fn insert_new(
        &mut self,
        shard: usize,
        (id, hash): (NodeId, u64),
        node: Box<dyn ErasedNode>,
        starts: bool,
    ) -> Result<Key, (NodeId, Box<dyn ErasedNode>)> {
        debug_assert_eq!(hash, id.stable_hash());
        let local = self.free.last().copied().unwrap_or(self.slots.len() as u32);
        let (slots, hashing) = (&self.slots, &self.hashing);
        let entry = self.index.entry(
            Self::table_hash(hashing, hash),
            |&at| slots[at as usize].id == id,
            |&at| Self::table_hash(hashing, slots[at as usize].id.stable_hash()),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(_) => return Err((id, node)),
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(local);
            }
        }
        let phase = if starts { Phase::Starting } else { Phase::Idle };
        Ok(self.fill_node(shard, local, id, node, phase))
    }

    /// [`Shard::fill`] for a new node's state, in `phase` (starting or idle), written into the
    /// slot as the two words it is: built as a [`State`] first, it was read back whole from
    /// where its parts had just been stored, and that wait was a tenth of a spawn.
    fn fill_node(&mut self, shard: usize, local: u32, id: NodeId, node: Box<dyn ErasedNode>, phase: Phase) -> Key {
        if self.free.last() != Some(&local) {
            self.slots.push(Slot {
                id,
                body: Body::Bare(node),
                generation: 1,
                phase,
                queued: false,
                woken: false,
                stop: false,
            });
            self.live += 1;
            return Key { index: (local << SHARD_BITS) | shard as u32, generation: 1 };
        }
        let state = if phase == Phase::Starting { State::Starting(node) } else { State::Idle(node) };
        self.fill(shard, local, id, state)
    }

    /// Puts a new node in a slot under `id`, which the caller knows is not in use here.
    pub(crate) fn new_slot(&mut self, shard: usize, id: NodeId, state: State) -> Key {
        let local = self.free.last().copied().unwrap_or(self.slots.len() as u32);
        let (slots, hashing) = (&self.slots, &self.hashing);
        self.index.insert_unique(Self::table_hash(hashing, id.stable_hash()), local, |&at| {
            Self::table_hash(hashing, slots[at as usize].id.stable_hash())
        });
        self.fill(shard, local, id, state)
    }

    /// Fills slot `local` — the last free one, or a new one at the end — with a new node (the
    /// table already names it).
    fn fill(&mut self, shard: usize, local: u32, id: NodeId, state: State) -> Key {
        let slot = if self.free.pop().is_some() {
            let slot = &mut self.slots[local as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.id = id;
            slot.queued = false;
            slot.woken = false;
            slot.stop = false;
            slot.set_state(state);
            slot
        } else {
            self.slots.push(Slot::new(id, state));
            &mut self.slots[local as usize]
        };
        let generation = slot.generation;
        self.live += 1;
        Key { index: (local << SHARD_BITS) | shard as u32, generation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_48_bytes_and_a_letter_32() {
        assert_eq!(std::mem::size_of::<Slot>(), 48);
        assert_eq!(std::mem::size_of::<Letter>(), 32);
    }
}
