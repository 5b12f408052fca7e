//! The machine's counters: what it delivered, what it dropped and why, what crossed the wire.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::padded::Padded;

macro_rules! counters {
    (
        hot { $($(#[$hot_doc:meta])* $hot:ident,)* }
        kept_by_store { $($(#[$kept_doc:meta])* $kept:ident,)* }
        $($(#[$doc:meta])* $name:ident,)*
    ) => {
        /// A snapshot of a machine's counters, from [`Machine::stats`](crate::Machine::stats).
        ///
        /// Every drop and failure has its own counter, so that a test (or an operator) can tell a
        /// dead peer from a bad frame from a message for a node that is gone.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct MachineStats {
            $($(#[$hot_doc])* pub $hot: u64,)*
            $($(#[$kept_doc])* pub $kept: u64,)*
            $($(#[$doc])* pub $name: u64,)*
        }

        /// The counters the store keeps under its own locks (see [`Counters`]), read by it.
        #[derive(Clone, Copy, Debug, Default)]
        pub(crate) struct KeptByStore {
            $(pub(crate) $kept: u64,)*
        }

        /// The live counters behind [`MachineStats`]: those bumped per message are striped by
        /// thread, the others are one atomic each. The spawn count is kept by the store, beside
        /// each shard's lock, where a spawn bumps it with no atomic operation of its own.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $hot: Striped,)*
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self, kept: KeptByStore) -> MachineStats {
                MachineStats {
                    $($hot: self.$hot.sum(),)*
                    $($kept: kept.$kept,)*
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

/// How many stripes a hot counter has.
const STRIPES: usize = 8;

/// Hands each thread its stripe, in turn.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe of every hot counter (`usize::MAX` until first used).
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn my_stripe() -> usize {
    STRIPE.with(|stripe| {
        if stripe.get() == usize::MAX {
            stripe.set(NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES);
        }
        stripe.get()
    })
}

/// A counter bumped from many threads at once: each thread adds to its own stripe (a cache line
/// of its own, while there are no more threads than stripes), and a read sums the stripes. Two
/// workers counting every message would otherwise pass one cache line back and forth.
#[derive(Debug, Default)]
pub(crate) struct Striped {
    stripes: [Padded<AtomicU64>; STRIPES],
}

impl Striped {
    /// Adds one.
    pub(crate) fn bump(&self) {
        self.stripes[my_stripe()].0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` (a worker's count of a streak).
    pub(crate) fn add(&self, n: u64) {
        self.stripes[my_stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total so far.
    pub(crate) fn sum(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

counters! {
    hot {
        /// Messages this machine's nodes sent to nodes of this machine.
        sent_local,
        /// Messages handed to a handler.
        delivered,
    }
    kept_by_store {
        /// Nodes started on this machine.
        spawned,
    }
    /// Messages this machine's nodes sent to nodes of other machines (handed to a peer link).
    sent_remote,
    /// Nodes that ended (terminated or panicked).
    terminated,
    /// Nodes stopped by a panic in one of their handlers, hooks or tasks.
    panicked,
    /// Messages dropped because no node has their id here (never was, or has ended), sealed ones
    /// from peers included (a sealed batch for such a node counts once, whatever it holds).
    dropped_no_node,
    /// Messages from the network dropped because their JSON is not one of the node's messages
    /// (and sealed batches that came while sealing is off here: once per batch).
    dropped_undecodable,
    /// Messages dropped because they were made for another type of node.
    dropped_wrong_type,
    /// Messages, spawns and terminations for another machine that could not be sent: the peer is
    /// down (or backing off after a failed connect), its backlog is full, or its connection broke
    /// with them unwritten.
    send_failed,
    /// Spawns that failed: unknown node type, state that does not (de)serialise, id in use.
    spawn_failed,
    /// Of those, spawns asked for a node type this machine has not registered.
    spawn_unknown_type,
    /// Frames read from peers.
    frames_in,
    /// Frames written to peers.
    frames_out,
    /// Bytes read from peers (frame headers included).
    bytes_in,
    /// Bytes written to peers.
    bytes_out,
    /// Writes to peers (each carries one or more frames: more than one under load).
    writes,
    /// Connections closed because a frame was not valid (garbage, bad JSON, unexpected kind).
    bad_frames,
    /// Connections closed because a frame announced more than the size limit.
    oversized_frames,
    /// Connections accepted from peers.
    connections_accepted,
    /// Connections this machine opened to peers.
    connections_dialed,
    /// Attempts to connect to a peer that failed (refused, timed out, rejected).
    connect_failed,
    /// Established connections that ended (closed by the peer, broken, or closed for bad input).
    connections_closed,
    /// Messages from peers rejected as malformed: sealed bytes too short or not base64, a sealed
    /// batch whose opened bytes are not a well-formed batch (its count out of bounds or not
    /// matching its bytes), or a plain (unsealed) message while sealing is on. None reached a
    /// handler.
    ///
    /// This and the other `rejected_*` counters count a sealed batch once, however many messages
    /// it carries: a batch is accepted or rejected whole.
    rejected_malformed,
    /// Sealed messages whose tag did not verify: tampered, sealed under a made-up or forged key
    /// (a chain not descending from a handle the receiver issued), or re-addressed to another
    /// node. None reached a handler.
    rejected_bad_tag,
    /// Sealed messages already accepted on their link: replays (or duplicates). None reached a
    /// handler.
    rejected_replayed,
    /// Sealed messages with an empty chain, or one longer than
    /// [`MAX_CHAIN`](dz_core::security::MAX_CHAIN).
    rejected_bad_chain,
}

impl MachineStats {
    /// Every message rejected by sealing, all reasons together.
    pub fn rejected(&self) -> u64 {
        self.rejected_malformed + self.rejected_bad_tag + self.rejected_replayed + self.rejected_bad_chain
    }
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_striped_counter_sums_what_every_thread_added() {
        let counter = Striped::default();
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| (0..1000).for_each(|_| counter.bump()));
            }
        });
        counter.bump();
        assert_eq!(counter.sum(), 12_001);
    }

    #[test]
    fn a_snapshot_reads_hot_cold_and_store_counters() {
        let counters = Counters::default();
        counters.delivered.bump();
        counters.delivered.bump();
        bump(&counters.send_failed);
        let stats = counters.snapshot(KeptByStore { spawned: 3 });
        assert_eq!((stats.delivered, stats.send_failed, stats.spawned), (2, 1, 3));
    }
}
