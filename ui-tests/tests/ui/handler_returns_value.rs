use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn ping(&mut self, n: u64) -> u64 {
        n + 1
    }
}

fn main() {}
