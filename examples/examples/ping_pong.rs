//! Two nodes on two simulated machines play 10,000 round trips of ping-pong.
//!
//! `cargo run --example ping_pong [-- ROUNDS [SEED]]`

use std::time::Instant;

use dz_examples::ping_pong::simulate;

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds = parse(args.next(), "ROUNDS", 10_000);
    let seed = parse(args.next(), "SEED", 42);
    let wall = Instant::now();
    let outcome = simulate(seed, rounds);
    let wall = wall.elapsed();
    println!("ping_pong: seed {seed}, two nodes on two simulated machines");
    println!("  round trips:   {} of {rounds} (ponger served {})", outcome.round_trips, outcome.served);
    println!(
        "  simulated:     {:.3} s ({:.2} ms per round trip)",
        outcome.simulated_ms as f64 / 1000.0,
        outcome.simulated_ms as f64 / outcome.round_trips.max(1) as f64
    );
    println!("  wall:          {:.3} s", wall.as_secs_f64());
    println!("  trace hash:    {:016x}", outcome.trace_hash);
    if outcome.round_trips != rounds || outcome.served != rounds {
        eprintln!("ping_pong: lost round trips");
        std::process::exit(1);
    }
}

fn parse(arg: Option<String>, name: &str, default: u64) -> u64 {
    match arg {
        None => default,
        Some(text) => text.parse().unwrap_or_else(|_| {
            eprintln!("ping_pong: {name} must be a whole number, not {text:?}");
            std::process::exit(2);
        }),
    }
}
