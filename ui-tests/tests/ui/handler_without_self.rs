use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn ping(n: u64) {
        let _ = n;
    }

    #[handler]
    fn reset() {}
}

fn main() {}
