//! A worker's *held set*: the nodes of its current conversation, checked out of the store, with a
//! mailbox of their own on the worker's side, so that a message a handler sends to one of them
//! takes no lock and no atomic operation.
//!
//! See the store's module docs ("How nodes are scheduled") for the design and the argument that
//! every sender's messages still arrive in send order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use dz_core::controller::{ErasedNode, ErasedNodeFuture};
use dz_core::parcel::Parcel;
use dz_core::{NodeId, Transport};

use super::{Job, Runnable, Store, Trash, Undeliverable};
use crate::index::shard_of;
use crate::letter::{HeldLetter, Letter};
use crate::shard::{Key, Phase, Shard, Slot, State};

/// The most nodes a worker holds at once. Small: a held node with mail waits for this worker,
/// whatever the others do, so a worker keeps a conversation, not a crowd.
pub(crate) const HELD_MAX: usize = 4;

/// How many messages in a row a held node handles before the worker turns to the next held node
/// that has mail.
pub(crate) const BATCH: u32 = 64;

/// The most transports a worker keeps in its table during a conversation (letters to held nodes
/// sent through others take a reference count of their own).
const VIAS_MAX: usize = 32;

/// No index.
const NONE: usize = usize::MAX;

/// A node the worker holds: `Busy` in the store, owned by this worker until given back.
pub(crate) struct Held {
    pub(crate) key: Key,
    /// Shared with the turn that runs it (an `Rc`: no atomic operation per message).
    pub(crate) id: Rc<NodeId>,
    /// `None` while its code runs (the worker has it).
    pub(crate) node: Option<Box<dyn ErasedNode>>,
    /// Its letters, in the order they are to be handled: what its store mailbox held when the
    /// worker took it, then what handlers on this worker sent it and what was drained from its
    /// store mailbox since, in the order each came.
    pub(crate) mail: VecDeque<Letter>,
    /// Asked to stop: it stops before handling anything more.
    pub(crate) stop: bool,
    /// The entry of the transport table the last letter sent to it went through (looked at
    /// first).
    last_via: usize,
}

/// A worker thread's side of the store (on any other thread, `store` is 0 and nothing is held).
pub(crate) struct Local {
    /// The store this thread works for (its address, only compared).
    store: usize,
    held: Vec<Held>,
    /// The held node whose code runs now.
    running: usize,
    /// The held node whose turn it is, and how many messages it handled in this turn.
    cursor: usize,
    streak: u32,
    /// The store's `pokes` when the held nodes' store mailboxes were last drained.
    seen_pokes: u64,
    /// Counted here and added to the machine's counters before any node is given back.
    sent_local: u64,
    delivered: u64,
    /// The transports that letters in held mail went through ([`Letter::Held`]), each once,
    /// with the address of its chain (what tells them apart: a letter only needs the chain).
    /// An entry is taken out while the running turn's handler reads its chain. Emptied when
    /// the conversation ends.
    vias: Vec<Option<Transport>>,
    via_chains: Vec<usize>,
    /// The entry the running turn took out.
    via_out: usize,
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            store: 0,
            held: Vec::new(),
            running: NONE,
            cursor: 0,
            streak: 0,
            seen_pokes: 0,
            sent_local: 0,
            delivered: 0,
            vias: Vec::new(),
            via_chains: Vec::new(),
            via_out: NONE,
        })
    };
}

/// What a worker runs next for a node it holds.
pub(crate) enum Turn {
    Handle { key: Key, id: Rc<NodeId>, node: Box<dyn ErasedNode>, letter: Letter },
    Stop { key: Key, id: Rc<NodeId>, node: Box<dyn ErasedNode> },
}

impl Local {
    #[inline(always)]
    fn find(&self, id: &NodeId) -> Option<usize> {
        // Ids compare in a few word loads (an inline one's length and bytes): cheaper than
        // computing the hash that would tell most apart first.
        self.held.iter().position(|held| *held.id == *id)
    }

    /// Puts a letter for held node `at`, sent through `via`, on its held mail: naming its
    /// transport by the table if it can. The common case (the same transport as the last letter
    /// to this node) builds the letter in its place in the mail.
    #[inline(always)]
    fn push_held(&mut self, at: usize, via: &Transport, message: Parcel) {
        let chain = via.chain().as_ptr() as usize;
        let held = &mut self.held[at];
        let last = held.last_via;
        if self.via_chains.get(last) == Some(&chain) && held.mail.len() < held.mail.capacity() {
            held.mail.push_back(Letter::Held(HeldLetter::new(message, last as u32)));
            return;
        }
        self.push_held_slow(at, via, chain, message);
    }

