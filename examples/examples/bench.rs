//! Measures dz on the workloads of the peer benchmark in `../shared/peers/` and prints one
//! line per figure in the same form (`peer=<runtime> workload=<W> value=<n> unit=<u>`), so that
//! `EXTRA_CMDS` can run it beside kameo, ractor, actix and Erlang and compare ratios.
//!
//! `cargo run --release --example bench -- [--quick] [WORKLOAD...]`
//!
//! - A: ping-pong, 200,000 round trips by tell between two nodes of one machine.
//! - B: fan-in, 1,000,000 messages from one sender to one sink, sum checked.
//! - C: spawn 100,000 idle nodes and hold their handles: spawn rate and RSS per node.
//! - S: the simulator's speed: deliveries per wall second within a machine and between
//!   machines, and sum_tree's simulated seconds per wall second.
//! - M: RSS of 1,000,000 idle nodes on one machine (their handles dropped).
//! - P: 100 ping-pong pairs on one machine, with one and with two worker threads.
//! - X: two machine processes over loopback TCP, messages sealed: 200,000 one-way messages
//!   (messages per second until the far side has them all), then 20,000 round trips one at a
//!   time (p50 and p99 latency in µs). This process starts the other as `bench --x-peer`.
//!
//! A, B and C run on the real runtime with one worker thread (`peer=dz`, like the peers' single
//! thread) and on the simulator (`peer=dz-sim`). `--quick` runs small sizes (CI uses it, so the
//! benchmark never rots). Given several workloads (or none: all of them), the bench runs each in
//! a fresh process of its own, so that no RSS figure counts memory another workload freed.

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dz_core::prelude::*;
use dz_core::sim::{SimConfig, Simulation};
use dz_core::Driver;
use dz_examples::sum_tree::{self, TreeConfig};
use dz_runtime_smol::Machine;
use serde::{Deserialize, Serialize};

/// Starts the rally and times it with the machine's clock.
#[derive(Default, Serialize, Deserialize)]
pub struct Pinger {
    ponger: Option<Handle<Ponger>>,
    left: u64,
    start_us: u64,
    end_us: Option<u64>,
}

#[node]
impl Pinger {
    #[handler]
    fn go(&mut self, ctx: &mut Context<Self>, ponger: Handle<Ponger>, rounds: u64) {
        self.left = rounds;
        self.start_us = ctx.now_micros();
        ponger.ping(ctx);
        self.ponger = Some(ponger);
    }

    #[handler]
    fn pong(&mut self, ctx: &mut Context<Self>) {
        self.left -= 1;
        if self.left == 0 {
            self.end_us = Some(ctx.now_micros());
        } else if let Some(ponger) = &self.ponger {
            ponger.ping(ctx);
        }
    }
}

/// Holds the pinger's handle from its spawn, and answers.
#[derive(Serialize, Deserialize)]
pub struct Ponger {
    pinger: Handle<Pinger>,
}

#[node]
impl Ponger {
    #[handler]
    fn ping(&mut self, ctx: &mut Context<Self>) {
        self.pinger.pong(ctx);
    }
}

/// Adds what it is sent; notes when the last one came.
#[derive(Default, Serialize, Deserialize)]
pub struct Sink {
    expect: u64,
    count: u64,
    sum: u64,
    end_us: Option<u64>,
}

#[node]
impl Sink {
    #[handler]
    fn add(&mut self, ctx: &mut Context<Self>, n: u64) {
        self.count += 1;
        self.sum += n;
        if self.count == self.expect {
            self.end_us = Some(ctx.now_micros());
        }
    }
}

/// Sends a burst of `add`s to a sink.
#[derive(Default, Serialize, Deserialize)]
pub struct Source {
    start_us: u64,
}

#[node]
impl Source {
    #[handler]
    fn blast(&mut self, ctx: &mut Context<Self>, sink: Handle<Sink>, count: u64) {
        self.start_us = ctx.now_micros();
        for n in 0..count {
            sink.add(ctx, n);
        }
    }
}

/// An idle node whose state is one `u64`.
#[derive(Default, Serialize, Deserialize)]
pub struct Idle {
    value: u64,
}

#[node]
impl Idle {
    #[handler]
    fn poke(&mut self) {
        self.value += 1;
    }
}

/// Counts what it is sent on another machine and reports the sum home when all came.
#[derive(Serialize, Deserialize)]
pub struct Tally {
    expect: u64,
    count: u64,
    sum: u64,
    report: Handle<Reported>,
}

