//! The sum tree, simulated at full size (10 machines, 1,000 leaves): its totals agree, and its
//! trace is fixed by the seed.

use dz_examples::sum_tree::{simulate, TreeConfig};

/// The example's shape, over 30 simulated seconds instead of 300 to keep debug-build tests quick.
fn config() -> TreeConfig {
    TreeConfig { run_ms: 30_000, ..TreeConfig::default() }
}

#[test]
fn the_root_total_equals_what_the_leaves_sent() {
    let outcome = simulate(42, 10, config());
    assert_eq!(outcome.leaves, 1_000);
    assert!(outcome.leaves_sent > 0);
    assert_eq!(outcome.total, outcome.leaves_sent);
    assert_eq!(outcome.expected_at_root, outcome.leaves_sent);
    assert!(outcome.simulated_ms >= 30_000, "ran {} ms", outcome.simulated_ms);
}

#[test]
fn the_same_seed_gives_the_same_trace_hash_and_two_seeds_differ() {
    let a = simulate(7, 10, config());
    let b = simulate(7, 10, config());
    let c = simulate(8, 10, config());
    assert_eq!(a, b, "same seed, same run");
    assert_ne!(a.trace_hash, c.trace_hash);
    assert_ne!(a.leaves_sent, c.leaves_sent, "leaves draw from seeded streams");
    assert_eq!(c.total, c.leaves_sent);
}