    #[cold]
    #[inline(never)]
    fn push_held_slow(&mut self, at: usize, via: &Transport, chain: usize, message: Parcel) {
        let entry = match self.via_chains.iter().position(|&c| c == chain) {
            Some(entry) => entry,
            None if self.vias.len() < VIAS_MAX => {
                self.vias.push(Some(via.clone()));
                self.via_chains.push(chain);
                self.vias.len() - 1
            }
            None => return self.held[at].mail.push_back(Letter::local(message, via)),
        };
        self.held[at].last_via = entry;
        self.held[at].mail.push_back(Letter::Held(HeldLetter::new(message, entry as u32)));
    }

    /// Puts the transport the running turn took out back in its entry (or drops it: it was a
    /// letter's own).
    #[inline(always)]
    fn put_via(&mut self, via: Option<Transport>) {
        let out = mem::replace(&mut self.via_out, NONE);
        match self.vias.get_mut(out) {
            Some(entry) => *entry = via,
            None => drop(via),
        }
    }

    /// `mail`, leaving the worker: its table letters become plain local letters (in place, in
    /// order).
    fn unhold(&self, mut mail: VecDeque<Letter>) -> VecDeque<Letter> {
        if !mail.iter().any(|letter| matches!(letter, Letter::Held(_))) {
            return mail;
        }
        for _ in 0..mail.len() {
            let Some(letter) = mail.pop_front() else { break };
            mail.push_back(match letter {
                Letter::Held(held) => {
                    let (message, via) = held.into_parts();
                    Letter::Local { message, via: self.vias.get(via as usize).cloned().flatten() }
                }
                other => other,
            });
        }
        mail
    }

    /// Takes entry `at` out of the held set, keeping `running` right.
    fn remove(&mut self, at: usize) -> Held {
        let last = self.held.len() - 1;
        let held = self.held.swap_remove(at);
        if self.running == last {
            self.running = at;
        } else if self.running == at {
            self.running = NONE;
        }
        self.streak = 0;
        held
    }

    /// A held node that may be given back at once: not running, no mail, not stopping.
    fn evictable(&self) -> Option<usize> {
        self.held.iter().position(|h| h.node.is_some() && h.mail.is_empty() && !h.stop)
    }
}

/// Merges a held node's mail into its slot's mailbox: the held mail first (it came before
/// anything pushed to the store mailbox since the last drain), keeping the bigger buffer. With
/// no held mail the slot is left alone: a node given back without mail gets no mailbox box (which
/// would cost every node that ever ran 80 bytes).
fn merge_mail(slot: &mut Slot, mut mail: VecDeque<Letter>) {
    if mail.is_empty() {
        return;
    }
    let slot_mailbox = &mut slot.extra().mailbox;
    if !slot_mailbox.is_empty() {
        mail.append(slot_mailbox);
    }
    mem::swap(slot_mailbox, &mut mail);
}

impl Store {
    fn addr(&self) -> usize {
        self as *const Store as usize
    }

    /// Marks this thread as one of this store's workers.
    pub(crate) fn enter_worker(&self) {
        LOCAL.with(|local| local.borrow_mut().store = self.addr());
    }

    /// Counts a message sent by a node of this machine to another, and delivers it: into the
    /// mailbox a held node has on this worker if the receiver is one (no lock), else through the
    /// store.
    ///
    /// The message is made by `message` only where it is put, from the two words it came in (an
    /// inline message's, or a box's): a parcel is not carried through the layers above as a
    /// value in memory, each copy of which reads what was just written (a stall on the hot
    /// path).
    #[inline(always)]
    pub(crate) fn send_local(
        &self,
        to: &NodeId,
        via: &Transport,
        message: impl FnOnce() -> Parcel,
    ) -> Result<(), Undeliverable> {
        LOCAL.with(|local| match local.try_borrow_mut() {
            Ok(mut local) if local.store == self.addr() => {
                let local = &mut *local;
                local.sent_local += 1;
                if let Some(at) = local.find(to) {
                    local.push_held(at, via, message());
                    return Ok(());
                }
                self.deliver_from_worker(local, to, via, message())
            }
            _ => {
                self.stats.sent_local.bump();
                self.deliver_to_store(to, Letter::local(message(), via))
            }
        })
    }

