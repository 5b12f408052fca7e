use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger;

#[node]
impl Ponger {
    #[handler]
    fn greet(&mut self, name: &str) {
        let _ = name;
    }

    #[handler]
    fn sum(&mut self, numbers: &[u64]) {
        let _ = numbers;
    }

    #[handler]
    fn names(&mut self, names: Vec<&str>) {
        let _ = names;
    }

    #[handler]
    fn borrowed<'a>(&mut self, text: std::borrow::Cow<'a, str>) {
        let _ = text;
    }

    #[handler]
    fn fixed(&mut self, text: std::borrow::Cow<'static, str>) {
        let _ = text;
    }
}

fn main() {}