#[node]
impl Tally {
    #[handler]
    fn add(&mut self, ctx: &mut Context<Self>, n: u64) {
        self.count += 1;
        self.sum += n;
        if self.count == self.expect {
            self.report.done(ctx, self.sum);
        }
    }
}

/// Where a tally reports.
#[derive(Default, Serialize, Deserialize)]
pub struct Reported {
    sum: Option<u64>,
}

#[node]
impl Reported {
    #[handler]
    fn done(&mut self, sum: u64) {
        self.sum = Some(sum);
    }
}

/// Sends a burst of `add`s to a tally.
#[derive(Default, Serialize, Deserialize)]
pub struct Feeder;

#[node]
impl Feeder {
    #[handler]
    fn feed(&mut self, ctx: &mut Context<Self>, tally: Handle<Tally>, count: u64) {
        for n in 0..count {
            tally.add(ctx, n);
        }
    }
}

/// Sends one probe at a time to an echo on another machine and keeps each round trip's time.
#[derive(Default, Serialize, Deserialize)]
pub struct Prober {
    echo: Option<Handle<Echo>>,
    left: u64,
    sent_us: u64,
    rtts_us: Vec<u64>,
}

#[node]
impl Prober {
    #[handler]
    fn go(&mut self, ctx: &mut Context<Self>, echo: Handle<Echo>, rounds: u64) {
        self.left = rounds;
        self.sent_us = ctx.now_micros();
        echo.probe(ctx);
        self.echo = Some(echo);
    }

    #[handler]
    fn back(&mut self, ctx: &mut Context<Self>) {
        let now = ctx.now_micros();
        self.rtts_us.push(now - self.sent_us);
        self.left -= 1;
        if let (true, Some(echo)) = (self.left > 0, &self.echo) {
            self.sent_us = now;
            echo.probe(ctx);
        }
    }
}

/// Answers each probe.
#[derive(Serialize, Deserialize)]
pub struct Echo {
    prober: Handle<Prober>,
}

#[node]
impl Echo {
    #[handler]
    fn probe(&mut self, ctx: &mut Context<Self>) {
        self.prober.back(ctx);
    }
}

struct Sizes {
    rounds: u64,
    messages: u64,
    spawns: u64,
    tree_ms: u64,
    idle: u64,
    pairs: u64,
    pair_rounds: u64,
    x_messages: u64,
    x_rounds: u64,
}

