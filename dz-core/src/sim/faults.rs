//! The network's faults: rules that drop, duplicate or delay messages between machines,
//! partitions that cut machines off for a window of time, and per-link latency.
//!
//! Faults act on messages that cross machines (within a machine nothing is lost). Each rule
//! draws from the simulation's `faults` stream, independently of the others, so a run with the
//! same seed and rules injects the same faults; every injected fault is counted in
//! [`FaultStats`] and recorded in the trace.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::ids::MachineId;
use crate::rng::DetRng;

use super::LatencyModel;

/// What a [`FaultRule`] does to a message it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The message is lost.
    Drop,
    /// The message arrives twice (the copy with a latency of its own).
    Duplicate,
    /// The message is held back by a delay drawn from `10..=1200` ms, so that later messages
    /// on its link may overtake it.
    Reorder,
}

/// Which messages a rule applies to; `None` matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// The sending machine.
    pub from: Option<MachineId>,
    /// The receiving machine.
    pub to: Option<MachineId>,
    /// The message's name, `NodeType::handler` (as in the trace).
    pub message: Option<String>,
}

impl Filter {
    /// Matches every message.
    pub fn any() -> Self {
        Filter::default()
    }

    fn matches(&self, from: &MachineId, to: &MachineId, message: &str) -> bool {
        let machine = |want: &Option<MachineId>, got: &MachineId| want.as_ref().map_or(true, |w| w == got);
        machine(&self.from, from) && machine(&self.to, to) && self.message.as_deref().map_or(true, |m| m == message)
    }
}

/// Injects a fault into a fraction `rate` (0 to 1) of the messages `filter` matches.
///
/// # Examples
///
/// ```
/// use dz_core::sim::{FaultKind, FaultRule, Filter};
/// let lossy = FaultRule { kind: FaultKind::Drop, rate: 0.1, filter: Filter::any() };
/// assert_eq!(lossy.rate, 0.1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// What the rule does.
    pub kind: FaultKind,
    /// The fraction of matching messages it hits.
    pub rate: f64,
    /// Which messages it applies to.
    pub filter: Filter,
}

/// Which way a partition cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Nothing crosses the cut.
    Both,
    /// Messages from the cut-off machines to the rest are lost; the other way works.
    Outgoing,
    /// Messages from the rest to the cut-off machines are lost; the other way works.
    Incoming,
}

/// A partition: `machines` cut off from the rest from `start_micros` (inclusive) to
/// `end_micros` (exclusive). A message is cut if it is sent across the cut, in the cut
/// direction, during the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The machines on one side of the cut.
    pub machines: Vec<MachineId>,
    /// Which way the cut holds.
    pub direction: Direction,
    /// When it starts, in virtual microseconds.
    pub start_micros: u64,
    /// When it heals, in virtual microseconds.
    pub end_micros: u64,
}

impl Partition {
    fn cuts(&self, now: u64, from: &MachineId, to: &MachineId) -> bool {
        if now < self.start_micros || now >= self.end_micros {
            return false;
        }
        let from_in = self.machines.contains(from);
        let to_in = self.machines.contains(to);
        match self.direction {
            Direction::Both => from_in != to_in,
            Direction::Outgoing => from_in && !to_in,
            Direction::Incoming => !from_in && to_in,
        }
    }
}

/// Counters of injected faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultStats {
    /// Messages between machines that the fault rules saw.
    pub considered: u64,
    /// Messages dropped by a [`FaultKind::Drop`] rule.
    pub dropped: u64,
    /// Messages duplicated.
    pub duplicated: u64,
    /// Messages held back.
    pub reordered: u64,
    /// Messages lost to a partition.
    pub partitioned: u64,
    /// Machine crashes.
    pub crashes: u64,
    /// Machine restarts.
    pub restarts: u64,
}

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Lost to a partition.
    Partitioned,
    /// Lost to a drop rule.
    Dropped,
    /// Delivered, maybe twice, maybe held back by the given microseconds.
    Deliver { duplicate: bool, hold_micros: Option<u64> },
}

