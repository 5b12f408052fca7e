//! Timers in real time: `send_after`, `send_every` with cancel, and `sleep_ms` in an `async`
//! handler, which holds its node's mailbox.

mod common;

use std::time::{Duration, Instant};

use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Clock {
    timer: Option<TimerToken>,
    pub ticks: u64,
    pub once: u64,
    pub started_ms: u64,
    pub once_at_ms: u64,
}

#[node]
impl Clock {
    #[handler]
    fn start(&mut self, ctx: &mut Context<Self>) {
        self.started_ms = ctx.now_ms();
        self.timer = Some(ctx.send_every(10, || ClockMessage::Tick));
        ctx.send_after(30, ClockMessage::Once);
        let cancelled = ctx.send_after(20, ClockMessage::Once);
        assert!(ctx.cancel_timer(cancelled));
    }

    #[handler]
    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.ticks += 1;
        if self.ticks == 5 {
            if let Some(timer) = self.timer.take() {
                ctx.cancel_timer(timer);
            }
        }
    }

    #[handler]
    fn once(&mut self, ctx: &mut Context<Self>) {
        self.once += 1;
        self.once_at_ms = ctx.now_ms();
    }
}

#[test]
fn timers_fire_in_real_time_and_cancel() {
    let machine = common::client();
    let clock = machine.spawn(Clock::default());
    let wall = Instant::now();
    clock.start(&mut machine.client());
    assert!(common::wait_until(Duration::from_secs(10), || machine.inspect(&clock, |c| c.ticks >= 5) == Some(true)));
    assert!(wall.elapsed() >= Duration::from_millis(50), "five 10 ms periods took {:?}", wall.elapsed());
    // The fifth tick cancels the periodic timer. On a busy machine a sixth can already be in the
    // mailbox by then (a cancel does not take back what fired), but nothing fires after it.
    let read = || machine.inspect(&clock, |c| (c.ticks, c.once, c.started_ms, c.once_at_ms));
    std::thread::sleep(Duration::from_millis(100));
    let mut last = None;
    assert!(common::wait_until(Duration::from_secs(10), || {
        let now = read();
        let settled = now.is_some() && now == last;
        last = now;
        settled
    }));
    let (ticks, once, started, once_at) = last.expect("the clock");
    assert!(ticks >= 5, "{ticks} ticks");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(read().map(|r| r.0), Some(ticks), "the periodic timer was cancelled: no tick in 100 ms");
    assert_eq!(once, 1, "one one-shot fired, the cancelled one did not");
    assert!(once_at - started >= 30, "{once_at} - {started}");
}

#[derive(Default, Serialize, Deserialize)]
pub struct Napper {
    pub log: Vec<u64>,
    pub slept_ms: u64,
}

#[node]
impl Napper {
    #[handler]
    async fn nap(&mut self, ctx: &mut Context<Self>, ms: u64) {
        self.log.push(1);
        let start = ctx.now_ms();
        ctx.sleep_ms(ms).await;
        self.slept_ms = ctx.now_ms() - start;
        self.log.push(2);
    }

    #[handler]
    fn poke(&mut self) {
        self.log.push(3);
    }
}

#[test]
fn an_async_handler_sleeps_and_holds_the_mailbox() {
    let machine = common::client();
    let napper = machine.spawn(Napper::default());
    napper.nap(&mut machine.client(), 50);
    napper.poke(&mut machine.client());
    assert!(common::wait_until(Duration::from_secs(10), || {
        machine.inspect(&napper, |n| n.log.len() == 3).unwrap_or(false)
    }));
    assert_eq!(machine.inspect(&napper, |n| n.log.clone()), Some(vec![1, 2, 3]));
    assert!(machine.inspect(&napper, |n| n.slept_ms).unwrap_or(0) >= 50);
}

#[test]
fn many_sleepers_wake_in_deadline_order() {
    let machine = common::client();
    let nappers: Vec<_> = (0..100).map(|_| machine.spawn(Napper::default())).collect();
    for (i, napper) in nappers.iter().enumerate() {
        napper.nap(&mut machine.client(), 100 - i as u64);
    }
    assert!(common::wait_until(Duration::from_secs(10), || {
        nappers.iter().all(|n| machine.inspect(n, |n| n.log.len() == 2).unwrap_or(false))
    }));
    for (i, napper) in nappers.iter().enumerate() {
        assert!(machine.inspect(napper, |n| n.slept_ms).unwrap_or(0) >= 100 - i as u64);
    }
}
