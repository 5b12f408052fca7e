use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    const LIMIT: u64 = 3;

    #[handler]
    #[started]
    fn ping(&mut self) {}
}

fn main() {}
