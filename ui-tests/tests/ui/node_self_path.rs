use dz_core::prelude::*;

mod nodes {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct Ponger;
}

#[node]
impl nodes::Ponger {
    #[handler]
    fn ping(&mut self) {}
}

fn main() {}
