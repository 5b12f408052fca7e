//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use dz_examples::ping_pong::{Pinger, Ponger};
use dz_runtime_smol::Machine;

/// Polls `check` every few milliseconds until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Plays `rounds` of ping-pong with a pinger on `client` and a ponger on `server` (spawned there
/// from `client`, over TCP); returns (round trips, pings served).
pub fn ping_pong(client: &Machine, server: &Machine, rounds: u64, limit: Duration) -> (u64, u64) {
    let ponger = client.spawn_on(Ponger::default(), &server.handle());
    let pinger = client.spawn(Pinger::default());
    let for_pinger = client.transfer_handle(&ponger, pinger.id());
    pinger.start(&mut client.client(), for_pinger, rounds);
    wait_until(limit, || client.inspect(&pinger, |p| p.completed == rounds).unwrap_or(false));
    let completed = client.inspect(&pinger, |p| p.completed).unwrap_or(0);
    let served = server.inspect(&ponger, |p| p.served).unwrap_or(0);
    (completed, served)
}

/// A machine that can host pongers.
pub fn server() -> Machine {
    Machine::builder().listen("127.0.0.1:0").register::<Ponger>().build().expect("a machine on loopback")
}

/// A machine with no registered node types.
pub fn client() -> Machine {
    Machine::builder().listen("127.0.0.1:0").build().expect("a machine on loopback")
}
