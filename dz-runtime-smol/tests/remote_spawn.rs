//! Spawning and terminating nodes on another machine.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use dz_runtime_smol::Machine;
use serde::{Deserialize, Serialize};

/// Counts what it is told, and tells its watcher when it stops.
#[derive(Serialize, Deserialize)]
pub struct Worker {
    watcher: Option<Handle<Watcher>>,
    pub total: u64,
}

#[node]
impl Worker {
    #[handler]
    fn add(&mut self, n: u64) {
        self.total += n;
    }

    #[stopping]
    fn goodbye(&mut self, ctx: &mut Context<Self>) {
        if let Some(watcher) = &self.watcher {
            watcher.stopped(ctx, self.total);
        }
    }
}

/// Spawns a worker on a given machine, feeds it, and hears of its end.
#[derive(Default, Serialize, Deserialize)]
pub struct Watcher {
    worker: Option<Handle<Worker>>,
    pub stopped_with: Option<u64>,
}

#[node]
impl Watcher {
    #[handler]
    fn hire(&mut self, ctx: &mut Context<Self>, on: MachineHandle) {
        let id = ctx.reserve_id::<Worker>();
        let me = ctx.new_handle(&id);
        let worker = ctx.spawn_with_id(id, Worker { watcher: Some(me), total: 0 }, &on);
        for n in 1..=10 {
            worker.add(ctx, n);
        }
        self.worker = Some(worker);
    }

    #[handler]
    fn fire(&mut self, ctx: &mut Context<Self>) {
        if let Some(worker) = self.worker.take() {
            ctx.terminate(&worker);
        }
    }

    #[handler]
    fn stopped(&mut self, total: u64) {
        self.stopped_with = Some(total);
    }
}

fn machine() -> Machine {
    Machine::builder().register::<Worker>().register::<Watcher>().build().expect("a machine")
}

#[test]
fn a_node_spawns_on_a_peer_and_terminates_it_there() {
    let (a, b) = (machine(), machine());
    let watcher = a.spawn(Watcher::default());
    watcher.hire(&mut a.client(), b.handle());
    assert!(common::wait_until(Duration::from_secs(10), || b.stats().delivered == 10));
    let worker = a.inspect(&watcher, |w| w.worker.clone()).flatten().expect("a worker handle");
    assert_eq!(worker.machine_id(), b.handle().id());
    assert!(b.is_alive(worker.id()));
    assert_eq!(b.inspect(&worker, |w| w.total), Some(55));

    watcher.fire(&mut a.client());
    assert!(common::wait_until(Duration::from_secs(10), || {
        a.inspect(&watcher, |w| w.stopped_with.is_some()).unwrap_or(false)
    }));
    // The worker's stopping hook ran on `b` and told the watcher on `a`.
    assert_eq!(a.inspect(&watcher, |w| w.stopped_with), Some(Some(55)));
    assert!(!b.is_alive(worker.id()));
    assert_eq!(b.stats().terminated, 1);
}

#[test]
fn the_outside_code_spawns_and_terminates_remotely_too() {
    let (a, b) = (machine(), machine());
    let worker = a.spawn_on(Worker { watcher: None, total: 0 }, &b.handle());
    a.send(&worker, WorkerMessage::Add { n: 7 });
    assert!(common::wait_until(Duration::from_secs(10), || b.inspect(&worker, |w| w.total) == Some(7)));
    a.terminate(&worker);
    assert!(common::wait_until(Duration::from_secs(10), || !b.is_alive(worker.id())));
    // Messages to it now are dropped on `b`, and counted there.
    a.send(&worker, WorkerMessage::Add { n: 1 });
    assert!(common::wait_until(Duration::from_secs(10), || b.stats().dropped_no_node == 1));
}

#[test]
fn a_spawn_of_a_type_the_peer_did_not_register_fails_there() {
    let a = machine();
    let b = common::client(); // registers nothing
    let worker = a.spawn_on(Worker { watcher: None, total: 0 }, &b.handle());
    assert!(common::wait_until(Duration::from_secs(10), || b.stats().spawn_unknown_type == 1));
    assert!(!b.is_alive(worker.id()));
}
