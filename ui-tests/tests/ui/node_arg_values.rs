use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node(name = "", crate = "not a path", name = Ponger)]
impl Ponger {
    #[handler]
    fn ping(&mut self) {}
}

fn main() {}
