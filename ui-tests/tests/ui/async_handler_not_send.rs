use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

use std::rc::Rc;

#[derive(Serialize, Deserialize)]
pub struct Napper;

#[node]
impl Napper {
    #[handler]
    async fn nap(&mut self, ctx: &mut Context<Self>, ms: u64) {
        let shared = Rc::new(ms);
        ctx.sleep_ms(ms).await;
        let _ = shared;
    }
}

fn main() {}
