use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Pinger;

#[node]
impl Pinger {
    #[handler]
    fn pong(&mut self) {}
}

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn ping(&mut self, ctx: &mut Context<Pinger>, n: u64) {
        let _ = (ctx, n);
    }
}

fn main() {}
