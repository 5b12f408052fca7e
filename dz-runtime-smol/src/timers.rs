//! Real-time timers: `wake_at` wakers and nodes' scheduled messages, in one heap driven by one
//! task on the machine's I/O thread. The task sleeps (an async-io `Timer`) until the earliest
//! deadline, or until an earlier one is added: no polling, no CPU while nothing is due.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use async_io::Timer;
use dz_core::controller::TimerMessage;
use dz_core::parcel::Parcel;
use dz_core::NodeId;

use crate::core::Core;

enum Fire {
    Wake(Waker),
    /// The node timer with this token.
    Node(u64),
}

struct Entry {
    at: u64,
    seq: u64,
    fire: Fire,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed, so that the `BinaryHeap` (a max-heap) yields the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct NodeTimer {
    node: NodeId,
    message: TimerMessage,
}

/// Node timers in a slab; a token is a slot's index and generation, so that an old token never
/// names a later timer in the same slot.
#[derive(Default)]
struct TimerTable {
    slots: Vec<(u32, Option<NodeTimer>)>,
    free: Vec<u32>,
}

impl TimerTable {
    fn insert(&mut self, timer: NodeTimer) -> u64 {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push((0, None));
            (self.slots.len() - 1) as u32
        });
        let (generation, slot) = &mut self.slots[index as usize];
        *generation = generation.wrapping_add(1);
        *slot = Some(timer);
        (u64::from(*generation) << 32) | u64::from(index)
    }

    fn get_mut(&mut self, token: u64) -> Option<&mut NodeTimer> {
        let (generation, slot) = self.slots.get_mut((token & 0xffff_ffff) as usize)?;
        if u64::from(*generation) != token >> 32 {
            return None;
        }
        slot.as_mut()
    }

    fn remove(&mut self, token: u64) -> Option<NodeTimer> {
        let index = (token & 0xffff_ffff) as u32;
        let (generation, slot) = self.slots.get_mut(index as usize)?;
        if u64::from(*generation) != token >> 32 || slot.is_none() {
            return None;
        }
        self.free.push(index);
        slot.take()
    }
}

#[derive(Default)]
struct Inner {
    heap: BinaryHeap<Entry>,
    seq: u64,
    table: TimerTable,
}

/// The machine's timers.
pub(crate) struct Timers {
    inner: Mutex<Inner>,
    kick: async_channel::Sender<()>,
    kicked: async_channel::Receiver<()>,
}

/// What came due: wakers to wake and messages to deliver.
#[derive(Default)]
pub(crate) struct Due {
    wakers: Vec<Waker>,
    messages: Vec<(NodeId, u64, Parcel)>,
}

impl Timers {
    pub(crate) fn new() -> Self {
        let (kick, kicked) = async_channel::bounded(1);
        Timers { inner: Mutex::default(), kick, kicked }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, inner: &mut Inner, at: u64, fire: Fire) {
        let earliest = inner.heap.peek().map(|e| e.at);
        inner.seq += 1;
        let seq = inner.seq;
        inner.heap.push(Entry { at, seq, fire });
        if earliest.map_or(true, |e| at < e) {
            // Full means the driver is already told to look again.
            let _ = self.kick.try_send(());
        }
    }

    /// Wakes `waker` at `at` (machine microseconds).
    pub(crate) fn wake_at(&self, at: u64, waker: Waker) {
        let mut inner = self.lock();
        self.push(&mut inner, at, Fire::Wake(waker));
    }

    /// Delivers `message` to `node` at `at`; returns the token that cancels it.
    pub(crate) fn schedule(&self, node: &NodeId, at: u64, message: TimerMessage) -> u64 {
        let mut inner = self.lock();
        let token = inner.table.insert(NodeTimer { node: node.clone(), message });
        self.push(&mut inner, at, Fire::Node(token));
        token
    }

    /// Cancels `node`'s timer `token`; `false` if it is unknown, not `node`'s, or fired (once).
    pub(crate) fn cancel(&self, node: &NodeId, token: u64) -> bool {
        let mut inner = self.lock();
        if inner.table.get_mut(token).map_or(true, |t| &t.node != node) {
            return false;
        }
        let timer = inner.table.remove(token);
        drop(inner);
        drop(timer);
        true
    }

    /// Forgets a timer whose node is gone.
    pub(crate) fn forget(&self, token: u64) {
        let timer = self.lock().table.remove(token);
        drop(timer);
    }

    /// Takes what is due at `now`; returns it and the next deadline.
    fn take_due(&self, now: u64) -> (Due, Option<u64>) {
        let mut inner = self.lock();
        let mut due = Due::default();
        while inner.heap.peek().is_some_and(|e| e.at <= now) {
            let Some(entry) = inner.heap.pop() else { break };
            match entry.fire {
                Fire::Wake(waker) => due.wakers.push(waker),
                Fire::Node(token) => {
                    let Some(timer) = inner.table.get_mut(token) else { continue };
                    let node = timer.node.clone();
                    match &mut timer.message {
                        TimerMessage::Every { period_micros, make } => {
                            let next = entry.at.saturating_add((*period_micros).max(1)).max(now);
                            let message = make();
                            due.messages.push((node, token, message));
                            self.push(&mut inner, next, Fire::Node(token));
                        }
                        TimerMessage::Once(_) => {
                            if let Some(NodeTimer { message: TimerMessage::Once(message), .. }) =
                                inner.table.remove(token)
                            {
                                due.messages.push((node, token, message));
                            }
                        }
                    }
                }
            }
        }
        (due, inner.heap.peek().map(|e| e.at))
    }

    /// Empties the timers (at shutdown), returning what to drop.
    pub(crate) fn clear(&self) -> Vec<Box<dyn std::any::Any + Send>> {
        let mut inner = self.lock();
        let heap = std::mem::take(&mut inner.heap);
        let table = std::mem::take(&mut inner.table);
        let timers: Vec<_> = table.slots.into_iter().filter_map(|(_, t)| t).map(|t| t.message).collect();
        vec![Box::new(heap.into_vec().into_iter().map(|e| e.fire).collect::<Vec<_>>()), Box::new(timers)]
    }
}

/// The timer task: fires what is due, then sleeps until the next deadline or a kick.
pub(crate) async fn drive(core: Arc<Core>) {
    let kicked = core.timers.kicked.clone();
    loop {
        let (due, next) = core.timers.take_due(core.now());
        for waker in due.wakers {
            waker.wake();
        }
        for (node, token, message) in due.messages {
            if !core.deliver_timer(&node, message) {
                core.timers.forget(token);
            }
        }
        match next {
            Some(at) => {
                let when = core.instant_of(at);
                futures_lite::future::or(
                    async {
                        Timer::at(when).await;
                    },
                    async {
                        let _ = kicked.recv().await;
                    },
                )
                .await;
            }
            None => {
                if kicked.recv().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The instant `micros` after `start`.
pub(crate) fn instant_after(start: Instant, micros: u64) -> Instant {
    start + Duration::from_micros(micros)
}
