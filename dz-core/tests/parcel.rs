//! Parcels: which messages `#[node]` carries inline, that they come back whole, and that they
//! reach their handlers on the simulator within a machine, between machines and from timers.

use dz_core::parcel::Parcel;
use dz_core::prelude::*;
use dz_core::sim::Simulation;
use dz_core::Message;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Every {
    seen: Vec<String>,
}

#[node]
impl Every {
    #[handler]
    fn nothing(&mut self) {
        self.seen.push("nothing".into());
    }

    #[handler]
    fn number(&mut self, n: u64) {
        self.seen.push(format!("number {n}"));
    }

    #[handler]
    fn small(&mut self, n: i8) {
        self.seen.push(format!("small {n}"));
    }

    #[handler]
    fn flag(&mut self, on: bool) {
        self.seen.push(format!("flag {on}"));
    }

    #[handler]
    fn letter(&mut self, c: char) {
        self.seen.push(format!("letter {c}"));
    }

    #[handler]
    fn real(&mut self, x: f64) {
        self.seen.push(format!("real {x:?}"));
    }

    #[handler]
    fn text(&mut self, s: String) {
        self.seen.push(format!("text {s}"));
    }

    #[handler]
    fn two(&mut self, a: u32, b: u32) {
        self.seen.push(format!("two {a} {b}"));
    }

    #[handler]
    fn tick(&mut self, ctx: &mut Context<Self>, n: u32) {
        self.seen.push(format!("tick {n}"));
        if n < 3 {
            ctx.send_after(5, EveryMessage::Tick { n: n + 1 });
        }
    }
}

/// Another node with a one-`u64` handler, whose inline messages must not open as `Every`'s.
#[derive(Default, Serialize, Deserialize)]
pub struct Other;

#[node]
impl Other {
    #[handler]
    fn number(&mut self, n: u64) {
        let _ = n;
    }
}

fn messages() -> Vec<EveryMessage> {
    vec![
        EveryMessage::Nothing,
        EveryMessage::Number { n: u64::MAX },
        EveryMessage::Small { n: -128 },
        EveryMessage::Flag { on: true },
        EveryMessage::Letter { c: '🦀' },
        EveryMessage::Real { x: -0.0 },
        EveryMessage::Real { x: f64::MIN_POSITIVE },
        EveryMessage::Text { s: "hello".into() },
        EveryMessage::Two { a: 1, b: 2 },
        EveryMessage::Tick { n: 7 },
    ]
}

fn json(message: &EveryMessage) -> String {
    serde_json::to_string(message).expect("serialises")
}

#[test]
fn variants_without_fields_or_with_one_primitive_field_travel_inline() {
    let inline: Vec<bool> = messages().into_iter().map(|m| matches!(m.into_parcel(), Parcel::Inline(_))).collect();
    assert_eq!(inline, [true, true, true, true, true, true, true, false, false, true]);
}

#[test]
fn a_parcel_gives_back_the_message_it_was_made_of() {
    for message in messages() {
        let (name, hash, expected) = (message.name(), message.name_hash(), json(&message));
        let parcel = message.into_parcel();
        assert_eq!(parcel.name_and_hash(), (name, hash), "{expected}");
        assert_eq!(parcel.name(), name);
        assert_eq!(String::from_utf8(parcel.to_json().expect("serialises")).ok(), Some(expected.clone()));
        assert!(parcel.is::<EveryMessage>());
        let back = parcel.take::<EveryMessage>().expect("its own type");
        assert_eq!(json(&back), expected);
    }
}

#[test]
fn a_parcel_of_another_type_is_given_back_unopened() {
    let parcel = OtherMessage::Number { n: 9 }.into_parcel();
    assert!(matches!(parcel, Parcel::Inline(_)));
    assert!(!parcel.is::<EveryMessage>());
    let parcel = parcel.take::<EveryMessage>().expect_err("not an `Every` message");
    assert!(matches!(parcel.take::<OtherMessage>(), Ok(OtherMessage::Number { n: 9 })));

    let boxed = EveryMessage::Text { s: "x".into() }.into_parcel();
    let boxed = boxed.take::<OtherMessage>().expect_err("not an `Other` message");
    assert!(matches!(boxed.take::<EveryMessage>(), Ok(EveryMessage::Text { s }) if s == "x"));
}

fn expected_seen() -> Vec<String> {
    [
        "nothing",
        "number 18446744073709551615",
        "small -128",
        "flag true",
        "letter 🦀",
        "real -0.0",
        "real 2.2250738585072014e-308",
        "text hello",
        "two 1 2",
        "tick 7",
    ]
    .map(String::from)
    .to_vec()
}

/// Sends every message of [`messages`] to both of its targets.
#[derive(Default, Serialize, Deserialize)]
pub struct Relay;

#[node]
impl Relay {
    #[handler]
    fn go(&mut self, ctx: &mut Context<Self>, near: Handle<Every>, far: Handle<Every>) {
        for message in messages() {
            ctx.send(&near, serde_json::from_str(&json(&message)).expect("decodes"));
            ctx.send(&far, message);
        }
    }
}

#[test]
fn inline_messages_reach_their_handlers_within_and_between_machines() {
    for seal in [true, false] {
        let mut sim = Simulation::with_config(11, dz_core::sim::SimConfig { seal, ..Default::default() });
        let (a, b) = (sim.add_machine(), sim.add_machine());
        let relay = sim.spawn(Relay, &a);
        let near = sim.spawn(Every::default(), &a);
        let far = sim.spawn(Every::default(), &b);
        let for_relay = (sim.transfer_handle(&near, relay.id()), sim.transfer_handle(&far, relay.id()));
        sim.run_until_idle(); // every node has started
        relay.go(&mut sim.driver(), for_relay.0, for_relay.1);
        sim.run_until_idle();
        assert_eq!(sim.inspect(&near, |e| e.seen.clone()), Some(expected_seen()), "within a machine, seal {seal}");
        assert_eq!(sim.inspect(&far, |e| e.seen.clone()), Some(expected_seen()), "between machines, seal {seal}");
    }
}

#[test]
fn inline_timer_messages_reach_their_handler() {
    let mut sim = Simulation::new(5);
    let m = sim.add_machine();
    let every = sim.spawn(Every::default(), &m);
    sim.send(&every, EveryMessage::Tick { n: 1 });
    sim.run_until_idle();
    assert_eq!(sim.inspect(&every, |e| e.seen.clone()), Some(vec!["tick 1".into(), "tick 2".into(), "tick 3".into()]));
}
