use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[started]
    fn begin(&mut self) {}

    #[started]
    fn also_begin(&mut self) {}
}

fn main() {}