    /// Puts `letter` in the mailbox of node `to` (a message from afar, a timer's), and the node
    /// on the run queue if it was idle.
    pub(crate) fn deliver(&self, to: &NodeId, letter: Letter) -> Result<(), Undeliverable> {
        self.deliver_to_store(to, letter)
    }

    /// A worker's send to a node it does not hold: an idle receiver with an empty mailbox joins
    /// the held set, with the letter; any other goes through the store.
    #[inline(never)]
    fn deliver_from_worker(
        &self,
        local: &mut Local,
        to: &NodeId,
        via: &Transport,
        message: Parcel,
    ) -> Result<(), Undeliverable> {
        let room = local.held.len() < HELD_MAX || local.evictable().is_some();
        if !room {
            return self.deliver_to_store(to, Letter::local(message, via));
        }
        let shard = shard_of(to);
        let mut guard = self.shard(shard);
        let Some((slot, key)) = guard.find(to, shard) else { return Err(Undeliverable::NoSuchNode) };
        if !(slot.phase() == Phase::Idle && !slot.queued && !slot.stop && !slot.has_mail()) {
            return self.push_in(guard, key, Letter::local(message, via));
        }
        let State::Idle(node) = slot.replace_state(State::Busy) else { unreachable!("checked under this lock") };
        // The slot's (empty) mailbox comes along, with whatever capacity it has.
        let mail = slot.extra_mut().map(|extra| mem::take(&mut extra.mailbox)).unwrap_or_default();
        let id = Rc::new(slot.id.clone());
        drop(guard);
        if local.held.len() >= HELD_MAX {
            if let Some(at) = local.evictable() {
                let held = local.remove(at);
                self.give_back(local, held);
            }
        }
        // The FIFO rule: a node joining the held set may have sent, from another thread, letters
        // that wait in a held node's store mailbox; they go ahead of anything it sends from here.
        self.drain_if_poked(local);
        local.held.push(Held { key, id, node: Some(node), mail, stop: false, last_via: NONE });
        let at = local.held.len() - 1;
        local.push_held(at, via, message);
        Ok(())
    }

    /// Puts `letter` in the mailbox of node `to` in the store.
    fn deliver_to_store(&self, to: &NodeId, letter: Letter) -> Result<(), Undeliverable> {
        let shard = shard_of(to);
        let mut guard = self.shard(shard);
        let Some((_, key)) = guard.find(to, shard) else { return Err(Undeliverable::NoSuchNode) };
        self.push_in(guard, key, letter)
    }

    /// Pushes `letter` into the store mailbox of `to` (found in `guard`'s shard): a busy node's
    /// worker is told by a poke, an idle one goes on the run queue.
    fn push_in(&self, mut guard: MutexGuard<'_, Shard>, key: Key, letter: Letter) -> Result<(), Undeliverable> {
        let Some(slot) = guard.slot_mut(key) else { return Err(Undeliverable::NoSuchNode) };
        slot.extra().mailbox.push_back(letter);
        match slot.phase() {
            Phase::Busy => self.poke(),
            Phase::Idle if !slot.queued => {
                slot.queued = true;
                drop(guard);
                self.push_runnable(Runnable::Node(key));
            }
            _ => {}
        }
        Ok(())
    }

    /// Tells the workers that a busy node got mail or a stop request in the store.
    pub(super) fn poke(&self) {
        self.pokes.0.fetch_add(1, Ordering::Relaxed);
    }

    /// If a busy node got mail or a stop request in the store since this worker last looked,
    /// moves its held nodes' store mailboxes to the end of their held mail, and their stop
    /// requests over.
    #[inline]
    fn drain_if_poked(&self, local: &mut Local) {
        let pokes = self.pokes.0.load(Ordering::Relaxed);
        if pokes != local.seen_pokes {
            self.drain_held(local, pokes);
        }
    }

    #[cold]
    #[inline(never)]
    fn drain_held(&self, local: &mut Local, pokes: u64) {
        local.seen_pokes = pokes;
        for held in &mut local.held {
            let mut guard = self.shard_of_key(held.key);
            let Some(slot) = guard.slot_mut(held.key) else { continue };
            held.stop |= slot.stop;
            if let Some(extra) = slot.extra_mut() {
                held.mail.append(&mut extra.mailbox);
            }
        }
    }

