//! Sealing between machines: forged, tampered, replayed and re-addressed messages are rejected,
//! counted by reason and never reach a handler; delegated handles work across machines and the
//! handler sees their whole chain; batches of messages are taken or refused whole; with
//! sealing off, machines still talk (in plain JSON).
//!
//! Bad frames are written by the test itself over a raw TCP connection (after a hello), sealed
//! with `dz_core::security` under keys read from real handles' JSON.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{connect_as_peer, framed};
use dz_core::prelude::*;
use dz_core::security::{seal, LinkKey, LinkNonce};
use dz_runtime_smol::{Machine, MachineStats};
use serde::{Deserialize, Serialize};

/// Keeps what it is given, with the chain each item came through.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Vault {
    items: Vec<String>,
    chains: Vec<Vec<String>>,
    /// The last handle to itself it issued on request.
    issued: Option<Handle<Vault>>,
}

#[node]
impl Vault {
    /// Keeps `item`, and the chain of the handle it came through.
    #[handler]
    fn put(&mut self, ctx: &mut Context<Self>, item: String) {
        self.items.push(item);
        self.chains.push(ctx.chain().iter().map(ToString::to_string).collect());
    }

    /// Issues a handle to itself for `for_node`, and keeps it (for the test to read).
    #[handler]
    fn issue(&mut self, ctx: &mut Context<Self>, for_node: NodeId) {
        self.issued = Some(ctx.new_handle(&for_node));
    }
}

/// Passes a vault's handle along a list of relays; the last one puts an item in the vault.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Relay {}

#[node]
impl Relay {
    /// Passes `vault` on to the first of `hops` (or, if none is left, puts `item` in it).
    #[handler]
    fn pass(&mut self, ctx: &mut Context<Self>, vault: Handle<Vault>, mut hops: Vec<Handle<Relay>>, item: String) {
        if hops.is_empty() {
            vault.put(ctx, item);
            return;
        }
        let next = hops.remove(0);
        let for_next = ctx.transfer_handle(&vault, next.id());
        next.pass(ctx, for_next, hops, item);
    }
}

/// Puts numbered items in a vault, all from one handler.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Filler {}

#[node]
impl Filler {
    /// Puts `0`, `1`, ... `n - 1` in `vault`.
    #[handler]
    fn fill(&mut self, ctx: &mut Context<Self>, vault: Handle<Vault>, n: u64) {
        for i in 0..n {
            vault.put(ctx, i.to_string());
        }
    }

    /// Puts an item of each of the lengths `lengths` in `vault`: its number, then `x`s.
    #[handler]
    fn fill_long(&mut self, ctx: &mut Context<Self>, vault: Handle<Vault>, lengths: Vec<usize>) {
        for (i, len) in lengths.into_iter().enumerate() {
            vault.put(ctx, long_item(i, len));
        }
    }

    /// Puts `before` through `good`, `forged` through `bad`, `after` through `good`, in a row.
    #[handler]
    fn mixed(&mut self, ctx: &mut Context<Self>, good: Handle<Vault>, bad: Handle<Vault>) {
        good.put(ctx, "before".to_string());
        bad.put(ctx, "forged".to_string());
        good.put(ctx, "after".to_string());
    }

    /// Puts `0`, `1`, ... `n - 1` in `a` and in `b`, in turns.
    #[handler]
    fn alternate(&mut self, ctx: &mut Context<Self>, a: Handle<Vault>, b: Handle<Vault>, n: u64) {
        for i in 0..n {
            a.put(ctx, i.to_string());
            b.put(ctx, i.to_string());
        }
    }
}

/// Item `i` of [`Filler::fill_long`], `len` bytes long.
fn long_item(i: usize, len: usize) -> String {
    let mut item = format!("{i}:");
    item.push_str(&"x".repeat(len.saturating_sub(item.len())));
    item
}

const LIMIT: Duration = Duration::from_secs(10);

fn server() -> Machine {
    Machine::builder().register::<Vault>().register::<Relay>().build().expect("a machine on loopback")
}

/// A handle's JSON, as a `serde_json::Value` to edit.
fn json_of(handle: &Handle<Vault>) -> serde_json::Value {
    serde_json::to_value(handle).expect("a handle serialises")
}

