//! Ping-pong between two machines over loopback TCP loses nothing.

mod common;

use std::time::Duration;

use dz_examples::ping_pong::{Pinger, Ponger};

#[test]
fn ten_thousand_round_trips_over_tcp_lose_nothing() {
    let (a, b) = (common::client(), common::server());
    let (completed, served) = common::ping_pong(&a, &b, 10_000, Duration::from_secs(60));
    assert_eq!((completed, served), (10_000, 10_000));
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.send_failed + sb.send_failed, 0, "{sa:?} {sb:?}");
    assert_eq!(sa.dropped_no_node + sb.dropped_no_node, 0, "{sa:?} {sb:?}");
    assert_eq!(sb.delivered, 10_001, "10,000 pings and one `serve`");
    // One connection serves the pair, whoever dialed.
    assert_eq!(sa.connections_dialed + sb.connections_dialed, 1, "{sa:?} {sb:?}");
    assert_eq!(a.peers(), vec![b.handle()]);
    a.shutdown();
    b.shutdown();
}

#[test]
fn ping_pong_within_one_machine_stays_in_memory() {
    let machine = common::server();
    let ponger = machine.spawn(Ponger::default());
    let pinger = machine.spawn(Pinger::default());
    let for_pinger = machine.transfer_handle(&ponger, pinger.id());
    pinger.start(&mut machine.client(), for_pinger, 10_000);
    assert!(common::wait_until(Duration::from_secs(30), || {
        machine.inspect(&pinger, |p| p.completed == 10_000).unwrap_or(false)
    }));
    let stats = machine.stats();
    assert_eq!(stats.frames_out + stats.sent_remote, 0, "{stats:?}");
    assert_eq!(stats.delivered, 20_002, "start, serve, 10,000 pings and 10,000 pongs");
}

#[test]
fn both_machines_may_start_the_conversation() {
    // Each spawns a ponger on the other at once: the two links collapse into one connection
    // (or, if one side loses the race, its frames wait for the one that wins).
    let (a, b) = (common::server(), common::server());
    std::thread::scope(|s| {
        let one = s.spawn(|| common::ping_pong(&a, &b, 500, Duration::from_secs(30)));
        let two = s.spawn(|| common::ping_pong(&b, &a, 500, Duration::from_secs(30)));
        assert_eq!(one.join().unwrap(), (500, 500));
        assert_eq!(two.join().unwrap(), (500, 500));
    });
}
