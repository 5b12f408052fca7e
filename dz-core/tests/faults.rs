//! The simulated network's faults: rates, partitions, crashes and restarts.

use dz_core::prelude::*;
use dz_core::sim::{Direction, FaultKind, FaultRule, Filter, SimConfig, Simulation, TraceKind};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Recorder {
    got: Vec<u64>,
}

#[node]
impl Recorder {
    #[handler]
    fn record(&mut self, n: u64) {
        self.got.push(n);
    }
}

/// Sends its send time (in microseconds) to every target every 10 ms, `ticks` times.
#[derive(Serialize, Deserialize)]
pub struct Ticker {
    targets: Vec<Handle<Recorder>>,
    ticks: u64,
    sent: Vec<u64>,
    timer: Option<TimerToken>,
}

#[node]
impl Ticker {
    #[started]
    fn begin(&mut self, ctx: &mut Context<Self>) {
        self.timer = Some(ctx.send_every(10, || TickerMessage::Tick));
    }

    #[handler]
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = ctx.now_micros();
        for target in &self.targets {
            target.record(ctx, now);
        }
        self.sent.push(now);
        self.ticks -= 1;
        if self.ticks == 0 {
            if let Some(timer) = self.timer.take() {
                ctx.cancel_timer(timer);
            }
        }
    }
}

fn within(measured: u64, total: u64, rate: f64) -> bool {
    // Five standard deviations of a binomial proportion.
    let p = measured as f64 / total as f64;
    let sd = (rate * (1.0 - rate) / total as f64).sqrt();
    (p - rate).abs() <= 5.0 * sd
}

#[test]
fn drop_duplicate_and_reorder_rates_match_their_configuration() {
    // Unsealed, so that copies and late messages reach the handler and can be counted there
    // (sealed, the receiver rejects them as replays: see the next test).
    let mut sim = Simulation::with_config(2024, SimConfig { seal: false, ..SimConfig::default() });
    let m = sim.add_machine();
    let sink = sim.spawn(Recorder::default(), &m);
    sim.run_until_idle();
    let (drop, dup, reorder) = (0.10, 0.05, 0.10);
    for (kind, rate) in [(FaultKind::Drop, drop), (FaultKind::Duplicate, dup), (FaultKind::Reorder, reorder)] {
        sim.add_fault(FaultRule { kind, rate, filter: Filter::any() });
    }
    let n = 100_000u64;
    for i in 0..n {
        sink.record(&mut sim.driver(), i);
    }
    sim.run_until_idle();

    let stats = sim.fault_stats();
    println!(
        "over {n} messages: dropped {:.4} (rate {drop}), duplicated {:.4} of the rest (rate {dup}), held back {:.4} (rate {reorder})",
        stats.dropped as f64 / n as f64,
        stats.duplicated as f64 / (n - stats.dropped) as f64,
        stats.reordered as f64 / (n - stats.dropped) as f64,
    );
    assert_eq!(stats.considered, n);
    assert!(within(stats.dropped, n, drop), "dropped {} of {n}", stats.dropped);
    let kept = n - stats.dropped;
    assert!(within(stats.duplicated, kept, dup), "duplicated {} of {kept}", stats.duplicated);
    assert!(within(stats.reordered, kept, reorder), "reordered {} of {kept}", stats.reordered);

    let got = sim.inspect(&sink, |r| r.got.clone()).unwrap();
    assert_eq!(got.len() as u64, kept + stats.duplicated, "every kept message arrived, copies too");
    let overtaken = got.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(overtaken > 1000, "held-back messages were overtaken: {overtaken}");
    assert_eq!(sim.stats().dropped, stats.dropped);
}

