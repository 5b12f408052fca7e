//! Messages between nodes of one machine arrive complete and in send order, however the workers
//! hand idle receivers to each other: a handler that wakes several idle nodes keeps only the
//! last to run next and gives the others back to the run queue, the letter it took with each
//! in front of those that came after it.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use dz_runtime_smol::Machine;
use serde::{Deserialize, Serialize};

/// Checks that the numbers it is sent come in order.
#[derive(Default, Serialize, Deserialize)]
pub struct Checker {
    pub next: u64,
    pub out_of_order: u64,
}

#[node]
impl Checker {
    #[handler]
    fn take(&mut self, n: u64) {
        if n != self.next {
            self.out_of_order += 1;
        }
        self.next = n + 1;
    }
}

/// Sends numbered rounds to every checker it holds, one checker after the other, two numbers to
/// each.
#[derive(Default, Serialize, Deserialize)]
pub struct Fanner {
    checkers: Vec<Handle<Checker>>,
    sent: u64,
}

#[node]
impl Fanner {
    #[handler]
    fn hold(&mut self, checker: Handle<Checker>) {
        self.checkers.push(checker);
    }

    #[handler]
    fn fan(&mut self, ctx: &mut Context<Self>, rounds: u64) {
        for _ in 0..rounds {
            for checker in &self.checkers {
                checker.take(ctx, 2 * self.sent);
                checker.take(ctx, 2 * self.sent + 1);
            }
            self.sent += 1;
        }
    }
}

/// Three fanners each feed their own three checkers, in bursts from the client; returns what
/// every checker saw (next expected number, numbers out of order) and the machine's deliveries.
fn fan_out(workers: usize) -> (Vec<(u64, u64)>, u64) {
    let machine = Machine::builder().workers(workers).build().expect("a machine");
    let mut checkers = Vec::new();
    let mut fanners = Vec::new();
    for _ in 0..3 {
        let fanner = machine.spawn(Fanner::default());
        for _ in 0..3 {
            let checker = machine.spawn(Checker::default());
            let for_fanner = machine.transfer_handle(&checker, fanner.id());
            fanner.hold(&mut machine.client(), for_fanner);
            checkers.push(checker);
        }
        fanners.push(fanner);
    }
    // Every node started and idle, so that the first sends find idle receivers.
    assert!(common::wait_until(Duration::from_secs(10), || machine.stats().delivered == 9));
    for _ in 0..20 {
        for fanner in &fanners {
            fanner.fan(&mut machine.client(), 50);
        }
    }
    let done = |c: &Checker| c.next == 2000;
    assert!(common::wait_until(Duration::from_secs(30), || {
        checkers.iter().all(|c| machine.inspect(c, done).unwrap_or(false))
    }));
    let seen = checkers.iter().map(|c| machine.inspect(c, |c| (c.next, c.out_of_order)).unwrap_or_default()).collect();
    let delivered = machine.stats().delivered;
    machine.shutdown();
    (seen, delivered)
}

#[test]
fn fanned_out_messages_arrive_whole_and_in_order_on_one_worker() {
    let (seen, delivered) = fan_out(1);
    assert_eq!(seen, vec![(2000, 0); 9]);
    // 9 `hold`s, 60 `fan`s and 18,000 `take`s.
    assert_eq!(delivered, 9 + 60 + 18_000);
}

#[test]
fn fanned_out_messages_arrive_whole_and_in_order_on_three_workers() {
    let (seen, delivered) = fan_out(3);
    assert_eq!(seen, vec![(2000, 0); 9]);
    assert_eq!(delivered, 9 + 60 + 18_000);
}
