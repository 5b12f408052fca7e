use dz_core::prelude::*;

#[node]
fn ping() {}

fn main() {}