#[test]
fn sealed_links_reject_the_copies_a_faulty_network_makes_and_lose_nothing_else() {
    let mut sim = Simulation::new(2024);
    let (a, b) = (sim.add_machine(), sim.add_machine());
    let sink = sim.spawn(Recorder::default(), &b);
    sim.run_until_idle();
    for (kind, rate) in [(FaultKind::Duplicate, 0.05), (FaultKind::Reorder, 0.10)] {
        sim.add_fault(FaultRule { kind, rate, filter: Filter::any() });
    }
    let ticks = 5_000;
    let ticker = sim.spawn(Ticker { targets: vec![sink.clone()], ticks, sent: vec![], timer: None }, &a);
    sim.run_for(ticks * 10 + 5_000);

    let (faults, rejected) = (sim.fault_stats(), sim.rejections());
    let mut got = sim.inspect(&sink, |r| r.got.clone()).unwrap();
    println!(
        "{ticks} messages, {} copies, {} held back: {} delivered, {} rejected as replays",
        faults.duplicated,
        faults.reordered,
        got.len(),
        rejected.replayed
    );
    assert!(faults.duplicated > 100 && faults.reordered > 200, "{faults:?}");
    // Every copy is rejected as a replay, and nothing else: each message arrives exactly once,
    // the held-back ones too (they are well inside the replay window).
    assert_eq!(rejected.replayed, faults.duplicated, "{rejected:?}");
    assert_eq!(rejected.total(), rejected.replayed);
    assert_eq!(sim.stats().rejected, rejected.replayed);
    assert!(got.windows(2).any(|w| w[1] < w[0]), "held-back messages were overtaken");
    got.sort_unstable();
    let sent = sim.inspect(&ticker, |t| t.sent.clone()).unwrap();
    assert_eq!(got, sent, "each message once");
}

#[test]
fn a_rule_applies_only_to_what_its_filter_names() {
    let mut sim = Simulation::new(5);
    let (a, b) = (sim.add_machine(), sim.add_machine());
    let on_a = sim.spawn(Recorder::default(), &a);
    let on_b = sim.spawn(Recorder::default(), &b);
    sim.run_until_idle();
    let filter = Filter { to: Some(b.id().clone()), ..Filter::any() };
    sim.add_fault(FaultRule { kind: FaultKind::Drop, rate: 1.0, filter });
    for i in 0..100 {
        on_a.record(&mut sim.driver(), i);
        on_b.record(&mut sim.driver(), i);
    }
    sim.run_until_idle();
    assert_eq!(sim.inspect(&on_a, |r| r.got.len()), Some(100));
    assert_eq!(sim.inspect(&on_b, |r| r.got.len()), Some(0));

    sim.clear_faults();
    on_b.record(&mut sim.driver(), 7);
    sim.run_until_idle();
    assert_eq!(sim.inspect(&on_b, |r| r.got.clone()), Some(vec![7]));
}

#[test]
fn a_partition_drops_exactly_the_cut_traffic_for_exactly_its_window() {
    let mut sim = Simulation::new(77);
    let (a, b, c) = (sim.add_machine(), sim.add_machine(), sim.add_machine());
    let on_a = sim.spawn(Recorder::default(), &a);
    let on_b = sim.spawn(Recorder::default(), &b);
    let on_c = sim.spawn(Recorder::default(), &c);
    sim.run_until_idle();
    let ticks = 100;
    let from_a_targets = vec![on_b.clone(), on_c.clone()];
    let ticker_a = sim.spawn(Ticker { targets: from_a_targets, ticks, sent: vec![], timer: None }, &a);
    let ticker_b = sim.spawn(Ticker { targets: vec![on_a.clone()], ticks, sent: vec![], timer: None }, &b);
    sim.run_for(200);
    let partition = sim.partition(std::slice::from_ref(&b), Direction::Both, 300);
    sim.run_until_idle();

    let cut = |t: &u64| (partition.start_micros..partition.end_micros).contains(t);
    let sent_a = sim.inspect(&ticker_a, |t| t.sent.clone()).unwrap();
    let sent_b = sim.inspect(&ticker_b, |t| t.sent.clone()).unwrap();
    assert_eq!((sent_a.len(), sent_b.len()), (ticks as usize, ticks as usize));
    let expect_on_b: Vec<u64> = sent_a.iter().copied().filter(|t| !cut(t)).collect();
    let expect_on_a: Vec<u64> = sent_b.iter().copied().filter(|t| !cut(t)).collect();
    assert!(expect_on_b.len() < sent_a.len() && !expect_on_b.is_empty(), "the window cut some ticks");
    assert_eq!(sim.inspect(&on_b, |r| r.got.clone()).unwrap(), expect_on_b, "B missed exactly the window");
    assert_eq!(sim.inspect(&on_a, |r| r.got.clone()).unwrap(), expect_on_a, "nothing left B in the window");
    assert_eq!(sim.inspect(&on_c, |r| r.got.clone()).unwrap(), sent_a, "A to C was never cut");
    let lost = (sent_a.len() - expect_on_b.len()) + (sent_b.len() - expect_on_a.len());
    assert_eq!(sim.fault_stats().partitioned, lost as u64);
}

