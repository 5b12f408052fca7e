//! The sum tree over reliable links on a hostile network still adds up.

use dz_core::sim::{Direction, FaultKind, FaultRule, Filter, Simulation};
use dz_examples::sum_tree::{run, TreeConfig};

fn hostile(seed: u64, reliable: bool) -> (u64, u64) {
    let mut sim = Simulation::new(seed);
    let machines: Vec<_> = (0..4).map(|_| sim.add_machine()).collect();
    for (kind, rate) in [(FaultKind::Drop, 0.10), (FaultKind::Duplicate, 0.05), (FaultKind::Reorder, 0.10)] {
        sim.add_fault(FaultRule { kind, rate, filter: Filter::any() });
    }
    sim.partition(&machines[1..3], Direction::Both, 20_000);
    let config = TreeConfig { leaves_per_interior: 10, run_ms: 30_000, reliable, ..TreeConfig::default() };
    let outcome = run(&mut sim, &machines, config);
    assert!(sim.fault_stats().partitioned > 0 && sim.fault_stats().dropped > 0);
    (outcome.total, outcome.leaves_sent)
}

#[test]
fn reliable_links_keep_the_totals_equal_under_faults() {
    for seed in 0..5 {
        let (total, sent) = hostile(seed, true);
        assert_eq!(total, sent, "seed {seed}");
    }
}

#[test]
fn plain_sends_lose_reports_under_the_same_faults() {
    // The counter-check: without the reliable layer the same network loses part of the total
    // (and may lose a `done`, so the tree never finishes: that is reported as a panic).
    let lost = (0..5).any(|seed| {
        std::panic::catch_unwind(|| {
            let (total, sent) = hostile(seed, false);
            total != sent
        })
        .unwrap_or(true)
    });
    assert!(lost, "plain sends survived drops, duplicates and a partition");
}