fn line(peer: &str, workload: &str, value: f64, unit: &str) {
    println!("peer={peer} workload={workload} value={value:.0} unit={unit}");
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !done() {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

/// Spawns a pinger on `a` and a ponger on `b` that holds the pinger's handle from its spawn;
/// returns the pinger and a handle for it to reach the ponger.
fn pair(ctx: &mut Context<'static, Driver>, a: &MachineHandle, b: &MachineHandle) -> (Handle<Pinger>, Handle<Ponger>) {
    let pinger = ctx.spawn(Pinger::default(), a);
    let ponger_id = ctx.reserve_id::<Ponger>();
    let for_ponger = ctx.transfer_handle(&pinger, &ponger_id);
    let ponger = ctx.spawn_with_id(ponger_id, Ponger { pinger: for_ponger }, b);
    let for_pinger = ctx.transfer_handle(&ponger, pinger.id());
    (pinger, for_pinger)
}

// ---- the real runtime ----------------------------------------------------------------------

fn real_machine() -> Machine {
    machine_with(1)
}

fn machine_with(workers: usize) -> Machine {
    Machine::builder().listen("127.0.0.1:0").workers(workers).build().expect("a machine on loopback")
}

fn real_m(idle: u64) {
    let machine = real_machine();
    let mut client = machine.client();
    let here = machine.handle();
    let before = rss_bytes();
    let started_before = machine.stats().spawned;
    for _ in 0..idle {
        drop(client.spawn(Idle::default(), &here));
    }
    assert!(wait(Duration::from_secs(300), || machine.stats().spawned - started_before >= idle));
    let grown = rss_bytes().saturating_sub(before);
    line("dz", "M", grown as f64 / (1024.0 * 1024.0) * (1_000_000.0 / idle as f64), "mib_per_million_idle_nodes");
    machine.shutdown();
}

/// Messages per second of `pairs` ping-pong pairs, `rounds` round trips each, on `workers`.
fn real_p(workers: usize, pairs: u64, rounds: u64) -> f64 {
    let machine = machine_with(workers);
    let mut client = machine.client();
    let here = machine.handle();
    let games: Vec<_> = (0..pairs).map(|_| pair(&mut client, &here, &here)).collect();
    assert!(wait(Duration::from_secs(30), || machine.stats().spawned >= 2 * pairs));
    let pingers: Vec<_> = games
        .into_iter()
        .map(|(pinger, ponger)| {
            pinger.go(&mut client, ponger, rounds);
            pinger
        })
        .collect();
    // Timed by the pingers themselves (the machine's clock, from the first `go` handled to the
    // last rally's end), and checked on rarely: a watcher polling often would take a core from
    // the workers it measures.
    let span = |p: &Pinger| p.end_us.map(|end| (p.start_us, end));
    let mut spans = Vec::new();
    let end = Instant::now() + Duration::from_secs(300);
    while spans.len() < pingers.len() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
        spans = pingers.iter().map_while(|p| machine.inspect(p, span).flatten()).collect();
    }
    assert_eq!(spans.len(), pingers.len(), "P: the rallies did not end");
    machine.shutdown();
    let first = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let last = spans.iter().map(|s| s.1).max().unwrap_or(0);
    (pairs * rounds * 2) as f64 * 1e6 / last.saturating_sub(first).max(1) as f64
}

fn real_a(rounds: u64) {
    let machine = real_machine();
    let mut client = machine.client();
    let (pinger, for_pinger) = pair(&mut client, &machine.handle(), &machine.handle());
    assert!(wait(Duration::from_secs(10), || machine.stats().spawned >= 2), "the nodes started");
    pinger.go(&mut client, for_pinger, rounds);
    let span = |p: &Pinger| p.end_us.map(|end| end - p.start_us);
    assert!(wait(Duration::from_secs(120), || machine.inspect(&pinger, span).flatten().is_some()));
    let micros = machine.inspect(&pinger, span).flatten().unwrap_or(1).max(1);
    line("dz", "A", rounds as f64 * 1e6 / micros as f64, "rt_per_s");
    machine.shutdown();
}

fn real_b(messages: u64) {
    let machine = real_machine();
    let mut client = machine.client();
    let sink = client.spawn(Sink { expect: messages, ..Sink::default() }, &machine.handle());
    let source = client.spawn(Source::default(), &machine.handle());
    let for_source = client.transfer_handle(&sink, source.id());
    assert!(wait(Duration::from_secs(10), || machine.stats().spawned >= 2));
    source.blast(&mut client, for_source, messages);
    assert!(wait(Duration::from_secs(120), || machine.inspect(&sink, |s| s.end_us.is_some()).unwrap_or(false)));
    let (sum, end) = machine.inspect(&sink, |s| (s.sum, s.end_us.unwrap_or(0))).unwrap_or_default();
    assert_eq!(sum, messages * (messages - 1) / 2, "fan-in lost messages");
    let start = machine.inspect(&source, |s| s.start_us).unwrap_or(0);
    line("dz", "B", messages as f64 * 1e6 / end.saturating_sub(start).max(1) as f64, "msg_per_s");
    machine.shutdown();
}

fn real_c(spawns: u64) {
    let machine = real_machine();
    let mut client = machine.client();
    let here = machine.handle();
    let before = rss_bytes();
    let started_before = machine.stats().spawned;
    let start = Instant::now();
    let handles: Vec<Handle<Idle>> = (0..spawns).map(|_| client.spawn(Idle::default(), &here)).collect();
    assert!(wait(Duration::from_secs(120), || machine.stats().spawned - started_before >= spawns));
    let elapsed = start.elapsed().as_secs_f64();
    let grown = rss_bytes().saturating_sub(before);
    line("dz", "C", spawns as f64 / elapsed, "actors_per_s");
    line("dz", "C", grown as f64 / spawns as f64, "bytes_per_actor");
    drop(handles);
    machine.shutdown();
}

/// The far side of X: a machine on loopback that prints its handle as JSON, serves until its
/// standard input closes (the measuring process ended or dropped it), then stops.
fn x_peer() {
    let machine = Machine::builder()
        .listen("127.0.0.1:0")
        .workers(1)
        .register::<Tally>()
        .register::<Echo>()
        .build()
        .expect("a machine on loopback");
    let handle = serde_json::to_string(&machine.handle()).expect("a machine handle serialises");
    println!("{handle}");
    std::io::stdout().flush().expect("the measuring process reads this");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    machine.shutdown();
}

fn real_x(messages: u64, rounds: u64) {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut child = Command::new(exe)
        .arg("--x-peer")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the far machine's process starts");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("piped");
    std::io::BufReader::new(stdout).read_line(&mut first).expect("the far machine prints its handle");
    let far: MachineHandle = serde_json::from_str(first.trim()).expect("a machine handle");
    let machine = real_machine();
    let mut client = machine.client();
    let here = machine.handle();

    // One-way: a feeder here, a tally there that reports home when all arrived.
    let reported = client.spawn(Reported::default(), &here);
    let tally_id = client.reserve_id::<Tally>();
    let report = client.transfer_handle(&reported, &tally_id);
    let tally = client.spawn_with_id(tally_id, Tally { expect: messages, count: 0, sum: 0, report }, &far);
    let feeder = client.spawn(Feeder, &here);
    let for_feeder = client.transfer_handle(&tally, feeder.id());
    // A first exchange opens the connection and makes sure the tally runs before timing starts.
    let (prober, echo) = x_pair(&mut client, &here, &far);
    prober.go(&mut client, echo.clone(), 1);
    let rtts = |p: &Prober| p.rtts_us.len() as u64;
    assert!(wait(Duration::from_secs(30), || machine.inspect(&prober, rtts) == Some(1)), "the far machine answers");
    let start = Instant::now();
    feeder.feed(&mut client, for_feeder, messages);
    let sum = |r: &Reported| r.sum;
    assert!(wait(Duration::from_secs(300), || machine.inspect(&reported, sum).flatten().is_some()), "X: the tally");
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(machine.inspect(&reported, sum).flatten(), Some(messages * (messages - 1) / 2), "X lost messages");
    line("dz", "X", messages as f64 / wall, "msg_per_s_sealed");

    // Round trips, one at a time.
    prober.go(&mut client, echo, rounds);
    assert!(wait(Duration::from_secs(300), || machine.inspect(&prober, rtts) == Some(rounds + 1)), "X: round trips");
    let mut samples = machine.inspect(&prober, |p| p.rtts_us[1..].to_vec()).unwrap_or_default();
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] as f64;
    line("dz", "X", at(0.50), "rtt_p50_us");
    line("dz", "X", at(0.99), "rtt_p99_us");
    machine.shutdown();
    drop(child.stdin.take());
    let _ = child.wait();
}