#[test]
fn a_one_way_partition_cuts_one_direction() {
    let mut sim = Simulation::new(78);
    let (a, b) = (sim.add_machine(), sim.add_machine());
    let on_a = sim.spawn(Recorder::default(), &a);
    let on_b = sim.spawn(Recorder::default(), &b);
    sim.run_until_idle();
    let ticker_a = sim.spawn(Ticker { targets: vec![on_b.clone()], ticks: 20, sent: vec![], timer: None }, &a);
    let ticker_b = sim.spawn(Ticker { targets: vec![on_a.clone()], ticks: 20, sent: vec![], timer: None }, &b);
    sim.partition(std::slice::from_ref(&b), Direction::Outgoing, 10_000);
    sim.run_until_idle();
    assert_eq!(sim.inspect(&on_b, |r| r.got.len()), sim.inspect(&ticker_a, |t| t.sent.len()));
    assert_eq!(sim.inspect(&on_a, |r| r.got.len()), Some(0));
    assert_eq!(sim.inspect(&ticker_b, |t| t.sent.len()), Some(20));
}

#[test]
fn a_crashed_machine_stops_its_nodes_and_restarts_empty() {
    let mut sim = Simulation::new(9);
    let (a, b) = (sim.add_machine(), sim.add_machine());
    let on_a = sim.spawn(Recorder::default(), &a);
    let victim = sim.spawn(Recorder::default(), &b);
    let ticker = sim.spawn(Ticker { targets: vec![on_a.clone()], ticks: 1_000, sent: vec![], timer: None }, &b);
    sim.run_for(500);
    let before = sim.inspect(&on_a, |r| r.got.len()).unwrap();
    assert!(before > 0);

    sim.crash(&b);
    assert!(!sim.is_alive(victim.id()) && !sim.is_alive(ticker.id()));
    victim.record(&mut sim.driver(), 1);
    let refused = sim.spawn(Recorder::default(), &b);
    sim.run_for(1_000);
    let after_crash = sim.inspect(&on_a, |r| r.got.len()).unwrap();
    assert!(after_crash - before <= 1, "at most a message already in flight arrives");
    assert!(!sim.is_alive(refused.id()), "nothing starts on a crashed machine");
    assert_eq!(sim.stats().spawn_failed, 1);

    sim.restart(&b);
    let fresh = sim.spawn(Recorder::default(), &b);
    fresh.record(&mut sim.driver(), 5);
    sim.run_until_idle();
    assert_eq!(sim.inspect(&fresh, |r| r.got.clone()), Some(vec![5]));
    assert!(!sim.is_alive(victim.id()), "a restarted machine is empty");
    assert_eq!(sim.inspect(&on_a, |r| r.got.len()), Some(after_crash), "the old ticker stays dead");
    let stats = sim.fault_stats();
    assert_eq!((stats.crashes, stats.restarts), (1, 1));
}

#[test]
fn injected_faults_are_in_the_trace() {
    let mut sim = Simulation::new(3);
    sim.record_trace(true);
    let m = sim.add_machine();
    let sink = sim.spawn(Recorder::default(), &m);
    sim.run_until_idle();
    for kind in [FaultKind::Drop, FaultKind::Duplicate, FaultKind::Reorder] {
        sim.add_fault(FaultRule { kind, rate: 0.3, filter: Filter::any() });
    }
    for i in 0..200 {
        sink.record(&mut sim.driver(), i);
    }
    sim.run_until_idle();
    let trace = sim.trace();
    let count = |k: TraceKind| trace.iter().filter(|e| e.kind == k).count() as u64;
    let stats = sim.fault_stats();
    assert_eq!(count(TraceKind::FaultDrop), stats.dropped);
    assert_eq!(count(TraceKind::FaultDuplicate), stats.duplicated);
    assert_eq!(count(TraceKind::FaultReorder), stats.reordered);
    assert!(stats.dropped > 0 && stats.duplicated > 0 && stats.reordered > 0);
}