/// The link key and chain a handle carries, read from its JSON.
fn key_and_chain(handle: &Handle<Vault>) -> (LinkKey, Vec<NodeId>) {
    let json = json_of(handle);
    let key = serde_json::from_value(json["transport"]["key"].clone()).expect("a key");
    let chain = serde_json::from_value(json["transport"]["chain"].clone()).expect("a chain");
    (key, chain)
}

/// A `batch` frame for `to` with `chain`, whose sealed bytes are `sealed`.
fn sealed_frame(to: &NodeId, chain: &[NodeId], sealed: &[u8]) -> Vec<u8> {
    let chain: Vec<&str> = chain.iter().map(NodeId::as_str).collect();
    common::batch_frame("Raw_sender", to.as_str(), &chain, sealed)
}

/// The JSON of the message `Put { item }`.
fn put(item: &str) -> Vec<u8> {
    serde_json::json!({ "Put": { "item": item } }).to_string().into_bytes()
}

/// `plaintext` sealed for `to` under `key` with `chain` and nonce `counter`.
fn sealed_with(key: &LinkKey, counter: u64, to: &NodeId, chain: &[NodeId], plaintext: &[u8]) -> Vec<u8> {
    seal(key, LinkNonce { instance: 0x7e57, counter }, to, chain, plaintext)
}

/// A batch of one message, `Put { item }`, sealed for `to` under `key` with `chain` and nonce
/// `counter`.
fn sealed_put(key: &LinkKey, counter: u64, to: &NodeId, chain: &[NodeId], item: &str) -> Vec<u8> {
    sealed_with(key, counter, to, chain, &common::batch_plaintext(1, &[&put(item)]))
}

fn wait_for(machine: &Machine, what: impl Fn(&MachineStats) -> bool) -> MachineStats {
    common::wait_until(LIMIT, || what(&machine.stats()));
    machine.stats()
}

fn items(machine: &Machine, vault: &Handle<Vault>) -> Vec<String> {
    machine.inspect(vault, |v| v.items.clone()).expect("the vault is idle")
}

/// Waits until the vault holds `n` items (or the limit passes); returns them.
fn wait_for_items(machine: &Machine, vault: &Handle<Vault>, n: usize) -> Vec<String> {
    common::wait_until(LIMIT, || machine.inspect(vault, |v| v.items.len() == n).unwrap_or(false));
    items(machine, vault)
}

