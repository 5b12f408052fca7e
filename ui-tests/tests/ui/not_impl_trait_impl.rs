use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

pub trait Greet {
    fn greet(&mut self);
}

#[node]
impl Greet for Ponger {
    #[handler]
    fn greet(&mut self) {}
}

fn main() {}
