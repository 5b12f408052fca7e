//! The reliable layer: exactly once and in order over a hostile network, proven over many
//! seeds, and a deliberately broken variant that the same sweep catches.

use dz_core::prelude::*;
use dz_core::reliable::{Reliable, ReliableConfig, ReliableSender};
use dz_core::sim::{Direction, FaultKind, FaultRule, Filter, Simulation, Sweep, Trial};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Consumer {
    got: Vec<u64>,
}

#[node]
impl Consumer {
    #[handler]
    fn take(&mut self, n: u64) {
        self.got.push(n);
    }
}

/// Sends 0, 1, 2, ... on a reliable link to each consumer, one every 50 ms, `count` in all.
#[derive(Serialize, Deserialize)]
pub struct Producer {
    consumers: Vec<Handle<Consumer>>,
    links: Vec<Reliable<Consumer>>,
    config: ReliableConfig,
    next: u64,
    count: u64,
}

#[node]
impl Producer {
    #[started]
    fn begin(&mut self, ctx: &mut Context<Self>) {
        for consumer in self.consumers.clone() {
            self.links.push(Reliable::connect(ctx, &consumer, self.config.clone()));
        }
        ctx.send_after(50, ProducerMessage::Produce);
    }

    #[handler]
    fn produce(&mut self, ctx: &mut Context<Self>) {
        for link in &self.links {
            link.send(ctx, ConsumerMessage::Take { n: self.next });
        }
        self.next += 1;
        if self.next < self.count {
            ctx.send_after(50, ProducerMessage::Produce);
        }
    }
}

/// The example's network: 10% drop, 5% duplicate, 10% reorder, and the two consumers'
/// machines cut off for 20 s from 0.5 s on. Returns an error unless every consumer got
/// 0..count exactly once, in order.
fn hostile_run(trial: &Trial, config: ReliableConfig) -> Result<(), String> {
    let count = 40;
    let mut sim = trial.simulation();
    let machines: Vec<_> = (0..3).map(|_| sim.add_machine()).collect();
    let consumers: Vec<_> = machines[1..].iter().map(|m| sim.spawn(Consumer::default(), m)).collect();
    let producer = Producer { consumers: consumers.clone(), links: vec![], config, next: 0, count };
    sim.spawn(producer, &machines[0]);
    sim.run_for(100);
    for (kind, rate) in [(FaultKind::Drop, 0.10), (FaultKind::Duplicate, 0.05), (FaultKind::Reorder, 0.10)] {
        sim.add_fault(FaultRule { kind, rate, filter: Filter::any() });
    }
    sim.run_for(400);
    sim.partition(&machines[1..], Direction::Both, 20_000);
    sim.run_until_idle();
    let want: Vec<u64> = (0..count).collect();
    for consumer in &consumers {
        let got = sim.inspect(consumer, |c| c.got.clone()).ok_or("a consumer is gone")?;
        if got != want {
            return Err(format!("got {got:?} (trace {:016x})", sim.trace_hash()));
        }
    }
    Ok(())
}

#[test]
fn messages_arrive_exactly_once_in_order_over_500_seeds() {
    let report = Sweep::new(0..500).run(|trial| hostile_run(trial, ReliableConfig::default()));
    assert_eq!(report.ran, 500);
    report.assert_ok();
}

#[test]
fn the_sweep_catches_a_link_that_does_not_suppress_duplicates() {
    let broken = ReliableConfig { skip_duplicate_suppression: true, ..ReliableConfig::default() };
    let report = Sweep::new(0..500).run(|trial| hostile_run(trial, broken.clone()));
    assert!(!report.failures.is_empty(), "the broken link passed every seed");
    let first = &report.failures[0];
    assert!(first.message.starts_with("got "), "{}", first.message);

    // Replaying the failing seed gives the very same run.
    let replay = hostile_run(&Sweep::new(0..500).trial(first.seed), broken);
    assert_eq!(replay.unwrap_err(), first.message);
}

#[test]
fn a_link_gives_up_on_a_crashed_peer_and_refuses_more() {
    let mut sim = Simulation::new(8);
    let (a, b) = (sim.add_machine(), sim.add_machine());
    let consumer = sim.spawn(Consumer::default(), &b);
    let config = ReliableConfig { give_up_ms: 5_000, ..ReliableConfig::default() };
    let producer = sim.spawn(
        // Producing for 10 s: the link gives up 5 s after the crash, while messages still come.
        Producer { consumers: vec![consumer.clone()], links: vec![], config, next: 0, count: 200 },
        &a,
    );
    sim.run_for(1_000);
    let before = sim.inspect(&consumer, |c| c.got.len()).unwrap();
    assert!(before > 5);
    sim.crash(&b);
    sim.run_until_idle();

    let link = sim.inspect(&producer, |p| p.links[0].sender().clone()).unwrap();
    let (failure, stats, in_flight) =
        sim.inspect(&link, |s: &ReliableSender| (s.failure().map(str::to_string), s.stats(), s.in_flight())).unwrap();
    let failure = failure.expect("the link failed");
    assert!(failure.contains("no answer"), "{failure}");
    assert_eq!(in_flight, 0, "a failed link holds nothing");
    assert!(stats.refused > 0, "messages after the failure were refused: {stats:?}");
    assert!(stats.repeats > 0, "it retransmitted before giving up");
}
