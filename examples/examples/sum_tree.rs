//! A root, 10 interior nodes and 1,000 leaves on 10 simulated machines add numbers up for 300
//! simulated seconds; the root's total must equal what the leaves sent.
//!
//! `cargo run --release --example sum_tree [-- SEED [SECONDS]]`

use std::time::Instant;

use dz_examples::sum_tree::{simulate, TreeConfig};

const MACHINES: usize = 10;

fn main() {
    let mut args = std::env::args().skip(1);
    let seed = parse(args.next(), "SEED", 42);
    let seconds = parse(args.next(), "SECONDS", 300);
    let config = TreeConfig { run_ms: seconds * 1000, ..TreeConfig::default() };
    let wall = Instant::now();
    let outcome = simulate(seed, MACHINES, config);
    let wall = wall.elapsed().as_secs_f64();
    let simulated = outcome.simulated_ms as f64 / 1000.0;
    println!(
        "sum_tree: seed {seed}, {MACHINES} machines, 1 root, {MACHINES} interior nodes, {} leaves",
        outcome.leaves
    );
    println!("  expected total (sum of what the leaves sent): {}", outcome.leaves_sent);
    println!("  actual total (what the root received):        {}", outcome.total);
    println!("  messages delivered: {}", outcome.delivered);
    println!("  simulated: {simulated:.1} s   wall: {wall:.3} s   ({:.0} simulated s per wall s)", simulated / wall);
    println!("  trace hash: {:016x}", outcome.trace_hash);
    if outcome.total != outcome.leaves_sent || outcome.expected_at_root != outcome.leaves_sent {
        eprintln!("sum_tree: the totals differ");
        std::process::exit(1);
    }
    println!("  totals equal: yes");
}

fn parse(arg: Option<String>, name: &str, default: u64) -> u64 {
    match arg {
        None => default,
        Some(text) => text.parse().unwrap_or_else(|_| {
            eprintln!("sum_tree: {name} must be a whole number, not {text:?}");
            std::process::exit(2);
        }),
    }
}