/// A prober here and an echo on `far` that holds the prober's handle from its spawn.
fn x_pair(
    ctx: &mut Context<'static, Driver>,
    here: &MachineHandle,
    far: &MachineHandle,
) -> (Handle<Prober>, Handle<Echo>) {
    let prober = ctx.spawn(Prober::default(), here);
    let echo_id = ctx.reserve_id::<Echo>();
    let for_echo = ctx.transfer_handle(&prober, &echo_id);
    let echo = ctx.spawn_with_id(echo_id, Echo { prober: for_echo }, far);
    let for_prober = ctx.transfer_handle(&echo, prober.id());
    (prober, for_prober)
}

// ---- the simulator -------------------------------------------------------------------------

fn sim_a(rounds: u64, machines: usize) -> (f64, u64) {
    sim_a_with(rounds, machines, SimConfig::default())
}

fn sim_a_with(rounds: u64, machines: usize, config: SimConfig) -> (f64, u64) {
    let mut sim = Simulation::with_config(1, config);
    let all: Vec<_> = (0..machines).map(|_| sim.add_machine()).collect();
    let mut driver = sim.driver();
    let (pinger, for_pinger) = pair(&mut driver, &all[0], &all[machines - 1]);
    sim.run_until_idle();
    pinger.go(&mut driver, for_pinger, rounds);
    let before = sim.stats().delivered;
    let start = Instant::now();
    sim.run_until_idle();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(sim.inspect(&pinger, |p| p.left), Some(0), "every round trip came back");
    (wall, sim.stats().delivered - before)
}

fn sim_b(messages: u64) -> f64 {
    let mut sim = Simulation::new(2);
    let m = sim.add_machine();
    let sink = sim.spawn(Sink { expect: messages, ..Sink::default() }, &m);
    let source = sim.spawn(Source::default(), &m);
    let for_source = sim.transfer_handle(&sink, source.id());
    sim.run_until_idle();
    source.blast(&mut sim.driver(), for_source, messages);
    let start = Instant::now();
    sim.run_until_idle();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(sim.inspect(&sink, |s| s.sum), Some(messages * (messages - 1) / 2), "fan-in lost messages");
    messages as f64 / wall
}

/// Spawns `count` idle nodes on its machine and keeps their handles.
#[derive(Default, Serialize, Deserialize)]
pub struct Spawner {
    children: Vec<Handle<Idle>>,
}

#[node]
impl Spawner {
    #[handler]
    fn spawn_idle(&mut self, ctx: &mut Context<Self>, count: u64) {
        let here = ctx.machine().clone();
        for _ in 0..count {
            self.children.push(ctx.spawn(Idle::default(), &here));
        }
    }
}

