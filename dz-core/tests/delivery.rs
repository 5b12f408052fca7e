//! How a message finds its receiver in the simulator: by the slot found when it was sent (kept
//! per sender, so a sender alternating between receivers must still reach each one), or by id
//! for a receiver not started yet; and what happens when neither finds it where it was sent.

use dz_core::prelude::*;
use dz_core::sim::Simulation;
use serde::{Deserialize, Serialize};

/// Keeps what it is told, in order.
#[derive(Default, Serialize, Deserialize)]
pub struct Ledger {
    lines: Vec<u64>,
}

#[node]
impl Ledger {
    #[handler]
    fn note(&mut self, n: u64) {
        self.lines.push(n);
    }
}

/// Deals numbers round-robin to its ledgers, or spawns a ledger and writes to it at once.
#[derive(Default, Serialize, Deserialize)]
pub struct Dealer {
    ledgers: Vec<Handle<Ledger>>,
    spawned: Option<Handle<Ledger>>,
}

#[node]
impl Dealer {
    #[handler]
    fn meet(&mut self, ledgers: Vec<Handle<Ledger>>) {
        self.ledgers = ledgers;
    }

    /// Sends 0..count, number `n` to ledger `n % ledgers`, all from one handler.
    #[handler]
    fn deal(&mut self, ctx: &mut Context<Self>, count: u64) {
        for n in 0..count {
            let ledger = &self.ledgers[(n % self.ledgers.len() as u64) as usize];
            ledger.note(ctx, n);
        }
    }

    /// Spawns a ledger on this machine and writes to it before it has started.
    #[handler]
    fn spawn_and_write(&mut self, ctx: &mut Context<Self>) {
        let here = ctx.machine().clone();
        let ledger = ctx.spawn(Ledger::default(), &here);
        ledger.note(ctx, 1);
        ledger.note(ctx, 2);
        self.spawned = Some(ledger);
    }
}

#[test]
fn a_sender_switching_between_receivers_reaches_each_in_order() {
    let mut sim = Simulation::new(21);
    let (home, away) = (sim.add_machine(), sim.add_machine());
    let dealer = sim.spawn(Dealer::default(), &home);
    // Two ledgers beside the dealer and one on another machine: every send changes receiver.
    let ledgers: Vec<_> = [&home, &home, &away].iter().map(|m| sim.spawn(Ledger::default(), m)).collect();
    sim.run_until_idle();
    let for_dealer = ledgers.iter().map(|l| sim.transfer_handle(l, dealer.id())).collect();
    dealer.meet(&mut sim.driver(), for_dealer);
    dealer.deal(&mut sim.driver(), 30);
    sim.run_until_idle();

    for (i, ledger) in ledgers.iter().enumerate() {
        let expected: Vec<u64> = (0..30).filter(|n| n % 3 == i as u64).collect();
        assert_eq!(sim.inspect(ledger, |l| l.lines.clone()), Some(expected), "ledger {i}");
    }
    assert_eq!(sim.node_stats(dealer.id()).unwrap().sent, 30);
    assert_eq!(sim.stats().dropped, 0);
}

#[test]
fn messages_to_a_node_not_started_yet_arrive_after_it_starts() {
    let mut sim = Simulation::new(22);
    let m = sim.add_machine();
    let dealer = sim.spawn(Dealer::default(), &m);
    dealer.spawn_and_write(&mut sim.driver());
    sim.run_until_idle();

    let ledger = sim.inspect(&dealer, |d| d.spawned.clone()).unwrap().expect("the dealer spawned a ledger");
    assert_eq!(sim.inspect(&ledger, |l| l.lines.clone()), Some(vec![1, 2]));
    assert_eq!(sim.stats().dropped, 0);
}

#[test]
fn a_handle_naming_the_wrong_machine_reaches_nobody_and_is_counted() {
    let mut sim = Simulation::new(23);
    let (home, away) = (sim.add_machine(), sim.add_machine());
    let ledger = sim.spawn(Ledger::default(), &home);
    sim.run_until_idle();

    // The same handle, but naming the other machine: the node is not there.
    let mut json = serde_json::to_value(&ledger).unwrap();
    json["machine"] = serde_json::Value::from(away.id().as_str());
    let astray: Handle<Ledger> = serde_json::from_value(json).unwrap();
    astray.note(&mut sim.driver(), 5);
    ledger.note(&mut sim.driver(), 6);
    sim.run_until_idle();

    assert_eq!(sim.inspect(&ledger, |l| l.lines.clone()), Some(vec![6]));
    assert_eq!(sim.stats().dropped, 1);
    assert_eq!(sim.node_stats(sim.driver_id()).unwrap().dropped, 1);
}

#[test]
fn a_message_to_a_node_that_never_existed_is_dropped_and_counted() {
    let mut sim = Simulation::new(24);
    let m = sim.add_machine();
    let ledger = sim.spawn(Ledger::default(), &m);
    sim.run_until_idle();

    let mut json = serde_json::to_value(&ledger).unwrap();
    json["id"] = serde_json::Value::from("Ledger_nobodyhere00");
    let nobody: Handle<Ledger> = serde_json::from_value(json).unwrap();
    nobody.note(&mut sim.driver(), 5);
    sim.run_until_idle();

    assert_eq!(sim.inspect(&ledger, |l| l.lines.clone()), Some(vec![]));
    assert_eq!(sim.stats().dropped, 1);
    assert_eq!(sim.stats().delivered, 0);
}
