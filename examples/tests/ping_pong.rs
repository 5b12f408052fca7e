//! Ping-pong between two simulated machines loses nothing and replays exactly.

use dz_examples::ping_pong::simulate;

#[test]
fn ten_thousand_round_trips_arrive() {
    let outcome = simulate(1, 10_000);
    assert_eq!(outcome.round_trips, 10_000);
    assert_eq!(outcome.served, 10_000);
    // Each round trip crosses the network twice, at least 1 ms each way.
    assert!(outcome.simulated_ms >= 20_000, "{outcome:?}");
}

#[test]
fn the_trace_is_fixed_by_the_seed() {
    assert_eq!(simulate(3, 500), simulate(3, 500));
    assert_ne!(simulate(3, 500).trace_hash, simulate(4, 500).trace_hash);
}
