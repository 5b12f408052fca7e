use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn ping(&mut self, n: u64) {
        let _ = n;
    }
}

#[derive(Serialize, Deserialize)]
pub struct Pinger {
    ponger: Handle<Ponger>,
}

#[node]
impl Pinger {
    #[handler]
    fn start(&mut self, ctx: &mut Context<Self>) {
        self.ponger.ping(ctx, "one");
    }
}

fn main() {}
