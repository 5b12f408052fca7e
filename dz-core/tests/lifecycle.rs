//! Spawning (here and on other machines), terminating, and what happens to messages after.

use dz_core::prelude::*;
use dz_core::sim::Simulation;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Child {
    parent: Option<Handle<Parent>>,
    started_on: Option<MachineHandle>,
    got: Vec<u64>,
}

#[node]
impl Child {
    #[started]
    fn begin(&mut self, ctx: &mut Context<Self>) {
        self.started_on = Some(ctx.machine().clone());
        if let Some(parent) = &self.parent {
            let me = ctx.id().clone();
            parent.hello(ctx, me);
        }
    }

    #[handler]
    fn take(&mut self, n: u64) {
        self.got.push(n);
    }

    #[handler]
    fn quit(&mut self, ctx: &mut Context<Self>) {
        ctx.terminate_self();
    }

    #[stopping]
    fn end(&mut self, ctx: &mut Context<Self>) {
        if let Some(parent) = &self.parent {
            parent.goodbye(ctx, self.got.len() as u64);
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
pub struct Parent {
    children: Vec<Handle<Child>>,
    hellos: Vec<NodeId>,
    goodbyes: Vec<u64>,
}

#[node]
impl Parent {
    /// Spawns a child on `on` holding a handle back to this node, and sends it 1, 2, 3 at once.
    #[handler]
    fn raise(&mut self, ctx: &mut Context<Self>, on: MachineHandle) {
        let id = ctx.reserve_id::<Child>();
        let me = ctx.new_handle(&id);
        let child = ctx.spawn_with_id(id, Child { parent: Some(me), ..Child::default() }, &on);
        for n in 1..=3 {
            child.take(ctx, n);
        }
        self.children.push(child);
    }

    #[handler]
    fn hello(&mut self, from: NodeId) {
        self.hellos.push(from);
    }

    #[handler]
    fn goodbye(&mut self, got: u64) {
        self.goodbyes.push(got);
    }

    #[handler]
    fn end_child(&mut self, ctx: &mut Context<Self>, index: u64) {
        let child = self.children[index as usize].clone();
        ctx.terminate(&child);
        child.take(ctx, 99); // sent after the terminate: dropped
    }
}

#[test]
fn a_node_spawns_on_another_machine_and_its_first_messages_follow_the_state() {
    let mut sim = Simulation::new(11);
    let (home, away) = (sim.add_machine(), sim.add_machine());
    let parent = sim.spawn(Parent::default(), &home);
    parent.raise(&mut sim.driver(), away.clone());
    sim.run_until_idle();

    let children = sim.inspect(&parent, |p| p.children.clone()).unwrap();
    assert_eq!(children.len(), 1);
    let child = &children[0];
    assert_eq!(child.machine_id(), away.id());
    assert_eq!(sim.inspect(child, |c| c.started_on.clone()), Some(Some(away.clone())));
    assert_eq!(sim.inspect(child, |c| c.got.clone()), Some(vec![1, 2, 3]));
    assert_eq!(sim.inspect(&parent, |p| p.hellos.clone()), Some(vec![child.id().clone()]));
    let stats = sim.stats();
    assert_eq!(stats.spawned, 2);
    assert!(stats.bytes_sent > 0, "the child's state crossed machines as JSON");
}

#[test]
fn terminate_runs_the_stopping_hook_and_later_messages_are_counted_as_dropped() {
    let mut sim = Simulation::new(12);
    let (home, away) = (sim.add_machine(), sim.add_machine());
    let parent = sim.spawn(Parent::default(), &home);
    parent.raise(&mut sim.driver(), away);
    sim.run_until_idle();
    let child = sim.inspect(&parent, |p| p.children[0].clone()).unwrap();
    assert!(sim.is_alive(child.id()));

    parent.end_child(&mut sim.driver(), 0);
    sim.run_until_idle();

    assert!(!sim.is_alive(child.id()));
    assert_eq!(sim.inspect(&child, |c| c.got.len()), None);
    assert_eq!(sim.inspect(&parent, |p| p.goodbyes.clone()), Some(vec![3]), "stopping hook ran once");
    let parent_stats = sim.node_stats(parent.id()).unwrap();
    assert_eq!(parent_stats.dropped, 1, "the message sent after terminate is dropped");
    assert_eq!(sim.stats().dropped, 1);
    assert_eq!(sim.stats().terminated, 1);
    let child_stats = sim.node_stats(child.id()).unwrap();
    assert_eq!(child_stats.received, 3, "counters outlive the node");

    // A message from the test to the dead node is dropped and counted too.
    child.take(&mut sim.driver(), 7);
    sim.run_until_idle();
    assert_eq!(sim.stats().dropped, 2);
    assert_eq!(sim.node_stats(sim.driver_id()).unwrap().dropped, 1);
}

#[test]
fn a_node_can_terminate_itself() {
    let mut sim = Simulation::new(13);
    let m = sim.add_machine();
    let parent = sim.spawn(Parent::default(), &m);
    parent.raise(&mut sim.driver(), m.clone());
    sim.run_until_idle();
    let child = sim.inspect(&parent, |p| p.children[0].clone()).unwrap();

    child.quit(&mut sim.driver());
    child.take(&mut sim.driver(), 4);
    sim.run_until_idle();

    assert!(!sim.is_alive(child.id()));
    assert_eq!(sim.inspect(&parent, |p| p.goodbyes.clone()), Some(vec![3]));
    assert_eq!(sim.node_stats(sim.driver_id()).unwrap().dropped, 1);
}

#[test]
fn spawning_on_an_unknown_machine_is_counted_not_a_panic() {
    let mut sim = Simulation::new(14);
    let m = sim.add_machine();
    let mut other = Simulation::new(99);
    let elsewhere = other.add_machine();
    let parent = sim.spawn(Parent::default(), &m);
    parent.raise(&mut sim.driver(), elsewhere);
    sim.run_until_idle();
    assert_eq!(sim.stats().spawn_failed, 1);
    assert_eq!(sim.node_stats(parent.id()).unwrap().dropped, 3, "the three sends to the missing child");
    assert!(sim.is_alive(parent.id()));
}
