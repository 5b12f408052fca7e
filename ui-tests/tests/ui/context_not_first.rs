use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn ping(&mut self, n: u64, ctx: &mut Context<Self>) {
        let _ = (ctx, n);
    }
}

fn main() {}
