use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn pair(&mut self, (a, b): (u64, u64)) {
        let _ = (a, b);
    }

    #[handler]
    fn ignore(&mut self, _: u64) {}
}

fn main() {}
