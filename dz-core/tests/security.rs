//! Sealed messages between simulated machines: what an attacker on the network, or a node
//! without the right handle, can try, and that none of it reaches a handler.

use dz_core::prelude::*;
use dz_core::sim::{SimConfig, Simulation, WireFrame};
use serde::{Deserialize, Serialize};

/// Keeps a total, and the chain of every message that reached it.
#[derive(Default, Serialize, Deserialize)]
pub struct Vault {
    total: u64,
    chains: Vec<Vec<NodeId>>,
}

#[node]
impl Vault {
    #[handler]
    fn deposit(&mut self, ctx: &mut Context<Self>, amount: u64) {
        self.total += amount;
        self.chains.push(ctx.chain().to_vec());
    }

    /// Issues a handle to itself for `holder`, and gives it to them.
    #[handler]
    fn issue(&mut self, ctx: &mut Context<Self>, holder: Handle<Holder>) {
        let handle = ctx.new_handle(holder.id());
        holder.take(ctx, handle);
    }
}

/// Holds a vault handle: uses it, passes it on, or forges one from it.
#[derive(Default, Serialize, Deserialize)]
pub struct Holder {
    vault: Option<Handle<Vault>>,
}

#[node]
impl Holder {
    #[handler]
    fn take(&mut self, vault: Handle<Vault>) {
        self.vault = Some(vault);
    }

    #[handler]
    fn pass_on(&mut self, ctx: &mut Context<Self>, next: Handle<Holder>) {
        if let Some(vault) = &self.vault {
            let onward = ctx.transfer_handle(vault, next.id());
            next.take(ctx, onward);
        }
    }

    #[handler]
    fn pay(&mut self, ctx: &mut Context<Self>, amount: u64) {
        if let Some(vault) = &self.vault {
            vault.deposit(ctx, amount);
        }
    }

    /// Sends through a handle made up from JSON (a forgery, in these tests).
    #[handler]
    fn pay_through(&mut self, ctx: &mut Context<Self>, forged: Handle<Vault>, amount: u64) {
        forged.deposit(ctx, amount);
    }
}

/// A vault on one machine and the test's first deposit of 5 recorded off the wire.
fn vault_and_a_frame(seed: u64) -> (Simulation, Handle<Vault>, WireFrame) {
    let mut sim = Simulation::new(seed);
    let m = sim.add_machine();
    let vault = sim.spawn(Vault::default(), &m);
    sim.tap_wire(true);
    vault.deposit(&mut sim.driver(), 5);
    sim.run_until_idle();
    let mut frames = sim.take_wire_frames();
    assert_eq!(frames.len(), 1);
    let frame = frames.remove(0);
    assert!(frame.sealed);
    assert_eq!(&frame.to, vault.id());
    assert!(!String::from_utf8_lossy(&frame.bytes).contains("Deposit"), "the message is encrypted");
    (sim, vault, frame)
}

fn total(sim: &Simulation, vault: &Handle<Vault>) -> u64 {
    sim.inspect(vault, |v| v.total).unwrap()
}

#[test]
fn a_tampered_frame_is_rejected() {
    let (mut sim, vault, frame) = vault_and_a_frame(1);
    for at in [0, 5, 12, frame.bytes.len() / 2, frame.bytes.len() - 1] {
        let mut bad = frame.clone();
        bad.bytes[at] ^= 0x20;
        assert!(sim.inject_frame(bad));
    }
    let mut cut = frame.clone();
    cut.bytes.truncate(20);
    sim.inject_frame(cut);
    sim.run_until_idle();
    assert_eq!(total(&sim, &vault), 5);
    let r = sim.rejections();
    // A changed nonce (bytes 0..12) makes a new one, so those fail on the tag too.
    assert_eq!((r.bad_tag, r.malformed, r.total()), (5, 1, 6), "{r:?}");
    assert_eq!(sim.stats().rejected, 6);
}

#[test]
fn a_frame_replayed_on_its_link_is_rejected() {
    let (mut sim, vault, frame) = vault_and_a_frame(2);
    for _ in 0..3 {
        sim.inject_frame(frame.clone());
    }
    sim.run_until_idle();
    assert_eq!(total(&sim, &vault), 5);
    assert_eq!(sim.rejections().replayed, 3);
    assert_eq!(sim.inspect(&vault, |v| v.chains.len()), Some(1));
}

