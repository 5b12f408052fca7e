use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

pub struct Token(u64);

#[node]
impl Ponger {
    #[handler]
    fn take(&mut self, token: Token) {
        let _ = token.0;
    }

    #[handler]
    fn take_all(&mut self, tokens: Vec<Token>) {
        let _ = tokens;
    }
}

fn main() {}
