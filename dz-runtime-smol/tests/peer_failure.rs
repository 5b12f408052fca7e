//! A peer that dies mid-run: sends to it fail cleanly and are counted, the rest go on.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

/// Adds what it is sent.
#[derive(Default, Serialize, Deserialize)]
pub struct Sink {
    pub total: u64,
}

#[node]
impl Sink {
    #[handler]
    fn add(&mut self, n: u64) {
        self.total += n;
    }
}

#[test]
fn a_peer_shut_down_mid_run_fails_sends_to_it_only() {
    let a = common::server();
    let b = common::server();
    let doomed = dz_runtime_smol::Machine::builder().register::<Sink>().build().expect("a machine");
    let sink = a.spawn_on(Sink::default(), &doomed.handle());
    for _ in 0..100 {
        a.send(&sink, SinkMessage::Add { n: 1 });
    }
    assert!(common::wait_until(Duration::from_secs(10), || doomed.inspect(&sink, |s| s.total) == Some(100)));
    assert_eq!(a.stats().send_failed, 0);

    // A conversation with `b` runs while `doomed` goes down.
    std::thread::scope(|s| {
        let talk = s.spawn(|| common::ping_pong(&a, &b, 2_000, Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        doomed.shutdown();
        // Sends to the dead peer: the first ones may sit in a broken connection's buffer, the
        // next dial is refused, and then sends fail at once while the link backs off.
        for _ in 0..50 {
            a.send(&sink, SinkMessage::Add { n: 1 });
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(talk.join().expect("the conversation"), (2_000, 2_000));
    });
    // All but the few that TCP accepted before the peer's reset came back: those are lost
    // unseen (delivery is at most once).
    let failed = |n: u64| (45..=50).contains(&n);
    assert!(common::wait_until(Duration::from_secs(10), || failed(a.stats().send_failed)), "{:?}", a.stats());
    let stats = a.stats();
    assert!(stats.connect_failed >= 1, "{stats:?}");
    assert_eq!(b.stats().send_failed, 0);
    // `a` still works with `b` afterwards.
    assert_eq!(common::ping_pong(&a, &b, 100, Duration::from_secs(30)), (100, 100));
}
