use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[started]
    fn begin(&mut self, ctx: &mut Context<Self>, first: u64) {
        let _ = (ctx, first);
    }
}

fn main() {}
