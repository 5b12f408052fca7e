use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    const fn fast(&mut self) {}

    #[handler]
    unsafe fn risky(&mut self) {}

    #[handler]
    extern "C" fn foreign(&mut self) {}
}

fn main() {}
