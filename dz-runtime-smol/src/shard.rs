//! A shard of the node store: a slab of node slots and the map from ids to slots, behind one of
//! the store's locks (the store, in `store.rs`, does the locking and the scheduling).
//!
//! A slot is 64 bytes: the node's id, its state, a generation, a few flags, and a box made on the
//! node's first mail or task that holds its mailbox and task list. The map goes from 32 bits of
//! an id's hash (kept in the [`NodeId`] since it was made) to the first slot of the chain of
//! slots whose ids share those bits — almost always one slot long; the link to the next one is
//! kept in the box, which only such a slot then needs — so that an entry is 8 bytes where the id
//! itself as key would take 32.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

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

/// No slot: the end of a chain of slots whose ids share a hash.
const NONE: u32 = u32::MAX;

/// The hash a shard's map keys an id by: the high 32 bits of its 64-bit hash (the shard is
/// chosen by a mix of all of them), of which the unit tests keep only two, so that they walk
/// long chains of ids that share one.
fn chain_hash(id: &NodeId) -> u32 {
    chain_hash_of(id.stable_hash())
}

/// [`chain_hash`] of the id whose [`NodeId::stable_hash`] is `hash`.
fn chain_hash_of(hash: u64) -> u32 {
    const MASK: u32 = if cfg!(test) { 0b11 } else { u32::MAX };
    (hash >> 32) as u32 & MASK
}

/// A node's place in its shard: 64 bytes, so that a million idle nodes cost little more than
/// their states and ids.
pub(crate) struct Slot {
    pub(crate) id: NodeId,
    pub(crate) state: State,
    /// Made on the node's first mail or task, and kept for the slot's next nodes.
    pub(crate) extra: Option<Box<Extra>>,
    pub(crate) generation: u32,
    /// On the run queue.
    pub(crate) queued: bool,
    /// Its `async` handler was woken while being polled.
    pub(crate) woken: bool,
    /// Asked to stop: it stops once what runs now ends.
    pub(crate) stop: bool,
}

/// What only nodes that get mail or make tasks (or were spawned from afar) need.
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
    /// The next slot of this shard whose id's [`chain_hash`] is the same, if any (rarely: the
    /// slot's box is made for it then).
    same_hash: Option<u32>,
}

impl Slot {
    pub(crate) fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    pub(crate) fn has_mail(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| !e.mailbox.is_empty())
    }

    /// The next slot of the chain of slots whose ids share this one's [`chain_hash`], or [`NONE`].
    fn same_hash(&self) -> u32 {
        self.extra.as_ref().and_then(|e| e.same_hash).unwrap_or(NONE)
    }

    fn set_same_hash(&mut self, next: u32) {
        if next != NONE {
            self.extra().same_hash = Some(next);
        } else if let Some(extra) = self.extra.as_mut() {
            extra.same_hash = None;
        }
    }
}

/// Part of the nodes (those whose id hashes to it), with its own lock.
///
/// Its map goes from 32 bits of an id's hash to the first slot of the (almost always one-long)
/// chain of slots whose ids have those bits: 8 bytes per entry where the id itself as key would
/// take 32, and the slot says which id it holds.
///
/// It also keeps the receiving side of the sealed links into its nodes (their keys and replay
/// windows), so that a frame is opened under the lock that guards its receiver's secret.
pub(crate) struct Shard {
    pub(crate) slots: Vec<Slot>,
    pub(crate) free: Vec<u32>,
    pub(crate) index: HashMap<u32, u32, IdHashing>,
    pub(crate) live: usize,
    pub(crate) recv: RecvLinks,
}

impl Shard {
    pub(crate) fn new(hashing: IdHashing) -> Self {
        Shard {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::with_hasher(hashing),
            live: 0,
            recv: RecvLinks::default(),
        }
    }

    /// The local index of node `id`'s slot.
    pub(crate) fn local_of(&self, id: &NodeId) -> Option<u32> {
        let mut local = *self.index.get(&chain_hash(id))?;
        while local != NONE {
            let slot = &self.slots[local as usize];
            if slot.id == *id {
                return Some(local);
            }
            local = slot.same_hash();
        }
        None
    }

    /// Whether node `id` is here.
    pub(crate) fn contains(&self, id: &NodeId) -> bool {
        self.local_of(id).is_some()
    }

