use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn do_it(&mut self) {}

    #[handler]
    #[allow(non_snake_case)]
    fn DoIt(&mut self) {}

    #[handler]
    fn do__it(&mut self) {}
}

fn main() {}
