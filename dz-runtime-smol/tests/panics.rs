//! A panicking handler, hook or task stops its own node only.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Fragile {
    pub count: u64,
}

#[node]
impl Fragile {
    #[handler]
    fn bump(&mut self) {
        self.count += 1;
    }

    #[handler]
    fn explode(&mut self) {
        panic!("boom (a test of a panicking handler)");
    }

    #[handler]
    async fn explode_later(&mut self, ctx: &mut Context<Self>) {
        ctx.sleep_ms(5).await;
        panic!("boom (a test of a panicking async handler)");
    }

    #[handler]
    fn explode_in_task(&mut self, ctx: &mut Context<Self>) {
        ctx.create_task(|ctx| async move {
            ctx.sleep_ms(5).await;
            panic!("boom (a test of a panicking task)");
        });
    }
}

#[test]
fn a_panic_stops_only_its_node() {
    let machine = common::client();
    let survivor = machine.spawn(Fragile::default());
    let victims: Vec<_> = (0..3).map(|_| machine.spawn(Fragile::default())).collect();
    victims[0].explode(&mut machine.client());
    victims[1].explode_later(&mut machine.client());
    victims[2].explode_in_task(&mut machine.client());
    assert!(common::wait_until(Duration::from_secs(10), || machine.stats().panicked == 3), "{:?}", machine.stats());
    for victim in &victims {
        assert!(!machine.is_alive(victim.id()));
        victim.bump(&mut machine.client());
    }
    for _ in 0..10 {
        survivor.bump(&mut machine.client());
    }
    assert!(common::wait_until(Duration::from_secs(10), || machine.inspect(&survivor, |f| f.count) == Some(10)));
    assert!(common::wait_until(Duration::from_secs(10), || machine.stats().dropped_no_node == 3));
}
