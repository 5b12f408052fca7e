use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node(nmae = "Ponger")]
impl Ponger {
    #[handler]
    fn ping(&mut self) {}
}

fn main() {}
