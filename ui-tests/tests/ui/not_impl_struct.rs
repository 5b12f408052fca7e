use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[node]
#[derive(Serialize, Deserialize)]
pub struct Ponger {
    served: u64,
}

fn main() {}
