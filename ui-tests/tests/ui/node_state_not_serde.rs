use dz_core::prelude::*;

pub struct Ponger {
    served: u64,
}

#[node]
impl Ponger {
    #[handler]
    fn ping(&mut self) {
        self.served += 1;
    }
}

fn main() {}
