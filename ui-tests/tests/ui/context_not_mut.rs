use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn ping(&mut self, ctx: &Context<Self>, n: u64) {
        let _ = (ctx, n);
    }

    #[handler]
    fn pong(&mut self, ctx: Context<Self>, n: u64) {
        let _ = (ctx, n);
    }
}

fn main() {}
