//! Time: delayed and periodic messages to oneself, their cancellation, `sleep_ms` in `async`
//! handlers, and tasks.

use dz_core::prelude::*;
use dz_core::sim::Simulation;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Clock {
    rings: Vec<(String, u64)>,
    /// When each timer was set (messages from the test take network latency to arrive).
    set_at: Vec<u64>,
    periodic: Option<TimerToken>,
    cancelled_ok: Option<bool>,
}

#[node]
impl Clock {
    #[handler]
    fn ring(&mut self, ctx: &mut Context<Self>, label: String) {
        self.rings.push((label, ctx.now_ms()));
    }

    #[handler]
    fn set(&mut self, ctx: &mut Context<Self>, after_ms: u64, label: String) {
        self.set_at.push(ctx.now_ms());
        ctx.send_after(after_ms, ClockMessage::Ring { label });
    }

    /// Sets two one-shot timers and cancels the second.
    #[handler]
    fn set_and_cancel(&mut self, ctx: &mut Context<Self>) {
        ctx.send_after(100, ClockMessage::Ring { label: "kept".into() });
        let doomed = ctx.send_after(200, ClockMessage::Ring { label: "cancelled".into() });
        self.cancelled_ok = Some(ctx.cancel_timer(doomed));
    }

    #[handler]
    fn start_periodic(&mut self, ctx: &mut Context<Self>, period_ms: u64) {
        self.set_at.push(ctx.now_ms());
        let mut n = 0;
        self.periodic = Some(ctx.send_every(period_ms, move || {
            n += 1;
            ClockMessage::Ring { label: format!("tick {n}") }
        }));
    }

    #[handler]
    fn stop_periodic(&mut self, ctx: &mut Context<Self>) {
        if let Some(token) = self.periodic.take() {
            assert!(ctx.cancel_timer(token));
            assert!(!ctx.cancel_timer(token), "a second cancel finds nothing");
        }
    }
}

fn rings(sim: &Simulation, clock: &Handle<Clock>) -> Vec<(String, u64)> {
    sim.inspect(clock, |c| c.rings.clone()).unwrap()
}

#[test]
fn a_delayed_message_arrives_after_its_delay() {
    let mut sim = Simulation::new(1);
    let m = sim.add_machine();
    let clock = sim.spawn(Clock::default(), &m);
    clock.set(&mut sim.driver(), 250, "late".into());
    clock.set(&mut sim.driver(), 50, "early".into());
    sim.run_until_idle();
    let set_at = sim.inspect(&clock, |c| c.set_at.clone()).unwrap();
    assert_eq!(rings(&sim, &clock), vec![("early".into(), set_at[1] + 50), ("late".into(), set_at[0] + 250)]);
}

#[test]
fn a_cancelled_delayed_message_never_arrives() {
    let mut sim = Simulation::new(2);
    let m = sim.add_machine();
    let clock = sim.spawn(Clock::default(), &m);
    clock.set_and_cancel(&mut sim.driver());
    sim.run_until_idle();
    let labels: Vec<String> = rings(&sim, &clock).into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, vec!["kept".to_string()]);
    assert_eq!(sim.inspect(&clock, |c| c.cancelled_ok), Some(Some(true)));
}

#[test]
fn a_periodic_message_repeats_until_cancelled() {
    let mut sim = Simulation::new(3);
    let m = sim.add_machine();
    let clock = sim.spawn(Clock::default(), &m);
    clock.start_periodic(&mut sim.driver(), 100);
    sim.run_for(1_050);
    let t0 = sim.inspect(&clock, |c| c.set_at[0]).unwrap();
    assert!(t0 < 50, "the test's message arrives within 50 ms: {t0}");
    let got = rings(&sim, &clock);
    assert_eq!(got.len(), 10);
    for (i, (label, at)) in got.iter().enumerate() {
        assert_eq!(label, &format!("tick {}", i + 1));
        assert_eq!(*at, t0 + 100 * (i as u64 + 1));
    }

    clock.stop_periodic(&mut sim.driver());
    sim.run_for(10);
    let after_stop = rings(&sim, &clock).len();
    sim.run_for(5_000);
    assert_eq!(rings(&sim, &clock).len(), after_stop, "no tick after cancel");
    assert_eq!(sim.next_event_micros(), None, "nothing left scheduled");
}

