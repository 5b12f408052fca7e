//! Seed sweeps, swarm draws, replay, and `ctx.buggify()`.

use dz_core::prelude::*;
use dz_core::sim::{FaultKind, SimConfig, Simulation, Swarm, Sweep, Trial};
use serde::{Deserialize, Serialize};

#[test]
fn a_sweep_reports_every_failing_seed_in_order() {
    let report = Sweep::new(0..100).run(|trial| {
        if trial.seed % 7 == 3 {
            Err(format!("seed {} is unlucky", trial.seed))
        } else if trial.seed == 50 {
            panic!("seed 50 panicked");
        } else {
            Ok(())
        }
    });
    assert_eq!(report.ran, 100);
    let seeds: Vec<u64> = report.failures.iter().map(|f| f.seed).collect();
    let mut want: Vec<u64> = (0..100).filter(|s| s % 7 == 3).collect();
    want.push(50);
    want.sort();
    assert_eq!(seeds, want);
    assert!(report.failures.iter().any(|f| f.message.contains("panicked: seed 50 panicked")));
    let text = report.to_string();
    assert!(text.contains("of 100 seeds failed") && text.contains("DZ_SEED=3"), "{text}");
}

#[test]
fn swarm_trials_draw_within_bounds_and_are_fixed_by_their_seed() {
    let swarm = Swarm { max_crashes: 2, ..Swarm::default() };
    let rates = |t: &Trial, kind: FaultKind| t.config.faults.iter().find(|r| r.kind == kind).map_or(0.0, |r| r.rate);
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let trial = Trial::swarm(seed, &swarm);
        let again = Trial::swarm(seed, &swarm);
        assert_eq!(format!("{trial:?}"), format!("{again:?}"));
        assert!(swarm.drop.contains(&rates(&trial, FaultKind::Drop)));
        assert!(swarm.duplicate.contains(&rates(&trial, FaultKind::Duplicate)));
        assert!(swarm.reorder.contains(&rates(&trial, FaultKind::Reorder)));
        assert!(swarm.buggify.contains(&trial.config.buggify_rate));
        assert!(trial.partitions.len() <= 2 && trial.crashes.len() <= 2);
        for &(start, length) in trial.partitions.iter().chain(&trial.crashes) {
            assert!(swarm.window_ms.contains(&start) && (1..=swarm.max_outage_ms).contains(&length));
        }
        distinct.insert((rates(&trial, FaultKind::Drop) * 1e6) as u64);
    }
    assert!(distinct.len() > 150, "seeds draw different conditions");
}

#[derive(Default, Serialize, Deserialize)]
pub struct Risky {
    rare_paths: u64,
    calls: u64,
}

#[node]
impl Risky {
    #[handler]
    fn step(&mut self, ctx: &mut Context<Self>, times: u64) {
        for _ in 0..times {
            self.calls += 1;
            if ctx.buggify() {
                self.rare_paths += 1;
            }
        }
    }
}

fn buggified(seed: u64, rate: f64) -> u64 {
    let mut sim = Simulation::with_config(seed, SimConfig { buggify_rate: rate, ..SimConfig::default() });
    let m = sim.add_machine();
    let risky = sim.spawn(Risky::default(), &m);
    risky.step(&mut sim.driver(), 10_000);
    sim.run_until_idle();
    sim.inspect(&risky, |r| r.rare_paths).unwrap()
}

#[test]
fn buggify_is_off_unless_enabled_and_seeded_when_on() {
    assert_eq!(buggified(1, 0.0), 0, "off by default");
    let hits = buggified(1, 0.25);
    assert!((2_300..2_700).contains(&hits), "about a quarter: {hits}");
    assert_eq!(buggified(1, 0.25), hits, "the same seed, the same rare paths");
    assert_ne!(buggified(2, 0.25), hits);
}

#[test]
fn a_trial_replays_to_the_same_trace() {
    let sweep = Sweep::new(0..10).swarm(Swarm::default());
    let run = |trial: &Trial| {
        let mut sim = trial.simulation();
        let machines: Vec<_> = (0..3).map(|_| sim.add_machine()).collect();
        trial.disrupt(&mut sim, &machines[1..]);
        let risky: Vec<_> = machines.iter().map(|m| sim.spawn(Risky::default(), m)).collect();
        for r in &risky {
            r.step(&mut sim.driver(), 100);
        }
        sim.run_until_idle();
        sim.trace_hash()
    };
    for seed in 0..10 {
        assert_eq!(run(&sweep.trial(seed)), run(&sweep.trial(seed)));
    }
}
