//! Messages carried inline (no fields, or one primitive field) and boxed ones, mixed, from one
//! sender: all arrive, whole and in send order, within a machine and from another machine.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use dz_runtime_smol::Machine;
use serde::{Deserialize, Serialize};

/// Writes down what it is sent.
#[derive(Default, Serialize, Deserialize)]
pub struct Recorder {
    pub log: Vec<String>,
}

#[node]
impl Recorder {
    #[handler]
    fn number(&mut self, n: i64) {
        self.log.push(n.to_string());
    }

    #[handler]
    fn text(&mut self, s: String) {
        self.log.push(s);
    }

    #[handler]
    fn mark(&mut self) {
        self.log.push("|".into());
    }
}

/// Sends `count` rounds of a number, a text and a mark.
#[derive(Default, Serialize, Deserialize)]
pub struct Mixer;

#[node]
impl Mixer {
    #[handler]
    fn go(&mut self, ctx: &mut Context<Self>, to: Handle<Recorder>, count: i64) {
        for i in 0..count {
            to.number(ctx, -i);
            to.text(ctx, format!("t{i}"));
            to.mark(ctx);
        }
    }
}

fn expected(count: i64) -> Vec<String> {
    (0..count).flat_map(|i| [(-i).to_string(), format!("t{i}"), "|".to_string()]).collect()
}

fn machine() -> Machine {
    Machine::builder().listen("127.0.0.1:0").register::<Recorder>().build().expect("a machine on loopback")
}

fn play(from: &Machine, to: &Machine, count: i64) -> Option<Vec<String>> {
    let recorder = from.spawn_on(Recorder::default(), &to.handle());
    let mixer = from.spawn(Mixer);
    let for_mixer = from.transfer_handle(&recorder, mixer.id());
    mixer.go(&mut from.client(), for_mixer, count);
    let len = 3 * count as usize;
    common::wait_until(Duration::from_secs(30), || to.inspect(&recorder, |r| r.log.len() >= len).unwrap_or(false));
    to.inspect(&recorder, |r| r.log.clone())
}

#[test]
fn inline_and_boxed_messages_keep_their_order_within_a_machine() {
    let here = machine();
    assert_eq!(play(&here, &here, 5_000), Some(expected(5_000)));
    here.shutdown();
}

#[test]
fn inline_and_boxed_messages_keep_their_order_between_machines() {
    let (a, b) = (machine(), machine());
    assert_eq!(play(&a, &b, 2_000), Some(expected(2_000)));
    a.shutdown();
    b.shutdown();
}
