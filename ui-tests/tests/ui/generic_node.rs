use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Cell<T> {
    value: T,
}

#[node]
impl<T> Cell<T> {
    #[handler]
    fn set(&mut self, value: T) {
        self.value = value;
    }
}

fn main() {}
