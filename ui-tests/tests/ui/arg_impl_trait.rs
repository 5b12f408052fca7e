use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn show(&mut self, value: impl std::fmt::Display) {
        let _ = value.to_string();
    }
}

fn main() {}