#[test]
fn a_frame_re_addressed_to_another_node_is_rejected() {
    let (mut sim, vault, frame) = vault_and_a_frame(3);
    let m = sim.machines()[0].clone();
    let other = sim.spawn(Vault::default(), &m);
    sim.run_until_idle();
    let mut moved = frame.clone();
    moved.to = other.id().clone();
    sim.inject_frame(moved);
    sim.run_until_idle();
    assert_eq!(total(&sim, &other), 0);
    assert_eq!(total(&sim, &vault), 5);
    assert_eq!(sim.rejections().bad_tag, 1);
}

#[test]
fn a_handle_with_a_made_up_key_is_rejected() {
    let mut sim = Simulation::new(4);
    let m = sim.add_machine();
    let vault = sim.spawn(Vault::default(), &m);
    let mut json = serde_json::to_value(&vault).unwrap();
    let real_key = json["transport"]["key"].as_str().unwrap().to_string();
    assert_eq!(real_key.len(), 44, "32 bytes of base64");
    let made_up = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    assert_ne!(real_key, made_up);
    json["transport"]["key"] = made_up.into();
    let forged: Handle<Vault> = serde_json::from_value(json).unwrap();
    forged.deposit(&mut sim.driver(), 1_000);
    vault.deposit(&mut sim.driver(), 1);
    sim.run_until_idle();
    assert_eq!(total(&sim, &vault), 1);
    assert_eq!(sim.rejections().bad_tag, 1);
}

#[test]
fn a_chain_not_descending_from_the_handle_it_claims_is_rejected() {
    let mut sim = Simulation::new(5);
    let (a, b, c) = (sim.add_machine(), sim.add_machine(), sim.add_machine());
    let vault = sim.spawn(Vault::default(), &a);
    let sam = sim.spawn(Holder::default(), &b);
    let mallory = sim.spawn(Holder::default(), &c);
    // The vault issues a handle for Sam; the test passes its own on to Mallory.
    vault.issue(&mut sim.driver(), sim.transfer_handle(&sam, vault.id()));
    let for_mallory = sim.transfer_handle(&vault, mallory.id());
    mallory.take(&mut sim.driver(), for_mallory.clone());
    sim.run_until_idle();
    sam.pay(&mut sim.driver(), 10);
    mallory.pay(&mut sim.driver(), 20);
    sim.run_until_idle();
    assert_eq!(total(&sim, &vault), 30, "both honest handles work");

    // Mallory claims to have Sam's handle, passed on to it: chain [Sam, Mallory], signed with the
    // only key it has.
    let mut json = serde_json::to_value(&for_mallory).unwrap();
    json["transport"]["chain"] = serde_json::json!([sam.id(), mallory.id()]);
    let forged: Handle<Vault> = serde_json::from_value(json).unwrap();
    mallory.pay_through(&mut sim.driver(), forged, 1_000);
    sim.run_until_idle();
    assert_eq!(total(&sim, &vault), 30);
    assert_eq!(sim.rejections().bad_tag, 1);
    let mut chains = sim.inspect(&vault, |v| v.chains.clone()).unwrap();
    chains.sort();
    let mut expected = vec![vec![sam.id().clone()], vec![sim.driver_id().clone(), mallory.id().clone()]];
    expected.sort();
    assert_eq!(chains, expected);
}

#[test]
fn a_handle_transferred_three_times_works_and_its_receiver_sees_the_chain() {
    let mut sim = Simulation::new(6);
    let machines: Vec<_> = (0..4).map(|_| sim.add_machine()).collect();
    let vault = sim.spawn(Vault::default(), &machines[0]);
    let holders: Vec<_> = machines[1..].iter().map(|m| sim.spawn(Holder::default(), m)).collect();
    let first = sim.transfer_handle(&vault, holders[0].id());
    holders[0].take(&mut sim.driver(), first);
    sim.run_until_idle();
    holders[0].pass_on(&mut sim.driver(), holders[1].clone());
    sim.run_until_idle();
    holders[1].pass_on(&mut sim.driver(), holders[2].clone());
    sim.run_until_idle();
    holders[2].pay(&mut sim.driver(), 7);
    sim.run_until_idle();
    assert_eq!(total(&sim, &vault), 7);
    let mut expected = vec![sim.driver_id().clone()];
    expected.extend(holders.iter().map(|h| h.id().clone()));
    assert_eq!(sim.inspect(&vault, |v| v.chains.clone()), Some(vec![expected]));
    assert_eq!(sim.rejections().total(), 0);
}

