//! A panicking handler stops its own node only.

use dz_core::prelude::*;
use dz_core::sim::Simulation;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Fragile {
    seen: u64,
}

#[node]
impl Fragile {
    #[handler]
    fn poke(&mut self, explode: bool) {
        self.seen += 1;
        if explode {
            panic!("fragile node exploded on purpose");
        }
    }

    #[handler]
    async fn slow_poke(&mut self, ctx: &mut Context<Self>) {
        ctx.sleep_ms(10).await;
        panic!("fragile node exploded in an async handler");
    }
}

#[test]
fn a_panicking_handler_stops_only_its_node() {
    let mut sim = Simulation::new(3);
    let (a, b) = (sim.add_machine(), sim.add_machine());
    let doomed = sim.spawn(Fragile::default(), &a);
    let neighbour = sim.spawn(Fragile::default(), &a);
    let remote = sim.spawn(Fragile::default(), &b);

    doomed.poke(&mut sim.driver(), false);
    doomed.poke(&mut sim.driver(), true);
    doomed.poke(&mut sim.driver(), false);
    for node in [&neighbour, &remote] {
        node.poke(&mut sim.driver(), false);
        node.poke(&mut sim.driver(), false);
    }
    sim.run_until_idle();

    assert!(!sim.is_alive(doomed.id()));
    assert_eq!(sim.stats().panicked, 1);
    assert_eq!(sim.node_stats(doomed.id()).unwrap().received, 2, "the message after the panic was dropped");
    assert_eq!(sim.node_stats(sim.driver_id()).unwrap().dropped, 1);
    assert_eq!(sim.inspect(&neighbour, |f| f.seen), Some(2));
    assert_eq!(sim.inspect(&remote, |f| f.seen), Some(2));

    // The machine goes on: new nodes there work.
    let fresh = sim.spawn(Fragile::default(), &a);
    fresh.poke(&mut sim.driver(), false);
    sim.run_until_idle();
    assert_eq!(sim.inspect(&fresh, |f| f.seen), Some(1));
}

#[test]
fn a_panicking_async_handler_stops_only_its_node() {
    let mut sim = Simulation::new(4);
    let a = sim.add_machine();
    let doomed = sim.spawn(Fragile::default(), &a);
    let neighbour = sim.spawn(Fragile::default(), &a);
    doomed.slow_poke(&mut sim.driver());
    doomed.poke(&mut sim.driver(), false);
    neighbour.poke(&mut sim.driver(), false);
    sim.run_until_idle();
    assert!(!sim.is_alive(doomed.id()));
    assert_eq!(sim.stats().panicked, 1);
    assert_eq!(sim.inspect(&neighbour, |f| f.seen), Some(1));
    assert_eq!(sim.node_stats(sim.driver_id()).unwrap().dropped, 1, "the queued poke was dropped");
}
