//! Under load, many messages leave in few frames (sealed batches), and many frames in one write.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use dz_runtime_smol::Machine;
use serde::{Deserialize, Serialize};

/// Adds what it is sent.
#[derive(Default, Serialize, Deserialize)]
pub struct Sink {
    pub total: u64,
    pub count: u64,
}

#[node]
impl Sink {
    #[handler]
    fn add(&mut self, n: u64) {
        self.total += n;
        self.count += 1;
    }
}

/// Sends bursts.
#[derive(Default, Serialize, Deserialize)]
pub struct Burster;

#[node]
impl Burster {
    #[handler]
    fn burst(&mut self, ctx: &mut Context<Self>, to: Handle<Sink>, n: u64) {
        for i in 1..=n {
            to.add(ctx, i);
        }
    }
}

#[test]
fn a_burst_from_handlers_leaves_in_few_writes_and_in_order() {
    let a = Machine::builder().build().expect("a machine");
    let b = Machine::builder().register::<Sink>().build().expect("a machine");
    let sink = a.spawn_on(Sink::default(), &b.handle());
    // Once connected (the spawn dialed), so that the bursts meet an idle link.
    assert!(common::wait_until(Duration::from_secs(10), || b.is_alive(sink.id())));
    let burster = a.spawn(Burster);
    let for_burster = a.transfer_handle(&sink, burster.id());
    for _ in 0..10 {
        burster.burst(&mut a.client(), for_burster.clone(), 1_000);
    }
    let all = common::wait_until(Duration::from_secs(30), || b.inspect(&sink, |s| s.count) == Some(10_000));
    assert!(all, "{:?}", b.inspect(&sink, |s| s.count));
    assert_eq!(b.inspect(&sink, |s| s.total), Some(10 * 500_500));
    let stats = a.stats();
    assert_eq!(stats.sent_remote, 10_000, "{stats:?}");
    // The messages of a burst (one link) are sealed together in batch frames of at most 4,096
    // messages: a spawn and at least three batches, far fewer frames than messages (a batch is
    // closed early when the writer task takes the queue).
    let frames = stats.frames_out;
    assert!((4..=201).contains(&frames), "a spawn and 10,000 messages in {frames} frames: {stats:?}");
    // Each burst's frames leave when its handler is done: few writes (a write the socket takes
    // only in part leaves the rest to the writer task, which may split it).
    assert!(stats.writes <= 200, "{frames} frames in {} writes: {stats:?}", stats.writes);
}
