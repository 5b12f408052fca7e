//! Two nodes play ping-pong: by default on two simulated machines, with `--real` on two real
//! machines in this process, over loopback TCP.
//!
//! `cargo run --example ping_pong [-- [--real] [ROUNDS [SEED]]]`

use std::time::{Duration, Instant};

use dz_examples::ping_pong::{simulate, Pinger, Ponger};
use dz_runtime_smol::Machine;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let real = args.iter().any(|a| a == "--real");
    args.retain(|a| a != "--real");
    let mut args = args.into_iter();
    let rounds = parse(args.next(), "ROUNDS", 10_000);
    let seed = parse(args.next(), "SEED", 42);
    if real {
        run_real(rounds);
    } else {
        run_simulated(rounds, seed);
    }
}

fn run_simulated(rounds: u64, seed: u64) {
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

/// The same node types on two real machines over loopback TCP, once with messages sealed (the
/// default) and once with sealing off.
fn run_real(rounds: u64) {
    println!("ping_pong --real: two machines in one process over loopback TCP");
    let mut lost = false;
    for sealing in [true, false] {
        lost |= !play_real(rounds, sealing);
    }
    if lost {
        eprintln!("ping_pong: lost round trips");
        std::process::exit(1);
    }
}

/// One game on two real machines; whether every round trip completed.
fn play_real(rounds: u64, sealing: bool) -> bool {
    let build = |builder: dz_runtime_smol::MachineBuilder| {
        builder.sealing(sealing).build().unwrap_or_else(|e| {
            eprintln!("ping_pong: {e}");
            std::process::exit(1);
        })
    };
    let a = build(Machine::builder().listen("127.0.0.1:0"));
    let b = build(Machine::builder().listen("127.0.0.1:0").register::<Ponger>());
    let ponger = b.spawn(Ponger::default());
    let pinger = a.spawn(Pinger::default());
    let for_pinger = b.transfer_handle(&ponger, pinger.id());
    let wall = Instant::now();
    pinger.start(&mut a.client(), for_pinger, rounds);
    let deadline = wall + Duration::from_secs(120);
    let mut completed = 0;
    while Instant::now() < deadline {
        if let Some((done, finished)) = a.inspect(&pinger, |p| (p.completed, p.finished_ms.is_some())) {
            completed = done;
            if finished || rounds == 0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = wall.elapsed().as_secs_f64();
    let served = b.inspect(&ponger, |p| p.served).unwrap_or(0);
    let (sa, sb) = (a.stats(), b.stats());
    let mode = if sealing { "sealing on " } else { "sealing off" };
    println!(
        "  {mode}: {:.0} round trips/s ({completed} of {rounds} in {wall:.3} s, ponger served {served}; \
         frames out {} in {} writes, {} in {} writes; rejected {})",
        completed as f64 / wall,
        sa.frames_out,
        sa.writes,
        sb.frames_out,
        sb.writes,
        sa.rejected() + sb.rejected(),
    );
    a.shutdown();
    b.shutdown();
    completed == rounds && served == rounds
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
