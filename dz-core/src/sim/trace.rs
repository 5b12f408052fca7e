//! The trace of a simulation: every delivery, drop, spawn and termination, in order, with a
//! stable hash that two runs can be compared by.

use std::fmt;

use crate::ids::NodeId;
use crate::rng::fold_word;

/// What happened at one step of a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TraceKind {
    /// A message reached its node's handler.
    Deliver,
    /// A message was dropped (its node is gone or never was, or it did not decode).
    Drop,
    /// A node started.
    Spawn,
    /// A node was terminated (or stopped by a panic).
    Terminate,
    /// A fault rule dropped a message between machines.
    FaultDrop,
    /// A partition cut a message off.
    Partitioned,
    /// A fault rule duplicated a message.
    FaultDuplicate,
    /// A fault rule held a message back.
    FaultReorder,
    /// A machine crashed (`from` and `to` are the machine's id).
    Crash,
    /// A machine restarted, empty (`from` and `to` are the machine's id).
    Restart,
    /// A sealed message was rejected on arrival (it is also traced as a drop).
    Rejected,
}

/// One step of a simulation's trace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TraceEntry {
    /// Virtual time, in microseconds.
    pub micros: u64,
    /// What happened.
    pub kind: TraceKind,
    /// The sending (or spawning, terminating) node.
    pub from: NodeId,
    /// The receiving (spawned, terminated) node.
    pub to: NodeId,
    /// The message's name (`Node::handler`), or the node type for spawns.
    pub message: &'static str,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>12}us {:?} {} -> {} {}", self.micros, self.kind, self.from, self.to, self.message)
    }
}

/// Where two traces part, as found by [`first_divergence`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The index of the first entry that differs.
    pub index: usize,
    /// That entry in the first trace (`None`: the first trace ended there).
    pub left: Option<TraceEntry>,
    /// That entry in the second trace (`None`: the second trace ended there).
    pub right: Option<TraceEntry>,
}

/// The first place where two traces differ, or `None` if they are equal: the debugging aid for a
/// simulation that should be deterministic and is not.
///
/// # Examples
///
/// ```
/// use dz_core::sim::trace::first_divergence;
/// assert_eq!(first_divergence(&[], &[]), None);
/// ```
pub fn first_divergence(left: &[TraceEntry], right: &[TraceEntry]) -> Option<Divergence> {
    let index = left.iter().zip(right).position(|(l, r)| l != r).unwrap_or(left.len().min(right.len()));
    if index == left.len() && index == right.len() {
        return None;
    }
    Some(Divergence { index, left: left.get(index).cloned(), right: right.get(index).cloned() })
}

/// Keeps the running hash of a trace, and the entries themselves when asked to.
#[derive(Debug)]
pub(crate) struct TraceRecorder {
    hash: u64,
    len: u64,
    entries: Option<Vec<TraceEntry>>,
}

impl TraceRecorder {
    pub(crate) fn new(keep_entries: bool) -> Self {
        TraceRecorder { hash: 0xcbf2_9ce4_8422_2325, len: 0, entries: keep_entries.then(Vec::new) }
    }

    pub(crate) fn record(&mut self, micros: u64, kind: TraceKind, from: &NodeId, to: &NodeId, message: &'static str) {
        self.record_hashed(micros, kind, from, to, message, crate::rng::stable_hash(message.as_bytes()));
    }

    /// [`TraceRecorder::record`] with the name's hash already known (`message_hash` must be
    /// `stable_hash(message)`).
    #[inline(always)]
    pub(crate) fn record_hashed(
        &mut self,
        micros: u64,
        kind: TraceKind,
        from: &NodeId,
        to: &NodeId,
        message: &'static str,
        message_hash: u64,
    ) {
        self.record_hashes(micros, kind, from.stable_hash(), to.stable_hash(), message_hash);
        if let Some(entries) = &mut self.entries {
            Self::keep(entries, TraceEntry { micros, kind, from: from.clone(), to: to.clone(), message });
        }
    }

    /// Whether entries are kept (and [`TraceRecorder::record_hashes`] must not be used alone).
    #[inline(always)]
    pub(crate) fn keeps_entries(&self) -> bool {
        self.entries.is_some()
    }

    /// Folds an entry into the hash, given the stable hashes of its ids and name, without keeping
    /// it: for a recorder that keeps no entries ([`TraceRecorder::keeps_entries`]).
    #[inline(always)]
    pub(crate) fn record_hashes(&mut self, micros: u64, kind: TraceKind, from: u64, to: u64, message: u64) {
        let mut h = fold_word(self.hash, micros ^ ((kind as u64) << 56));
        h = fold_word(h, from);
        h = fold_word(h, to);
        h = fold_word(h, message);
        self.hash = h;
        self.len += 1;
    }

    /// Keeps an entry, out of line: most runs keep none.
    #[inline(never)]
    fn keep(entries: &mut Vec<TraceEntry>, entry: TraceEntry) {
        entries.push(entry);
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn entries(&self) -> Option<&[TraceEntry]> {
        self.entries.as_deref()
    }

    pub(crate) fn keep_entries(&mut self, keep: bool) {
        match (keep, self.entries.is_some()) {
            (true, false) => self.entries = Some(Vec::new()),
            (false, true) => self.entries = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorder that keeps its entries and one that keeps only the hash (and is fed hashes
    /// alone, as the simulator's common path does) agree on the hash and the length.
    #[test]
    fn the_hash_is_the_same_whether_entries_are_kept_or_not() {
        let (a, b) = (NodeId::new("Leaf_a"), NodeId::new("Interior_b"));
        let mut kept = TraceRecorder::new(true);
        let mut hashed = TraceRecorder::new(false);
        for micros in 0..50u64 {
            let (from, to) = if micros % 3 == 0 { (&a, &b) } else { (&b, &a) };
            kept.record(micros, TraceKind::Deliver, from, to, "Interior::add");
            let name = crate::rng::stable_hash(b"Interior::add");
            hashed.record_hashes(micros, TraceKind::Deliver, from.stable_hash(), to.stable_hash(), name);
        }
        assert!(kept.keeps_entries() && !hashed.keeps_entries());
        assert_eq!((kept.hash(), kept.len()), (hashed.hash(), hashed.len()));
        assert_eq!(kept.entries().map(<[TraceEntry]>::len), Some(50));
        assert_ne!(kept.hash(), TraceRecorder::new(false).hash(), "entries change the hash");
    }
}