#[test]
fn with_sealing_off_messages_cross_in_the_clear_and_nothing_is_checked() {
    let mut sim = Simulation::with_config(7, SimConfig { seal: false, ..SimConfig::default() });
    let m = sim.add_machine();
    let vault = sim.spawn(Vault::default(), &m);
    sim.tap_wire(true);
    vault.deposit(&mut sim.driver(), 5);
    sim.run_until_idle();
    let frame = sim.take_wire_frames().remove(0);
    assert!(!frame.sealed);
    assert_eq!(String::from_utf8_lossy(&frame.bytes), r#"{"Deposit":{"amount":5}}"#);
    sim.inject_frame(frame);
    sim.run_until_idle();
    assert_eq!(total(&sim, &vault), 10, "unsealed, a replay goes through");
    assert_eq!(sim.rejections().total(), 0);
}

#[test]
fn only_a_handle_that_opens_terminates_a_node_on_another_machine() {
    let mut sim = Simulation::new(8);
    let m = sim.add_machine();
    let vault = sim.spawn(Vault::default(), &m);
    sim.run_until_idle();
    let mut json = serde_json::to_value(&vault).unwrap();
    json["transport"]["key"] = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=".into();
    let forged: Handle<Vault> = serde_json::from_value(json).unwrap();
    sim.terminate(&forged);
    sim.run_until_idle();
    assert!(sim.inspect(&vault, |_| ()).is_some(), "still alive");
    assert_eq!((sim.rejections().bad_tag, sim.stats().rejected), (1, 1));
    sim.terminate(&vault);
    sim.run_until_idle();
    assert!(sim.inspect(&vault, |_| ()).is_none(), "terminated through its real handle");
}

/// Reads its context's chain and id in an `async` handler, before and after it sleeps, and in a
/// task: contexts that own what they hold.
#[derive(Default, Serialize, Deserialize)]
pub struct Sleeper {
    seen: Vec<(String, Vec<NodeId>)>,
}

#[node]
impl Sleeper {
    #[handler]
    async fn nap(&mut self, ctx: &mut Context<Self>) {
        self.seen.push(("before".into(), ctx.chain().to_vec()));
        ctx.sleep_ms(5).await;
        self.seen.push(("after".into(), ctx.chain().to_vec()));
        let me = ctx.id().clone();
        ctx.create_task(move |mut task| async move {
            assert_eq!(task.id(), &me);
            assert!(task.chain().is_empty(), "a task's context has no chain");
            task.send_self(SleeperMessage::Note { what: "task".into() });
        });
    }

    #[handler]
    fn note(&mut self, ctx: &mut Context<Self>, what: String) {
        self.seen.push((what, ctx.chain().to_vec()));
    }
}

#[test]
fn an_async_handler_keeps_its_messages_chain_across_a_sleep() {
    let mut sim = Simulation::new(21);
    let machine = sim.add_machine();
    let sleeper = sim.spawn(Sleeper::default(), &machine);
    let relay = NodeId::new("Relay_for_the_test");
    let passed_on = sim.transfer_handle(&sleeper, &relay);
    passed_on.nap(&mut sim.driver());
    sim.run_until_idle();
    let chain = vec![sim.driver_id().clone(), relay];
    let own = vec![sleeper.id().clone()];
    let seen = sim.inspect(&sleeper, |s| s.seen.clone()).expect("the sleeper");
    let expected = [("before", chain.clone()), ("after", chain), ("task", own)].map(|(what, c)| (what.to_string(), c));
    assert_eq!(seen, expected);
}
