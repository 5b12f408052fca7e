use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

use dz_core::Context as Ctx;

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn ping(&mut self, ctx: &mut Ctx<Self>, n: u64) {
        let _ = (ctx, n);
    }
}

fn main() {}
