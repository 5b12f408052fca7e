use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[stopping]
    async fn end(&mut self, ctx: &mut Context<Self>) {
        let _ = ctx;
    }
}

fn main() {}