    /// Takes slot `local` (which holds `id`) out of its hash chain.
    pub(crate) fn unlink(&mut self, id: &NodeId, local: u32) {
        let hash = chain_hash(id);
        let next = self.slots[local as usize].same_hash();
        let Some(&head) = self.index.get(&hash) else { return };
        if head == local {
            if next == NONE {
                self.index.remove(&hash);
            } else {
                self.index.insert(hash, next);
            }
            self.slots[local as usize].set_same_hash(NONE);
            return;
        }
        let mut at = head;
        while at != NONE {
            let after = self.slots[at as usize].same_hash();
            if after == local {
                self.slots[at as usize].set_same_hash(next);
                self.slots[local as usize].set_same_hash(NONE);
                return;
            }
            at = after;
        }
    }

    /// The slot of `key` (whose shard this is), if it still holds that node.
    pub(crate) fn slot_mut(&mut self, key: Key) -> Option<&mut Slot> {
        self.slots
            .get_mut((key.index >> SHARD_BITS) as usize)
            .filter(|s| s.generation == key.generation && !matches!(s.state, State::Vacant))
    }

    /// The slot and key of node `id`.
    pub(crate) fn find(&mut self, id: &NodeId, shard: usize) -> Option<(&mut Slot, Key)> {
        let local = self.local_of(id)?;
        let slot = &mut self.slots[local as usize];
        let key = Key { index: (local << SHARD_BITS) | shard as u32, generation: slot.generation };
        Some((slot, key))
    }

    /// Puts a new node in a slot under `id` (whose [`NodeId::stable_hash`] is `hash`), unless a
    /// node of this shard has that id already (then it gives `node` back): one probe of the map
    /// checks the id is free and links the slot in. The node is `Starting` if `starts` (it has a
    /// `started` hook to run), else `Idle`.
    pub(crate) fn insert_new(
        &mut self,
        shard: usize,
        (id, hash): (NodeId, u64),
        node: Box<dyn ErasedNode>,
        starts: bool,
    ) -> Result<Key, Box<dyn ErasedNode>> {
        debug_assert_eq!(hash, id.stable_hash());
        let local = self.free.last().copied().unwrap_or(self.slots.len() as u32);
        let same_hash = match self.index.entry(chain_hash_of(hash)) {
            Entry::Occupied(mut head) => {
                let mut at = *head.get();
                while at != NONE {
                    let slot = &self.slots[at as usize];
                    if slot.id == id {
                        return Err(node);
                    }
                    at = slot.same_hash();
                }
                std::mem::replace(head.get_mut(), local)
            }
            Entry::Vacant(head) => {
                head.insert(local);
                NONE
            }
        };
        let state = if starts { State::Starting(node) } else { State::Idle(node) };
        Ok(self.fill(shard, local, id, state, same_hash))
    }

    /// Puts a new node in a slot under `id`, which the caller knows is not in use here.
    pub(crate) fn new_slot(&mut self, shard: usize, id: NodeId, state: State) -> Key {
        let local = self.free.last().copied().unwrap_or(self.slots.len() as u32);
        let same_hash = self.index.insert(chain_hash(&id), local).unwrap_or(NONE);
        self.fill(shard, local, id, state, same_hash)
    }

    /// Fills slot `local` — the last free one, or a new one at the end — with a new node, linked
    /// in front of `same_hash` in its chain (the map already names it).
    fn fill(&mut self, shard: usize, local: u32, id: NodeId, state: State, same_hash: u32) -> Key {
        let slot = if self.free.pop().is_some() {
            let slot = &mut self.slots[local as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.id = id;
            slot.state = state;
            slot.queued = false;
            slot.woken = false;
            slot.stop = false;
            slot
        } else {
            self.slots.push(Slot { id, state, extra: None, generation: 1, queued: false, woken: false, stop: false });
            &mut self.slots[local as usize]
        };
        slot.set_same_hash(same_hash);
        let generation = slot.generation;
        self.live += 1;
        Key { index: (local << SHARD_BITS) | shard as u32, generation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_64_bytes_and_a_letter_32() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        assert_eq!(std::mem::size_of::<Letter>(), 32);
    }
}