/// The fault state of a simulation.
#[derive(Debug)]
pub(crate) struct Faults {
    pub(crate) rules: Vec<FaultRule>,
    pub(crate) partitions: Vec<Partition>,
    pub(crate) link_latency: BTreeMap<(MachineId, MachineId), LatencyModel>,
    pub(crate) stats: FaultStats,
    rng: DetRng,
}

/// The delay of a [`FaultKind::Reorder`], in microseconds.
const REORDER_MICROS: Range<u64> = 10_000..1_200_001;

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Faults {
            rules: Vec::new(),
            partitions: Vec::new(),
            link_latency: BTreeMap::new(),
            stats: FaultStats::default(),
            rng: DetRng::stream(seed, "faults"),
        }
    }

    /// Whether any rule or partition could touch a message (the common case is none).
    pub(crate) fn active(&self) -> bool {
        !self.rules.is_empty() || !self.partitions.is_empty()
    }

    /// Decides the fate of a message from machine `from` to machine `to` sent at `now`.
    pub(crate) fn verdict(&mut self, now: u64, from: &MachineId, to: &MachineId, message: &str) -> Verdict {
        self.stats.considered += 1;
        if self.partitions.iter().any(|p| p.cuts(now, from, to)) {
            self.stats.partitioned += 1;
            return Verdict::Partitioned;
        }
        let (mut drop, mut duplicate, mut hold) = (false, false, None);
        for rule in &self.rules {
            if !rule.filter.matches(from, to, message) {
                continue;
            }
            // Every matching rule draws, hit or not, so that one rule's hits do not shift another's.
            let hit = self.rng.chance(rule.rate);
            let delay = REORDER_MICROS.start + self.rng.below(REORDER_MICROS.end - REORDER_MICROS.start);
            match (rule.kind, hit) {
                (FaultKind::Drop, true) => drop = true,
                (FaultKind::Duplicate, true) => duplicate = true,
                (FaultKind::Reorder, true) => hold = Some(delay),
                (_, false) => {}
            }
        }
        if drop {
            self.stats.dropped += 1;
            return Verdict::Dropped;
        }
        self.stats.duplicated += u64::from(duplicate);
        self.stats.reordered += u64::from(hold.is_some());
        Verdict::Deliver { duplicate, hold_micros: hold }
    }

    /// The latency model of the link `from -> to`, if one was set for it.
    pub(crate) fn latency_of(&self, from: &MachineId, to: &MachineId) -> Option<LatencyModel> {
        if self.link_latency.is_empty() {
            return None;
        }
        self.link_latency.get(&(from.clone(), to.clone())).copied()
    }

    /// Forgets partitions that have healed.
    pub(crate) fn prune(&mut self, now: u64) {
        self.partitions.retain(|p| p.end_micros > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> MachineId {
        MachineId::from(s)
    }

    #[test]
    fn filters_match_by_machine_and_message() {
        let f = Filter { from: Some(id("a")), to: None, message: Some("X::y".into()) };
        assert!(f.matches(&id("a"), &id("b"), "X::y"));
        assert!(!f.matches(&id("b"), &id("a"), "X::y"));
        assert!(!f.matches(&id("a"), &id("b"), "X::z"));
        assert!(Filter::any().matches(&id("q"), &id("r"), "anything"));
    }

    #[test]
    fn partitions_cut_only_their_direction_and_window() {
        let p = Partition { machines: vec![id("a")], direction: Direction::Outgoing, start_micros: 10, end_micros: 20 };
        assert!(p.cuts(10, &id("a"), &id("b")));
        assert!(!p.cuts(10, &id("b"), &id("a")));
        assert!(!p.cuts(20, &id("a"), &id("b")));
        assert!(!p.cuts(9, &id("a"), &id("b")));
        let both = Partition { direction: Direction::Both, ..p.clone() };
        assert!(both.cuts(15, &id("b"), &id("a")));
        assert!(!both.cuts(15, &id("b"), &id("c")), "traffic on one side is not cut");
    }
}
