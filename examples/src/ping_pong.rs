//! Two nodes that pass a counter back and forth: the smallest conversation there is.

use dz_core::prelude::*;
use dz_core::sim::Simulation;
use serde::{Deserialize, Serialize};

/// Answers every ping with a pong.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ponger {
    /// Where pongs go; set by [`Ponger::serve`].
    pinger: Option<Handle<Pinger>>,
    /// Pings answered.
    pub served: u64,
}

#[node]
impl Ponger {
    /// From now on, answer `pinger`.
    #[handler]
    fn serve(&mut self, pinger: Handle<Pinger>) {
        self.pinger = Some(pinger);
    }

    /// Answers ping `n` with pong `n`.
    #[handler]
    fn ping(&mut self, ctx: &mut Context<Self>, n: u64) {
        self.served += 1;
        if let Some(pinger) = &self.pinger {
            pinger.pong(ctx, n);
        }
    }
}

/// Pings a [`Ponger`] a given number of times, one round trip after another.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Pinger {
    ponger: Option<Handle<Ponger>>,
    /// Round trips still to make.
    pub left: u64,
    /// Round trips completed.
    pub completed: u64,
    /// When the first ping left, in virtual (or real) milliseconds.
    pub started_ms: u64,
    /// When the last pong came back.
    pub finished_ms: Option<u64>,
}

#[node]
impl Pinger {
    /// Starts `rounds` round trips with `ponger`.
    #[handler]
    fn start(&mut self, ctx: &mut Context<Self>, ponger: Handle<Ponger>, rounds: u64) {
        self.left = rounds;
        self.started_ms = ctx.now_ms();
        let me = ctx.new_handle(ponger.id());
        ponger.serve(ctx, me);
        if rounds > 0 {
            ponger.ping(ctx, 1);
        }
        self.ponger = Some(ponger);
    }

    /// Counts a round trip and starts the next one.
    #[handler]
    fn pong(&mut self, ctx: &mut Context<Self>, n: u64) {
        self.completed += 1;
        self.left = self.left.saturating_sub(1);
        if self.left == 0 {
            self.finished_ms = Some(ctx.now_ms());
        } else if let Some(ponger) = &self.ponger {
            ponger.ping(ctx, n + 1);
        }
    }
}

/// What a simulated ping-pong run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingPongOutcome {
    /// Round trips completed.
    pub round_trips: u64,
    /// Pings the ponger answered.
    pub served: u64,
    /// Virtual milliseconds from the first ping to the last pong.
    pub simulated_ms: u64,
    /// The run's trace hash.
    pub trace_hash: u64,
}

/// Runs `rounds` round trips between two nodes on two simulated machines.
pub fn simulate(seed: u64, rounds: u64) -> PingPongOutcome {
    let mut sim = Simulation::new(seed);
    let (a, b) = (sim.add_machine(), sim.add_machine());
    let ponger = sim.spawn(Ponger::default(), &a);
    let pinger = sim.spawn(Pinger::default(), &b);
    let for_pinger = sim.transfer_handle(&ponger, pinger.id());
    pinger.start(&mut sim.driver(), for_pinger, rounds);
    sim.run_until_idle();
    let (round_trips, started, finished) =
        sim.inspect(&pinger, |p| (p.completed, p.started_ms, p.finished_ms)).expect("the pinger is alive");
    PingPongOutcome {
        round_trips,
        served: sim.inspect(&ponger, |p| p.served).expect("the ponger is alive"),
        simulated_ms: finished.unwrap_or(started) - started,
        trace_hash: sim.trace_hash(),
    }
}
