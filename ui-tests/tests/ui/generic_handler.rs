use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn store<T: Serialize>(&mut self, value: T) {
        let _ = value;
    }
}

fn main() {}
