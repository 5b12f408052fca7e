//! Reproducibility: ids, random streams, latency and event order come from the seed.

use dz_core::prelude::*;
use dz_core::sim::{first_divergence, SimConfig, Simulation};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Gossip {
    peers: Vec<Handle<Gossip>>,
    heard: Vec<(NodeId, u64)>,
    rolls: Vec<u64>,
}

#[node]
impl Gossip {
    #[handler]
    fn meet(&mut self, peers: Vec<Handle<Gossip>>) {
        self.peers = peers;
    }

    /// Rolls a die and tells every peer.
    #[handler]
    fn chatter(&mut self, ctx: &mut Context<Self>, rounds: u64) {
        let roll = ctx.random_range(1..7);
        self.rolls.push(roll);
        let me = ctx.id().clone();
        for peer in self.peers.clone() {
            peer.hear(ctx, me.clone(), roll);
        }
        if rounds > 1 {
            ctx.send_after(5, GossipMessage::Chatter { rounds: rounds - 1 });
        }
    }

    #[handler]
    fn hear(&mut self, from: NodeId, roll: u64) {
        self.heard.push((from, roll));
    }
}

/// Four machines, two gossips each, all talking to all: many same-instant events.
fn run(seed: u64) -> (Simulation, Vec<Handle<Gossip>>) {
    let mut sim = Simulation::with_config(seed, SimConfig { record_trace: true, ..SimConfig::default() });
    let machines: Vec<_> = (0..4).map(|_| sim.add_machine()).collect();
    let nodes: Vec<_> = machines.iter().chain(&machines).map(|m| sim.spawn(Gossip::default(), m)).collect();
    sim.run_until_idle();
    for node in &nodes {
        let peers = nodes.iter().filter(|p| p.id() != node.id()).map(|p| sim.transfer_handle(p, node.id())).collect();
        node.meet(&mut sim.driver(), peers);
    }
    for node in &nodes {
        node.chatter(&mut sim.driver(), 20);
    }
    sim.run_until_idle();
    (sim, nodes)
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let (a, _) = run(7);
    let (b, _) = run(7);
    let (c, _) = run(8);
    assert!(a.trace_len() > 1000, "a busy run: {}", a.trace_len());
    assert_eq!(a.trace_hash(), b.trace_hash());
    assert_eq!(first_divergence(&a.trace(), &b.trace()), None);
    assert_ne!(a.trace_hash(), c.trace_hash());
    let split = first_divergence(&a.trace(), &c.trace()).expect("different seeds part somewhere");
    assert!(split.left != split.right);
}

#[test]
fn ids_and_random_streams_are_reproducible_from_the_seed() {
    let (a, nodes_a) = run(21);
    let (b, nodes_b) = run(21);
    let ids = |nodes: &[Handle<Gossip>]| nodes.iter().map(|n| n.id().clone()).collect::<Vec<_>>();
    assert_eq!(ids(&nodes_a), ids(&nodes_b));
    assert!(nodes_a.iter().all(|n| n.id().as_str().starts_with("Gossip_") && n.id().as_str().len() == 19));
    assert_eq!(a.machines(), b.machines());
    for (x, y) in nodes_a.iter().zip(&nodes_b) {
        assert_eq!(a.inspect(x, |g| g.rolls.clone()), b.inspect(y, |g| g.rolls.clone()));
    }
    let (c, nodes_c) = run(22);
    assert_ne!(ids(&nodes_a), ids(&nodes_c));
    assert_ne!(a.inspect(&nodes_a[0], |g| g.rolls.clone()), c.inspect(&nodes_c[0], |g| g.rolls.clone()));
}

#[test]
fn messages_on_one_link_keep_their_order_across_machines() {
    for seed in 0..20 {
        let (sim, nodes) = run(seed);
        for node in &nodes {
            let heard = sim.inspect(node, |g| g.heard.clone()).unwrap();
            assert_eq!(heard.len(), 7 * 20, "seed {seed}: nothing lost");
            for sender in &nodes {
                let from_sender: Vec<u64> =
                    heard.iter().filter(|(f, _)| f == sender.id()).map(|&(_, roll)| roll).collect();
                let rolled = sim.inspect(sender, |g| g.rolls.clone()).unwrap();
                if sender.id() != node.id() {
                    assert_eq!(from_sender, rolled, "seed {seed}: link order kept");
                }
            }
        }
    }
}
