//! `DZ_SEED` makes a sweep replay one seed, with the same trace. (A file of its own: it sets an
//! environment variable, which no other test in this binary may read meanwhile.)

use std::sync::Mutex;

use dz_core::prelude::*;
use dz_core::sim::{Swarm, Sweep, Trial};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Echo {
    heard: u64,
}

#[node]
impl Echo {
    #[handler]
    fn hear(&mut self, ctx: &mut Context<Self>, left: u64, peer: Handle<Echo>) {
        self.heard += 1;
        if left > 0 {
            let me = ctx.new_handle(peer.id());
            peer.hear(ctx, left - 1, me);
        }
    }
}

/// A rally between two machines under the trial's faults; fails on odd trace hashes (a stand-in
/// for a bug that only some interleavings show), saying the hash.
fn scenario(trial: &Trial, hashes: &Mutex<Vec<(u64, u64)>>) -> Result<(), String> {
    let mut sim = trial.simulation();
    let (a, b) = (sim.add_machine(), sim.add_machine());
    let x = sim.spawn(Echo::default(), &a);
    let y = sim.spawn(Echo::default(), &b);
    let y_for_x = sim.transfer_handle(&y, x.id());
    x.hear(&mut sim.driver(), 50, y_for_x);
    sim.run_until_idle();
    let hash = sim.trace_hash();
    hashes.lock().unwrap().push((trial.seed, hash));
    if hash % 2 == 1 {
        return Err(format!("odd trace {hash:016x}"));
    }
    Ok(())
}

#[test]
fn dz_seed_replays_a_failing_seed_with_the_same_trace() {
    let sweep = Sweep::new(0..200).swarm(Swarm::default());
    let first = Mutex::new(Vec::new());
    let report = sweep.run(|trial| scenario(trial, &first));
    assert_eq!(report.ran, 200);
    let failing = report.failures.first().expect("some seed has an odd trace").clone();

    std::env::set_var("DZ_SEED", failing.seed.to_string());
    let again = Mutex::new(Vec::new());
    let replay = sweep.run(|trial| scenario(trial, &again));
    std::env::remove_var("DZ_SEED");

    assert_eq!(replay.ran, 1, "only the seed asked for ran");
    assert_eq!(replay.failures, vec![failing.clone()], "the same failure, the same message");
    let original = first.lock().unwrap().iter().find(|(s, _)| *s == failing.seed).unwrap().1;
    assert_eq!(again.lock().unwrap().as_slice(), &[(failing.seed, original)]);
}
