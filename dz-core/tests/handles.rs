//! Handles as data: their JSON, typing, and delegation with `transfer_handle`.

use dz_core::prelude::*;
use dz_core::sim::Simulation;
use dz_core::HandleError;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Store {
    items: Vec<(String, String)>,
}

#[node]
impl Store {
    #[handler]
    fn put(&mut self, who: String, item: String) {
        self.items.push((who, item));
    }
}

#[derive(Default, Serialize, Deserialize)]
pub struct Other;

#[node]
impl Other {
    #[handler]
    fn poke(&mut self) {}
}

/// Hands the store handle it was given on to `next`, or uses it when it is the last in line.
#[derive(Serialize, Deserialize)]
pub struct Relay {
    name: String,
}

#[node]
impl Relay {
    #[handler]
    fn pass(&mut self, ctx: &mut Context<Self>, store: Handle<Store>, next: Option<Handle<Relay>>) {
        match next {
            Some(next) => {
                let onward = ctx.transfer_handle(&store, next.id());
                next.pass(ctx, onward, None);
            }
            None => store.put(ctx, self.name.clone(), format!("chain {:?}", store.raw().transport().chain())),
        }
    }
}

#[test]
fn handle_json_round_trips_with_the_documented_shape() {
    let mut sim = Simulation::new(1);
    let m = sim.add_machine();
    let store = sim.spawn(Store::default(), &m);

    let json = serde_json::to_value(&store).unwrap();
    assert_eq!(json["type"], "node");
    assert_eq!(json["id"], store.id().as_str());
    assert_eq!(json["node_type"], "Store");
    assert_eq!(json["machine"], m.id().as_str());
    assert_eq!(json["transport"]["address"], m.address());
    assert_eq!(json["transport"]["chain"][0], sim.driver_id().as_str());

    let back: Handle<Store> = serde_json::from_value(json).unwrap();
    assert_eq!(back, store);
    assert_eq!(back.id(), store.id());
}

#[test]
fn a_handle_read_as_the_wrong_node_type_is_an_error() {
    let mut sim = Simulation::new(1);
    let m = sim.add_machine();
    let store = sim.spawn(Store::default(), &m);
    let json = serde_json::to_string(&store).unwrap();

    let err = serde_json::from_str::<Handle<Other>>(&json).unwrap_err();
    assert!(err.to_string().contains("a node of type `Store`, not `Other`"), "{err}");
    assert_eq!(
        Handle::<Other>::from_raw(store.raw().clone()).unwrap_err(),
        HandleError::WrongNodeType { expected: "Other", found: "Store".into() }
    );
}

#[test]
fn machine_handles_round_trip_and_are_not_node_handles() {
    let mut sim = Simulation::new(1);
    let m = sim.add_machine();
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json, serde_json::json!({"type": "machine", "id": m.id().as_str(), "address": m.address()}));
    assert_eq!(serde_json::from_value::<MachineHandle>(json.clone()).unwrap(), m);
    assert!(serde_json::from_value::<Handle<Store>>(json).is_err());

    let store = sim.spawn(Store::default(), &m);
    let err = serde_json::from_value::<MachineHandle>(serde_json::to_value(&store).unwrap()).unwrap_err();
    assert!(err.to_string().contains("unknown field") || err.to_string().contains("expected a machine"), "{err}");
}

#[test]
fn malformed_handle_json_is_an_error_not_a_panic() {
    for bad in [
        "{}",
        "null",
        "[1,2]",
        r#"{"type":"node"}"#,
        r#"{"type":"robot","id":"a","node_type":"Store","machine":"m","transport":{"address":"x","chain":[]}}"#,
        r#"{"type":"node","id":"a","node_type":"Store","machine":"m","transport":{"address":"x","chain":[]},"extra":1}"#,
    ] {
        assert!(serde_json::from_str::<Handle<Store>>(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_transferred_handle_lets_a_third_node_send() {
    let mut sim = Simulation::new(5);
    let (a, b, c) = (sim.add_machine(), sim.add_machine(), sim.add_machine());
    let store = sim.spawn(Store::default(), &a);
    let first = sim.spawn(Relay { name: "first".into() }, &b);
    let second = sim.spawn(Relay { name: "second".into() }, &c);
    sim.run_until_idle();

    // The test gives `first` a handle to the store and one to `second`; `first` transfers the
    // store handle to `second`, which uses it.
    let store_for_first = sim.transfer_handle(&store, first.id());
    let second_for_first = sim.transfer_handle(&second, first.id());
    first.pass(&mut sim.driver(), store_for_first, Some(second_for_first));
    sim.run_until_idle();

    let items = sim.inspect(&store, |s| s.items.clone()).unwrap();
    let chain = format!("{:?}", [sim.driver_id(), first.id(), second.id()]);
    assert_eq!(items, vec![("second".to_string(), format!("chain {chain}"))]);
    assert_eq!(sim.node_stats(second.id()).unwrap().sent, 1);
    assert_eq!(sim.node_stats(store.id()).unwrap().received, 1);
}