    /// Node `key`, just taken off the run queue under its shard's lock (`shard`), joins this
    /// worker's held set: running (`node: None`) or ready (`Some`), with all its mail.
    pub(super) fn hold_taken(&self, shard: &mut Shard, key: Key, node: Option<Box<dyn ErasedNode>>) {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let Some(slot) = shard.slot_mut(key) else { return };
            if local.held.is_empty() {
                // Nothing held: the mail taken now is all there is; start counting pokes here.
                local.seen_pokes = self.pokes.0.load(Ordering::Relaxed);
            }
            let mail = slot.extra_mut().map(|extra| mem::take(&mut extra.mailbox)).unwrap_or_default();
            let running = node.is_none();
            let id = Rc::new(slot.id.clone());
            local.held.push(Held { key, id, node, mail, stop: false, last_via: NONE });
            if running {
                local.running = local.held.len() - 1;
            }
        });
    }

    /// The next turn for a node this worker holds: a stop asked for, else the next letter of the
    /// node whose turn it is (up to [`BATCH`] in a row), the held nodes taking turns.
    ///
    /// `back` is the running node, if its code ended normally: it is held again first (as by
    /// [`Store::resume`]).
    pub(crate) fn next_turn(&self, back: Option<(Box<dyn ErasedNode>, Option<Transport>)>) -> Option<Turn> {
        // Taken apart before the closure: moved into it whole, the pair was copied through the
        // stack with wide loads of what had just been written (a stall on every turn).
        let (node, via) = match back {
            Some((node, via)) => (Some(node), via),
            None => (None, None),
        };
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let local = &mut *local;
            if let Some(node) = node {
                local.put_via(via);
                self.hold_again(local, node);
            }
            let len = local.held.len();
            if len == 0 {
                return None;
            }
            for _ in 0..=len {
                if local.cursor >= len {
                    local.cursor = 0;
                }
                let at = local.cursor;
                let held = &mut local.held[at];
                let ready = held.node.is_some() && (held.stop || !held.mail.is_empty());
                if ready && local.streak < BATCH {
                    local.streak += 1;
                    local.running = at;
                    let node = held.node.take()?;
                    if held.stop {
                        return Some(Turn::Stop { key: held.key, id: Rc::clone(&held.id), node });
                    }
                    let letter = match held.mail.pop_front()? {
                        Letter::Held(held) => {
                            let (message, via) = held.into_parts();
                            let via = via as usize;
                            local.via_out = via;
                            Letter::Local { message, via: local.vias.get_mut(via).and_then(Option::take) }
                        }
                        other => other,
                    };
                    local.delivered += 1;
                    return Some(Turn::Handle { key: held.key, id: Rc::clone(&held.id), node, letter });
                }
                local.cursor += 1;
                local.streak = 0;
            }
            None
        })
    }

    /// The running held node's code ended normally: the node is held again (its mail and any
    /// stop request are looked at on its next turn).
    pub(crate) fn resume(&self, node: Box<dyn ErasedNode>, via: Option<Transport>) {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            local.put_via(via);
            self.hold_again(&mut local, node);
        });
    }

    #[inline(always)]
    fn hold_again(&self, local: &mut Local, node: Box<dyn ErasedNode>) {
        let running = mem::replace(&mut local.running, NONE);
        match local.held.get_mut(running) {
            Some(held) => held.node = Some(node),
            None => debug_assert!(false, "resume without a running node"),
        }
        self.drain_if_poked(local);
    }

    /// Takes the running node's entry out of the held set (its mail made fit to leave the
    /// worker), after putting back the transport its turn took out.
    fn take_running(&self, via: Option<Transport>) -> Option<Held> {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let local = &mut *local;
            local.put_via(via);
            let running = local.running;
            if running >= local.held.len() {
                return None;
            }
            let mut held = local.remove(running);
            held.mail = local.unhold(mem::take(&mut held.mail));
            Some(held)
        })
    }

    /// The running held node's `async` handler is waiting: it leaves the held set, its mail goes
    /// back to its store mailbox (held there until the handler ends).
    pub(crate) fn suspend(&self, key: Key, fut: ErasedNodeFuture, via: Option<Transport>) -> Trash {
        let held = self.take_running(via);
        let mut guard = self.shard_of_key(key);
        let Some(slot) = guard.slot_mut(key) else { return vec![Box::new(fut)] };
        slot.set_state(State::Suspended(fut));
        if let Some(held) = held {
            slot.stop |= held.stop;
            merge_mail(slot, held.mail);
        }
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

    /// The running held node ends (it panicked, or its `stopping` hook ran): out of the held
    /// set, and buried with all its mail.
    pub(crate) fn bury_running(&self, key: Key, panicked: bool, via: Option<Transport>) -> Trash {
        let held = self.take_running(via);
        let mut guard = self.shard_of_key(key);
        if let (Some(held), Some(slot)) = (held, guard.slot_mut(key)) {
            merge_mail(slot, held.mail);
        }
        self.bury_in(&mut guard, key, panicked)
    }

    /// Node `id` is held by this worker: it stops before handling anything more (`true`).
    pub(super) fn stop_if_held(&self, id: &NodeId) -> bool {
        LOCAL.with(|local| match local.try_borrow_mut() {
            Ok(mut local) if local.store == self.addr() => match local.find(id) {
                Some(at) => {
                    local.held[at].stop = true;
                    true
                }
                None => false,
            },
            _ => false,
        })
    }

    /// Whether this worker should end its conversation and look at the run queue: others wait
    /// there, or the machine is closing.
    pub(crate) fn should_yield(&self) -> bool {
        self.closed.load(Ordering::Acquire) || !self.queue().runnables.is_empty()
    }

    /// Adds what this worker counted to the machine's counters.
    pub(crate) fn flush_counts(&self) {
        LOCAL.with(|local| self.flush(&mut local.borrow_mut()));
    }

    fn flush(&self, local: &mut Local) {
        if local.sent_local > 0 {
            self.stats.sent_local.add(mem::take(&mut local.sent_local));
        }
        if local.delivered > 0 {
            self.stats.delivered.add(mem::take(&mut local.delivered));
        }
    }

    /// Ends this worker's conversation: every held node goes back to the store.
    pub(crate) fn give_back_all(&self) {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let local = &mut *local;
            while let Some(held) = local.held.pop() {
                self.give_back(local, held);
            }
            local.vias.clear();
            local.via_chains.clear();
            local.via_out = NONE;
            local.running = NONE;
            local.cursor = 0;
            local.streak = 0;
        });
    }

    /// Puts a held node (not running) back in the store: idle, its held mail in front of its
    /// store mailbox, on the run queue if it has mail or must stop.
    fn give_back(&self, local: &mut Local, held: Held) {
        // The counts first: whoever sees the node idle sees what it handled counted.
        self.flush(local);
        let Held { key, node, mail, stop, .. } = held;
        let Some(node) = node else { return };
        let mail = local.unhold(mail);
        let mut guard = self.shard_of_key(key);
        let Some(slot) = guard.slot_mut(key) else { return };
        slot.stop |= stop;
        merge_mail(slot, mail);
        slot.set_state(State::Idle(node));
        if (slot.stop || slot.has_mail()) && !slot.queued {
            slot.queued = true;
            drop(guard);
            self.push_runnable(Runnable::Node(key));
        }
    }

    /// The job for a node taken off the run queue (its shard locked: `shard`); a node that
    /// runs joins the held set.
    pub(super) fn take_node_job(&self, shard: &mut Shard, key: Key) -> Option<Job> {
        let slot = shard.slot_mut(key)?;
        slot.queued = false;
        let id = slot.id.clone();
        match slot.replace_state(State::Busy) {
            State::Starting(node) => {
                self.hold_taken(shard, key, None);
                Some(Job::Start { key, id, node })
            }
            State::Idle(node) if slot.stop => Some(Job::Stop { key, id, node }),
            State::Idle(node) if slot.has_mail() => {
                self.hold_taken(shard, key, Some(node));
                Some(Job::Held)
            }
            State::Suspended(fut) => {
                slot.woken = false;
                self.hold_taken(shard, key, None);
                Some(Job::Poll { key, id, fut, waker: self.node_waker(key) })
            }
            other => {
                slot.set_state(other);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IdHashing;
    use dz_core::controller::JsonMessage;

    #[test]
    fn a_node_given_back_without_mail_gets_no_mailbox() {
        let mut shard = Shard::new(IdHashing::new());
        let key = shard.new_slot(0, NodeId::new("A_1"), State::Busy);
        let slot = shard.slot_mut(key).expect("the slot");
        merge_mail(slot, VecDeque::new());
        assert!(slot.extra_ref().is_none(), "no mail, no box");

        let letter = |n: u8| Letter::timer(Parcel::boxed(Box::new(JsonMessage::new(vec![b'0' + n]))));
        slot.extra().mailbox.push_back(letter(2));
        merge_mail(slot, VecDeque::from([letter(0), letter(1)]));
        let order: Vec<_> = slot
            .extra()
            .mailbox
            .iter()
            .map(|l| match l {
                Letter::Local { message, .. } => message.to_json().unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(order, [b"0".to_vec(), b"1".to_vec(), b"2".to_vec()], "held mail first");
    }
}