#[test]
fn a_tampered_a_replayed_and_a_re_addressed_frame_are_rejected() {
    let server = server();
    let vault = server.spawn(Vault::default());
    let other = server.spawn(Vault::default());
    let (key, chain) = key_and_chain(&vault);
    let mut stream = connect_as_peer(&server, "raw:sec1");

    // A frame sealed right is delivered: the raw peer holds the key, which is what counts.
    let good = sealed_frame(vault.id(), &chain, &sealed_put(&key, 1, vault.id(), &chain, "good"));
    stream.write_all(&good).expect("write");
    assert_eq!(wait_for_items(&server, &vault, 1), ["good"]);

    // The same frame again: a replay on the same link.
    stream.write_all(&good).expect("write");
    let stats = wait_for(&server, |s| s.rejected_replayed == 1);
    assert_eq!(stats.rejected_replayed, 1, "{stats:?}");

    // A byte of the ciphertext changed.
    let mut tampered = sealed_put(&key, 2, vault.id(), &chain, "tampered");
    tampered[20] ^= 0x01;
    stream.write_all(&sealed_frame(vault.id(), &chain, &tampered)).expect("write");
    // A frame sealed for `vault`, re-addressed to `other`.
    let for_vault = sealed_put(&key, 3, vault.id(), &chain, "re-addressed");
    stream.write_all(&sealed_frame(other.id(), &chain, &for_vault)).expect("write");
    let stats = wait_for(&server, |s| s.rejected_bad_tag == 2);
    assert_eq!((stats.rejected_bad_tag, stats.rejected_replayed), (2, 1), "{stats:?}");

    // A frame for a node that is not here, one with an empty chain, one whose sealed bytes are
    // too short to hold a nonce and a tag, and a plain message (sealing is on).
    let ghost = NodeId::from("Vault_notherenothere");
    stream.write_all(&sealed_frame(&ghost, &chain, &sealed_put(&key, 4, &ghost, &chain, "x"))).expect("write");
    stream.write_all(&sealed_frame(vault.id(), &[], &sealed_put(&key, 5, vault.id(), &[], "x"))).expect("write");
    stream.write_all(&sealed_frame(vault.id(), &chain, &[0x7e; 20])).expect("write");
    let plain = format!(r#"{{"msg":{{"from":"Raw_1","to":"{}","message":{{"Put":{{"item":"plain"}}}}}}}}"#, vault.id());
    stream.write_all(&framed(plain.as_bytes())).expect("write");
    // The frame for a node that is not here is dropped as such, not counted as an attack.
    let stats = wait_for(&server, |s| s.rejected() == 6 && s.dropped_no_node == 1);
    assert_eq!((stats.rejected_bad_chain, stats.rejected_malformed, stats.rejected()), (1, 2, 6), "{stats:?}");

    // A frame sealed right still goes through on the same connection, after all that.
    let after = sealed_frame(vault.id(), &chain, &sealed_put(&key, 6, vault.id(), &chain, "after"));
    stream.write_all(&after).expect("write");
    assert_eq!(wait_for_items(&server, &vault, 2), ["good", "after"]);
    assert_eq!(items(&server, &other), Vec::<String>::new());
    let stats = server.stats();
    assert_eq!((stats.delivered, stats.bad_frames, stats.dropped_no_node), (2, 0, 1), "{stats:?}");
}

#[test]
fn a_batch_is_delivered_in_order_or_rejected_whole() {
    let server = server();
    let vault = server.spawn(Vault::default());
    let (key, chain) = key_and_chain(&vault);
    let mut stream = connect_as_peer(&server, "raw:sec3");
    let to = vault.id();
    let (one, two, three) = (put("one"), put("two"), put("three"));
    let three_items = common::batch_plaintext(3, &[&one, &two, &three]);

    // A batch of three: delivered whole, in order.
    let good = sealed_frame(to, &chain, &sealed_with(&key, 1, to, &chain, &three_items));
    stream.write_all(&good).expect("write");
    assert_eq!(wait_for_items(&server, &vault, 3), ["one", "two", "three"]);

    // Replayed whole: rejected once, nothing delivered again.
    stream.write_all(&good).expect("write");
    let stats = wait_for(&server, |s| s.rejected_replayed == 1);
    assert_eq!((stats.rejected_replayed, stats.rejected()), (1, 1), "{stats:?}");

    // A byte changed in the middle of the batch (in its second message): none of it arrives.
    let mut tampered = sealed_with(&key, 2, to, &chain, &three_items);
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x20;
    stream.write_all(&sealed_frame(to, &chain, &tampered)).expect("write");
    // Truncated: the frame ends before the batch's last message and tag do.
    let whole = sealed_with(&key, 3, to, &chain, &three_items);
    stream.write_all(&sealed_frame(to, &chain, &whole[..whole.len() - 20])).expect("write");
    let stats = wait_for(&server, |s| s.rejected_bad_tag == 2);
    assert_eq!((stats.rejected_bad_tag, stats.rejected()), (2, 3), "{stats:?}");

    // Sealed right by a holder of the key, but malformed inside: a count over the limit (the
    // plaintext long enough for that many empty messages), a count that says more than the
    // batch holds, one that says fewer, and an empty batch. Each is refused whole.
    let too_many = vec![&b""[..]; 65_537];
    let lies: [Vec<u8>; 4] = [
        common::batch_plaintext(65_537, &too_many),
        common::batch_plaintext(4, &[&one, &two, &three]),
        common::batch_plaintext(2, &[&one, &two, &three]),
        common::batch_plaintext(0, &[]),
    ];
    for (counter, plain) in (4..).zip(&lies) {
        stream.write_all(&sealed_frame(to, &chain, &sealed_with(&key, counter, to, &chain, plain))).expect("write");
    }
    let stats = wait_for(&server, |s| s.rejected_malformed == 4);
    assert_eq!((stats.rejected_malformed, stats.rejected()), (4, 7), "{stats:?}");

    // A batch header cut inside its ids is not a frame: that connection closes.
    let cut = framed(&good[4..4 + 9]);
    stream.write_all(&cut).expect("write");
    let stats = wait_for(&server, |s| s.bad_frames == 1);
    assert_eq!((stats.bad_frames, stats.connections_closed), (1, 1), "{stats:?}");

    // A new connection, and a batch sealed right: it goes through.
    let mut stream = connect_as_peer(&server, "raw:sec3");
    let four = common::batch_plaintext(1, &[&put("four")]);
    stream.write_all(&sealed_frame(to, &chain, &sealed_with(&key, 8, to, &chain, &four))).expect("write");
    assert_eq!(wait_for_items(&server, &vault, 4), ["one", "two", "three", "four"]);
    let stats = server.stats();
    assert_eq!((stats.delivered, stats.rejected(), stats.dropped_no_node), (4, 7, 0), "{stats:?}");
}

#[test]
fn many_messages_from_a_handler_arrive_in_order_in_few_frames() {
    let (client, server) = (common::client(), server());
    let vault = client.spawn_on(Vault::default(), &server.handle());
    vault.put(&mut client.client(), "first".to_string());
    assert_eq!(wait_for_items(&server, &vault, 1), ["first"]);
    let frames_before = server.stats().frames_in;
    // A handler's sends to one node through one handle leave together, sealed in batches.
    let filler = client.spawn(Filler::default());
    let for_filler = client.transfer_handle(&vault, filler.id());
    filler.fill(&mut client.client(), for_filler, 20_000);
    let items = wait_for_items(&server, &vault, 20_001);
    let expected: Vec<String> =
        std::iter::once("first".to_string()).chain((0..20_000).map(|n| n.to_string())).collect();
    assert_eq!(items, expected);
    let stats = server.stats();
    assert_eq!((stats.rejected(), stats.delivered), (0, 20_001), "{stats:?}");
    // At most 4,096 messages a batch: at least five frames, and far fewer than 20,000 (the
    // queue is written, its batch closed, whenever 256 KiB are queued: about every 8,000).
    let frames = stats.frames_in - frames_before;
    assert!((5..=100).contains(&frames), "20,000 messages in {frames} frames: {stats:?}");
    let chains = server.inspect(&vault, |v| v.chains[1..].to_vec()).expect("the vault is idle");
    assert!(chains.iter().all(|chain| chain == &[client.client_id().to_string(), filler.id().to_string()]));
}

#[test]
fn long_messages_fill_batches_up_to_their_size_and_a_longer_one_travels_alone() {
    let (client, server) = (common::client(), server());
    let vault = client.spawn_on(Vault::default(), &server.handle());
    assert!(common::wait_until(LIMIT, || server.is_alive(vault.id())));
    let frames_before = server.stats().frames_in;
    let filler = client.spawn(Filler::default());
    let for_filler = client.transfer_handle(&vault, filler.id());
    // Twenty messages of 10 kB (six fit in a batch of 64 KiB), then one of 100 kB, then one more.
    let mut lengths = vec![10_000; 20];
    lengths.extend([100_000, 10]);
    filler.fill_long(&mut client.client(), for_filler, lengths.clone());
    let items = wait_for_items(&server, &vault, lengths.len());
    let expected: Vec<String> = lengths.iter().enumerate().map(|(i, &len)| long_item(i, len)).collect();
    assert!(items == expected, "the items differ");
    let frames = server.stats().frames_in - frames_before;
    assert!((5..=22).contains(&frames), "{frames} frames");
    assert_eq!(server.stats().rejected(), 0);
}

#[test]
fn batches_stay_within_the_frame_limit_of_machines_that_lowered_it() {
    let small = || Machine::builder().register::<Vault>().max_frame_bytes(2_048).build().expect("a machine");
    let (client, server) = (small(), small());
    let vault = client.spawn_on(Vault::default(), &server.handle());
    let filler = client.spawn(Filler::default());
    let for_filler = client.transfer_handle(&vault, filler.id());
    // About 30 kB of messages from one handler: many batches, none over 2 kB.
    filler.fill(&mut client.client(), for_filler, 1_000);
    assert_eq!(wait_for_items(&server, &vault, 1_000).len(), 1_000);
    let stats = server.stats();
    assert_eq!((stats.oversized_frames, stats.connections_closed, stats.rejected()), (0, 0, 0), "{stats:?}");
    assert!(stats.frames_in >= 15, "{stats:?}");
}

#[test]
fn messages_to_two_nodes_in_turns_each_arrive_in_order() {
    let (client, server) = (common::client(), server());
    let a = client.spawn_on(Vault::default(), &server.handle());
    let b = client.spawn_on(Vault::default(), &server.handle());
    assert!(common::wait_until(LIMIT, || server.is_alive(a.id()) && server.is_alive(b.id())));
    let frames_before = server.stats().frames_in;
    let filler = client.spawn(Filler::default());
    let (for_a, for_b) = (client.transfer_handle(&a, filler.id()), client.transfer_handle(&b, filler.id()));
    filler.alternate(&mut client.client(), for_a, for_b, 300);
    let expected: Vec<String> = (0..300).map(|n| n.to_string()).collect();
    assert_eq!(wait_for_items(&server, &a, 300), expected);
    assert_eq!(wait_for_items(&server, &b, 300), expected);
    // A batch holds messages to one receiver only: each turn closes the other's batch.
    assert_eq!(server.stats().frames_in - frames_before, 600);
}

#[test]
fn a_handle_with_a_made_up_key_is_rejected() {
    let (client, server) = (common::client(), server());
    let vault = client.spawn_on(Vault::default(), &server.handle());
    vault.put(&mut client.client(), "honest".to_string());
    assert_eq!(wait_for_items(&server, &vault, 1), ["honest"]);

    let mut json = json_of(&vault);
    json["transport"]["key"] = serde_json::Value::from(dz_core::base64::encode(&[7; 32]));
    let made_up: Handle<Vault> = serde_json::from_value(json).expect("a well-formed handle");
    made_up.put(&mut client.client(), "made up".to_string());
    let stats = wait_for(&server, |s| s.rejected_bad_tag == 1);
    assert_eq!((stats.rejected_bad_tag, stats.rejected()), (1, 1), "{stats:?}");

    // The honest handle still works, and the vault never saw the other message.
    vault.put(&mut client.client(), "honest again".to_string());
    assert_eq!(wait_for_items(&server, &vault, 2), ["honest", "honest again"]);
}

#[test]
fn a_message_through_a_made_up_key_never_rides_in_a_batch_sealed_under_the_real_one() {
    let (client, server) = (common::client(), server());
    let vault = client.spawn_on(Vault::default(), &server.handle());
    let filler = client.spawn(Filler::default());
    let good = client.transfer_handle(&vault, filler.id());
    // The same receiver and chain, another key.
    let mut json = json_of(&good);
    json["transport"]["key"] = serde_json::Value::from(dz_core::base64::encode(&[7; 32]));
    let bad: Handle<Vault> = serde_json::from_value(json).expect("a well-formed handle");
    assert_eq!(key_and_chain(&bad).1, key_and_chain(&good).1);
    filler.mixed(&mut client.client(), good, bad);
    assert_eq!(wait_for_items(&server, &vault, 2), ["before", "after"]);
    let stats = wait_for(&server, |s| s.rejected_bad_tag == 1);
    assert_eq!((stats.rejected_bad_tag, stats.rejected(), stats.delivered), (1, 1, 2), "{stats:?}");
}

#[test]
fn each_message_of_a_batch_that_cannot_be_sent_is_counted() {
    let client = common::client();
    // A machine that accepts connections (the kernel does) but never answers a hello: a dial
    // to it fails after the connect timeout, with everything queued for it meanwhile.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let vault = client.spawn(Vault::default());
    let mut json = json_of(&vault);
    json["machine"] = serde_json::Value::from("Machine_silent000001");
    json["transport"]["address"] = serde_json::Value::from(silent.local_addr().expect("an address").to_string());
    let far: Handle<Vault> = serde_json::from_value(json).expect("a well-formed handle");
    let filler = client.spawn(Filler::default());
    let for_filler = client.transfer_handle(&far, filler.id());
    filler.fill(&mut client.client(), for_filler, 10);
    // The ten messages wait in one batch while the dial hangs; when it fails, each is counted.
    let stats = wait_for(&client, |s| s.send_failed == 10);
    assert_eq!((stats.send_failed, stats.sent_remote, stats.connect_failed), (10, 10, 1), "{stats:?}");
}

#[test]
fn a_chain_not_descending_from_a_handle_held_is_rejected() {
    let (client, server) = (common::client(), server());
    // The client (S) holds a handle to the vault; Mallory gets one of her own from the vault.
    let vault = client.spawn_on(Vault::default(), &server.handle());
    let mallory = NodeId::from("Mallory_000000000001");
    vault.issue(&mut client.client(), mallory.clone());
    common::wait_until(LIMIT, || server.inspect(&vault, |v| v.issued.is_some()).unwrap_or(false));
    let for_mallory = server.inspect(&vault, |v| v.issued.clone()).flatten().expect("a handle issued for Mallory");
    assert_eq!(key_and_chain(&for_mallory).1, std::slice::from_ref(&mallory));

    // Mallory claims her handle came to her from S: the chain [S, Mallory], under her key.
    let mut json = json_of(&for_mallory);
    json["transport"]["chain"] = serde_json::json!([client.client_id().as_str(), mallory.as_str()]);
    let forged: Handle<Vault> = serde_json::from_value(json).expect("a well-formed handle");
    forged.put(&mut client.client(), "forged".to_string());
    let stats = wait_for(&server, |s| s.rejected_bad_tag == 1);
    assert_eq!((stats.rejected_bad_tag, stats.rejected()), (1, 1), "{stats:?}");

    // Her own handle, as issued, works (it says it is hers).
    for_mallory.put(&mut client.client(), "mallory's own".to_string());
    assert_eq!(wait_for_items(&server, &vault, 1), ["mallory's own"]);
    let chains = server.inspect(&vault, |v| v.chains.clone()).expect("the vault is idle");
    assert_eq!(chains, [vec![mallory.to_string()]]);
}

#[test]
fn only_a_holder_of_a_handle_can_terminate_a_node_from_afar() {
    let (client, server) = (common::client(), server());
    let vault = client.spawn_on(Vault::default(), &server.handle());
    vault.put(&mut client.client(), "kept".to_string());
    assert_eq!(wait_for_items(&server, &vault, 1), ["kept"]);

    // A raw peer that knows the vault's id, but holds no handle to it: a plain termination.
    let mut stream = connect_as_peer(&server, "raw:sec2");
    let plain = format!(r#"{{"terminate":{{"from":"Raw_1","target":"{}"}}}}"#, vault.id());
    stream.write_all(&framed(plain.as_bytes())).expect("write");
    // A handle with a made-up key.
    let mut json = json_of(&vault);
    json["transport"]["key"] = serde_json::Value::from(dz_core::base64::encode(&[9; 32]));
    let made_up: Handle<Vault> = serde_json::from_value(json).expect("a well-formed handle");
    client.terminate(&made_up);
    let stats = wait_for(&server, |s| s.rejected() == 2);
    assert_eq!((stats.rejected_malformed, stats.rejected_bad_tag, stats.terminated), (1, 1, 0), "{stats:?}");
    assert!(server.is_alive(vault.id()));

    // The holder of the handle can.
    client.terminate(&vault);
    assert!(common::wait_until(LIMIT, || !server.is_alive(vault.id())));
    assert_eq!(server.stats().terminated, 1);
}

#[test]
fn a_handle_transferred_three_times_across_machines_still_works_and_shows_its_chain() {
    let (a, b) = (server(), server());
    // The vault on b (spawned from a: its secret travelled with the spawn); relays on a, b, a.
    let vault = a.spawn_on(Vault::default(), &b.handle());
    let r1 = a.spawn(Relay::default());
    let r2 = a.spawn_on(Relay::default(), &b.handle());
    let r3 = a.spawn(Relay::default());
    let for_r1 = a.transfer_handle(&vault, r1.id());
    r1.pass(&mut a.client(), for_r1, vec![r2.clone(), r3.clone()], "relayed".to_string());
    assert_eq!(wait_for_items(&b, &vault, 1), ["relayed"]);

    // A local send on b, with a handle issued for b's client: its chain reaches the handler too.
    vault.issue(&mut a.client(), b.client_id().clone());
    common::wait_until(LIMIT, || b.inspect(&vault, |v| v.issued.is_some()).unwrap_or(false));
    let for_b = b.inspect(&vault, |v| v.issued.clone()).flatten().expect("a handle issued for b's client");
    for_b.put(&mut b.client(), "local".to_string());
    assert_eq!(wait_for_items(&b, &vault, 2), ["relayed", "local"]);

    let chains = b.inspect(&vault, |v| v.chains.clone()).expect("the vault is idle");
    let whole: Vec<String> = [a.client_id(), r1.id(), r2.id(), r3.id()].iter().map(ToString::to_string).collect();
    assert_eq!(chains, [whole, vec![b.client_id().to_string()]]);
    assert_eq!((a.stats().rejected(), b.stats().rejected()), (0, 0));
}

#[test]
fn with_sealing_off_machines_still_talk() {
    let plain =
        || Machine::builder().register::<Vault>().register::<Relay>().sealing(false).build().expect("a machine");
    let (a, b) = (plain(), plain());
    let vault = a.spawn_on(Vault::default(), &b.handle());
    for n in 0..50 {
        vault.put(&mut a.client(), format!("item {n}"));
    }
    assert_eq!(wait_for_items(&b, &vault, 50).len(), 50);
    // A plain frame: no chain travels, and nothing is checked.
    let chains = b.inspect(&vault, |v| v.chains.clone()).expect("the vault is idle");
    assert!(chains.iter().all(Vec::is_empty));
    let client = Machine::builder().sealing(false).build().expect("a machine");
    let server =
        Machine::builder().register::<dz_examples::ping_pong::Ponger>().sealing(false).build().expect("a machine");
    assert_eq!(common::ping_pong(&client, &server, 200, Duration::from_secs(30)), (200, 200));
    assert_eq!((a.stats().rejected(), b.stats().rejected(), server.stats().rejected()), (0, 0, 0));
}

#[test]
fn machines_that_disagree_on_sealing_deliver_nothing_and_count_it() {
    let sealed = server();
    let plain = Machine::builder().sealing(false).build().expect("a machine");
    // The spawn goes through (spawns are not sealed); the plain message is rejected.
    let vault = plain.spawn_on(Vault::default(), &sealed.handle());
    vault.put(&mut plain.client(), "plain".to_string());
    let stats = wait_for(&sealed, |s| s.rejected_malformed == 1);
    assert_eq!((stats.rejected_malformed, stats.spawned, stats.delivered), (1, 1, 0), "{stats:?}");
    assert_eq!(wait_for_items(&sealed, &vault, 0), Vec::<String>::new());
}

/// A machine derives the key of a handle to a node it spawned for itself only when the handle is
/// serialised; the key then opens there, for the handle as issued and for each transfer of it.
/// Its transport, put into a handle to another node, carries no key to that node.
#[test]
fn keys_derived_on_demand_open_at_their_machine_and_a_borrowed_transport_opens_nothing() {
    let server = server();
    let vault = server.spawn(Vault::default());
    let other = server.spawn(Vault::default());
    assert_eq!(vault.raw().transport().key(), None, "no key derived at spawn");
    let to_bob = server.transfer_handle(&vault, &NodeId::from("Bob_000000000001"));
    let to_carol = server.transfer_handle(&to_bob, &NodeId::from("Carol_00000000001"));
    let mut stream = connect_as_peer(&server, "raw:sec-lazy");
    for (n, handle) in [&vault, &to_bob, &to_carol].into_iter().enumerate() {
        let (key, chain) = key_and_chain(handle);
        assert_eq!(chain.len(), n + 1);
        let item = format!("through {} links", n + 1);
        let frame = sealed_frame(vault.id(), &chain, &sealed_put(&key, 1, vault.id(), &chain, &item));
        stream.write_all(&frame).expect("write");
        assert_eq!(wait_for_items(&server, &vault, n + 1).last(), Some(&item));
    }

    // The vault's transport in a handle to `other`: no key, and one of zeros seals nothing that
    // opens there.
    let borrowed = dz_core::RawHandle::new(
        other.id().clone(),
        "Vault",
        other.machine_id().clone(),
        vault.raw().transport().clone(),
    );
    assert!(!borrowed.has_key());
    assert!(serde_json::to_string(&borrowed).is_err());
    let chain = borrowed.transport().chain().to_vec();
    let forged = sealed_put(&borrowed.key(), 1, other.id(), &chain, "forged");
    stream.write_all(&sealed_frame(other.id(), &chain, &forged)).expect("write");
    let stats = wait_for(&server, |s| s.rejected_bad_tag == 1);
    assert_eq!(stats.rejected_bad_tag, 1, "{stats:?}");
    assert_eq!(items(&server, &other), Vec::<String>::new());
}
