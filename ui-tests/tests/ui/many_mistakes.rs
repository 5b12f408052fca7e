use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn ping(&self, n: u64) {
        let _ = n;
    }

    #[handler]
    fn greet(&mut self, name: &str) {
        let _ = name;
    }

    #[handler]
    fn count(&mut self) -> u64 {
        0
    }

    #[handler]
    fn fine(&mut self, n: u64) {
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
        self.ponger.fine(ctx, 1);
    }
}

fn main() {}
