//! A node's `started` hook runs before its first message, however soon after the spawn that
//! message is sent; a node without one takes messages as soon as it exists, with no start of
//! its own to wait for.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use dz_runtime_smol::Machine;
use serde::{Deserialize, Serialize};

/// Writes down what happened to it, in order.
#[derive(Default, Serialize, Deserialize)]
pub struct Diarist {
    pub entries: Vec<String>,
}

#[node]
impl Diarist {
    #[started]
    fn begin(&mut self) {
        self.entries.push("started".to_owned());
    }

    #[handler]
    fn note(&mut self, n: u64) {
        self.entries.push(format!("note {n}"));
    }
}

/// No `started` hook.
#[derive(Default, Serialize, Deserialize)]
pub struct Tally {
    pub seen: Vec<u64>,
}

#[node]
impl Tally {
    #[handler]
    fn note(&mut self, n: u64) {
        self.seen.push(n);
    }
}

#[test]
fn the_started_hook_runs_before_the_first_message_sent_right_after_the_spawn() {
    for workers in [1, 2] {
        let machine = Machine::builder().workers(workers).build().expect("a machine");
        let diarists: Vec<_> = (0..50)
            .map(|_| {
                let diarist = machine.spawn(Diarist::default());
                for n in 0..3 {
                    diarist.note(&mut machine.client(), n);
                }
                diarist
            })
            .collect();
        let want = ["started", "note 0", "note 1", "note 2"].map(str::to_owned).to_vec();
        assert!(common::wait_until(Duration::from_secs(10), || {
            diarists.iter().all(|d| machine.inspect(d, |d| d.entries.len() == 4).unwrap_or(false))
        }));
        for diarist in &diarists {
            assert_eq!(machine.inspect(diarist, |d| d.entries.clone()), Some(want.clone()), "{workers} workers");
        }
        machine.shutdown();
    }
}

#[test]
fn a_node_without_a_started_hook_exists_and_takes_messages_at_once() {
    let machine = Machine::builder().workers(1).build().expect("a machine");
    let before = machine.stats();
    let tallies: Vec<_> = (0..100).map(|_| machine.spawn(Tally::default())).collect();
    // Nothing to start: each is there, idle and counted, when `spawn` returns.
    assert_eq!(machine.stats().spawned - before.spawned, 100);
    for tally in &tallies {
        assert_eq!(machine.inspect(tally, |t| t.seen.len()), Some(0));
    }
    for (n, tally) in tallies.iter().enumerate() {
        tally.note(&mut machine.client(), n as u64);
        tally.note(&mut machine.client(), n as u64 + 1000);
    }
    assert!(common::wait_until(Duration::from_secs(10), || {
        tallies.iter().all(|t| machine.inspect(t, |t| t.seen.len() == 2).unwrap_or(false))
    }));
    for (n, tally) in tallies.iter().enumerate() {
        assert_eq!(machine.inspect(tally, |t| t.seen.clone()), Some(vec![n as u64, n as u64 + 1000]));
    }
    machine.shutdown();
}