fn sim_c(spawns: u64) -> (f64, f64) {
    let mut sim = Simulation::new(3);
    let m = sim.add_machine();
    let spawner = sim.spawn(Spawner::default(), &m);
    sim.run_until_idle();
    spawner.spawn_idle(&mut sim.driver(), spawns);
    let before = rss_bytes();
    let start = Instant::now();
    sim.run_until_idle();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(sim.stats().spawned, spawns + 1, "every node started");
    (spawns as f64 / wall, rss_bytes().saturating_sub(before) as f64 / spawns as f64)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--x-peer") {
        return x_peer();
    }
    let quick = args.iter().any(|a| a == "--quick");
    let mut wanted: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with("--")).collect();
    if let Some(unknown) = wanted.iter().find(|w| !["A", "B", "C", "S", "M", "P", "X"].contains(w)) {
        eprintln!("bench: unknown workload {unknown:?}; the workloads are A, B, C, S, M, P and X");
        std::process::exit(2);
    }
    if wanted.is_empty() {
        wanted = vec!["C", "A", "B", "S", "M", "P", "X"];
    }
    let sizes = if quick {
        Sizes {
            rounds: 2_000,
            messages: 10_000,
            spawns: 1_000,
            tree_ms: 3_000,
            idle: 10_000,
            pairs: 10,
            pair_rounds: 1_000,
            x_messages: 2_000,
            x_rounds: 200,
        }
    } else {
        Sizes {
            rounds: 200_000,
            messages: 1_000_000,
            spawns: 100_000,
            tree_ms: 300_000,
            idle: 1_000_000,
            pairs: 100,
            pair_rounds: 20_000,
            x_messages: 200_000,
            x_rounds: 20_000,
        }
    };
    if wanted.len() > 1 {
        // Each workload in a process of its own: an RSS figure measured after another workload
        // freed its memory would count memory reused from it as free.
        for workload in wanted {
            let mut child = std::process::Command::new(std::env::current_exe().expect("the bench's own path"));
            child.arg(workload);
            if quick {
                child.arg("--quick");
            }
            let status = child.status().expect("the bench runs itself for one workload");
            if !status.success() {
                eprintln!("bench: workload {workload} failed ({status})");
                std::process::exit(1);
            }
        }
        return;
    }
    for workload in wanted {
        match workload {
            "A" => {
                real_a(sizes.rounds);
                let (wall, _) = sim_a(sizes.rounds, 1);
                line("dz-sim", "A", sizes.rounds as f64 / wall, "rt_per_s");
            }
            "B" => {
                real_b(sizes.messages);
                line("dz-sim", "B", sim_b(sizes.messages), "msg_per_s");
            }
            "C" => {
                real_c(sizes.spawns);
                let (rate, bytes) = sim_c(sizes.spawns);
                line("dz-sim", "C", rate, "actors_per_s");
                line("dz-sim", "C", bytes, "bytes_per_actor");
            }
            "M" => real_m(sizes.idle),
            "X" => real_x(sizes.x_messages, sizes.x_rounds),
            "P" => {
                let one = real_p(1, sizes.pairs, sizes.pair_rounds);
                let two = real_p(2, sizes.pairs, sizes.pair_rounds);
                line("dz", "P", one, "msg_per_s_1_worker");
                line("dz", "P", two, "msg_per_s_2_workers");
                line("dz", "P", two / one * 100.0, "percent_2_workers_of_1");
            }
            _ => {
                let (wall, delivered) = sim_a(sizes.rounds, 1);
                line("dz-sim", "S", delivered as f64 / wall, "local_deliveries_per_s");
                let (wall, delivered) = sim_a(sizes.rounds, 2);
                line("dz-sim", "S", delivered as f64 / wall, "cross_machine_deliveries_per_s");
                let (wall, delivered) = sim_a_with(sizes.rounds, 2, SimConfig { seal: false, ..SimConfig::default() });
                line("dz-sim", "S", delivered as f64 / wall, "cross_machine_unsealed_deliveries_per_s");
                let config = TreeConfig { run_ms: sizes.tree_ms, ..TreeConfig::default() };
                let start = Instant::now();
                let outcome = sum_tree::simulate(42, 10, config);
                let wall = start.elapsed().as_secs_f64();
                assert_eq!(outcome.total, outcome.leaves_sent, "sum_tree's totals differ");
                line("dz-sim", "S", outcome.simulated_ms as f64 / 1000.0 / wall, "sum_tree_sim_s_per_wall_s");
            }
        }
    }
}
