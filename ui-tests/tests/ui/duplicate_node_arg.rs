use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node(name = "a.Ponger", name = "b.Ponger")]
impl Ponger {
    #[handler]
    fn ping(&mut self) {}
}

fn main() {}
