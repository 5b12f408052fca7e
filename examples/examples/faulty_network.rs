//! The sum tree on a hostile network: 10% of the messages between machines dropped, 5%
//! duplicated, 10% held back, and two machines cut off for 20 s. The interior nodes report to
//! the root over reliable links, so the root's total still equals what the leaves sent.
//!
//! `cargo run --release --example faulty_network [-- SEED [SECONDS]]`

use std::time::Instant;

use dz_core::sim::{Direction, FaultKind, FaultRule, Filter, Simulation};
use dz_examples::sum_tree::{run, TreeConfig};

const MACHINES: usize = 10;

fn main() {
    let mut args = std::env::args().skip(1);
    let seed = parse(args.next(), "SEED", 42);
    let seconds = parse(args.next(), "SECONDS", 60);
    let config = TreeConfig { run_ms: seconds * 1000, reliable: true, ..TreeConfig::default() };

    let wall = Instant::now();
    let mut sim = Simulation::new(seed);
    let machines: Vec<_> = (0..MACHINES).map(|_| sim.add_machine()).collect();
    for (kind, rate) in [(FaultKind::Drop, 0.10), (FaultKind::Duplicate, 0.05), (FaultKind::Reorder, 0.10)] {
        sim.add_fault(FaultRule { kind, rate, filter: Filter::any() });
    }
    // Machines 1 and 2 (not the root's) are cut off from 10 s to 30 s of virtual time.
    sim.run_for(10_000);
    sim.partition(&machines[1..3], Direction::Both, 20_000);
    let outcome = run(&mut sim, &machines, config);
    let wall = wall.elapsed().as_secs_f64();

    let faults = sim.fault_stats();
    println!("faulty_network: seed {seed}, {MACHINES} machines, {} leaves, {seconds} s of ticking", outcome.leaves);
    println!("  faults between machines: {} messages seen", faults.considered);
    println!("    dropped:     {:>7} ({:.1}%)", faults.dropped, pct(faults.dropped, faults.considered));
    println!("    duplicated:  {:>7} ({:.1}%)", faults.duplicated, pct(faults.duplicated, faults.considered));
    println!("    held back:   {:>7} ({:.1}%)", faults.reordered, pct(faults.reordered, faults.considered));
    println!("    partitioned: {:>7} (machines 1 and 2 cut off for 20 s)", faults.partitioned);
    println!("  expected total (sum of what the leaves sent): {}", outcome.leaves_sent);
    println!("  actual total (what the root received):        {}", outcome.total);
    println!(
        "  simulated: {:.1} s   wall: {wall:.3} s   trace hash: {:016x}",
        outcome.simulated_ms as f64 / 1000.0,
        outcome.trace_hash
    );
    if outcome.total != outcome.leaves_sent || outcome.expected_at_root != outcome.leaves_sent {
        eprintln!("faulty_network: the totals differ");
        std::process::exit(1);
    }
    println!("  totals equal: yes");
}

fn pct(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

fn parse(arg: Option<String>, name: &str, default: u64) -> u64 {
    match arg {
        None => default,
        Some(text) => text.parse().unwrap_or_else(|_| {
            eprintln!("faulty_network: {name} must be a whole number, not {text:?}");
            std::process::exit(2);
        }),
    }
}