#[test]
fn timers_end_with_their_node() {
    let mut sim = Simulation::new(4);
    let m = sim.add_machine();
    let clock = sim.spawn(Clock::default(), &m);
    clock.start_periodic(&mut sim.driver(), 10);
    sim.run_for(100);
    sim.terminate(&clock);
    sim.run_for(100);
    assert!(!sim.is_alive(clock.id()));
    assert_eq!(sim.run_until_idle(), 0, "the periodic timer went with the node");
}

#[derive(Default, Serialize, Deserialize)]
pub struct Sleeper {
    log: Vec<(String, u64)>,
}

#[node]
impl Sleeper {
    /// Sleeps twice, logging before and after.
    #[handler]
    async fn nap(&mut self, ctx: &mut Context<Self>, ms: u64) {
        self.log.push(("nap start".into(), ctx.now_ms()));
        ctx.sleep_ms(ms).await;
        self.log.push(("nap middle".into(), ctx.now_ms()));
        ctx.sleep_ms(ms).await;
        self.log.push(("nap end".into(), ctx.now_ms()));
    }

    #[handler]
    fn note(&mut self, ctx: &mut Context<Self>, what: String) {
        self.log.push((what, ctx.now_ms()));
    }

    /// Starts a task that sleeps, then sends the node a note.
    #[handler]
    fn background(&mut self, ctx: &mut Context<Self>, ms: u64) {
        ctx.create_task(move |mut ctx| async move {
            ctx.sleep_ms(ms).await;
            ctx.send_self(SleeperMessage::Note { what: "from task".into() });
        });
    }
}

#[test]
fn sleep_in_an_async_handler_holds_the_mailbox() {
    let mut sim = Simulation::new(5);
    let m = sim.add_machine();
    let sleeper = sim.spawn(Sleeper::default(), &m);
    sim.run_until_idle();
    let t0 = sim.now_ms();
    sleeper.nap(&mut sim.driver(), 100);
    sleeper.note(&mut sim.driver(), "sent during the nap".into());
    sim.run_for(50);
    assert_eq!(sim.inspect(&sleeper, |s| s.log.len()), None, "state is inside the running handler");
    sim.run_until_idle();
    let log = sim.inspect(&sleeper, |s| s.log.clone()).unwrap();
    let arrive = log[0].1;
    assert!(arrive >= t0, "{log:?}");
    assert_eq!(
        log,
        vec![
            ("nap start".into(), arrive),
            ("nap middle".into(), arrive + 100),
            ("nap end".into(), arrive + 200),
            ("sent during the nap".into(), arrive + 200),
        ]
    );
}

#[test]
fn a_task_runs_beside_its_node_and_dies_with_it() {
    let mut sim = Simulation::new(6);
    let m = sim.add_machine();
    let sleeper = sim.spawn(Sleeper::default(), &m);
    sleeper.background(&mut sim.driver(), 300);
    sleeper.note(&mut sim.driver(), "direct".into());
    sim.run_until_idle();
    let log = sim.inspect(&sleeper, |s| s.log.clone()).unwrap();
    let labels: Vec<&str> = log.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["direct", "from task"]);
    assert_eq!(log[1].1 - log[0].1, 300);

    let doomed = sim.spawn(Sleeper::default(), &m);
    doomed.background(&mut sim.driver(), 300);
    sim.run_for(100);
    sim.terminate(&doomed);
    sim.run_until_idle();
    assert_eq!(sim.node_stats(doomed.id()).unwrap().sent, 0, "the task died before it could send");
}
