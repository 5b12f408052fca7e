//! What a node's calls through its context do to the world: sends (through the network's
//! faults, between machines), spawns, terminations, and machine crashes and restarts.

use crate::controller::{AnyMessage, ErasedNode};
use crate::handle::MachineHandle;
use crate::ids::NodeId;

use super::faults::Verdict;
use super::tables::NodeState;
use super::trace::TraceKind;
use super::world::{Ending, Event, JsonPayload, Payload, SpawnPayload, World};

impl World {
    /// Counts a send; the sender's slot, if it has one.
    pub(super) fn count_sent(&mut self, from: &NodeId) -> Option<usize> {
        let index = self.nodes.find(from)?;
        self.nodes.slots[index].stats.sent += 1;
        Some(index)
    }

    /// Counts and traces a message that will never reach a handler.
    pub(super) fn drop_message(&mut self, from: &NodeId, to: &NodeId, name: &'static str, why: &str) {
        self.stats.dropped += 1;
        if let Some(slot) = self.nodes.get_mut(from) {
            slot.stats.dropped += 1;
        }
        self.trace.record(self.now, TraceKind::Drop, from, to, name);
        tracing::debug!(%from, %to, message = name, why, "dz sim: message dropped");
    }

    pub(crate) fn send(
        &mut self,
        from_machine: usize,
        from: &NodeId,
        to: &crate::RawHandle,
        message: Box<dyn AnyMessage>,
    ) {
        let to_id = to.id().clone();
        let Some(sender) = self.count_sent(from) else {
            // Only a node that has ended (a context kept past its node) has no slot.
            self.drop_message(from, &to_id, message.name(), "the sender has ended");
            return;
        };
        // Most sends stay on their machine: check that before the map.
        let here = self.machines[from_machine].handle.id() == to.machine_id();
        let Some(machine) = (if here { Some(from_machine) } else { self.machine_of(to.machine_id()) }) else {
            self.drop_message(from, &to_id, message.name(), "unknown machine");
            return;
        };
        let payload = if machine == from_machine {
            Payload::Local(message)
        } else {
            match message.to_json() {
                Ok(bytes) => {
                    self.stats.cross_machine += 1;
                    self.stats.bytes_sent += bytes.len() as u64;
                    Payload::Json(Box::new(JsonPayload { name: message.name(), name_hash: message.name_hash(), bytes }))
                }
                Err(e) => {
                    tracing::error!(%from, to = %to_id, message = message.name(), error = %e, "dz sim: message does not serialise");
                    self.drop_message(from, &to_id, message.name(), "does not serialise");
                    return;
                }
            }
        };
        if machine != from_machine && self.faults.active() {
            return self.send_through_faults(from_machine, (sender, from), to_id, machine, payload);
        }
        let at = self.now + self.latency(from_machine, machine);
        let due = self.due_on_link(from, &to_id, at);
        self.queue.push(due, Event::Deliver { from: sender, to: to_id, machine, payload });
    }

    /// A message between machines while faults are on: it may be cut off, dropped, duplicated
    /// or held back. A held-back message or a copy is not bound by its link's order.
    pub(super) fn send_through_faults(
        &mut self,
        from_machine: usize,
        (sender, from): (usize, &NodeId),
        to: NodeId,
        machine: usize,
        payload: Payload,
    ) {
        let name = payload.name();
        let (from_m, to_m) = (self.machines[from_machine].handle.id(), self.machines[machine].handle.id());
        let (from_m, to_m) = (from_m.clone(), to_m.clone());
        match self.faults.verdict(self.now, &from_m, &to_m, name) {
            Verdict::Partitioned => {
                self.trace.record(self.now, TraceKind::Partitioned, from, &to, name);
                self.drop_message(from, &to, name, "partitioned");
            }
            Verdict::Dropped => {
                self.trace.record(self.now, TraceKind::FaultDrop, from, &to, name);
                self.drop_message(from, &to, name, "dropped by a fault rule");
            }
            Verdict::Deliver { duplicate, hold_micros } => {
                if duplicate {
                    self.trace.record(self.now, TraceKind::FaultDuplicate, from, &to, name);
                    let copy = match &payload {
                        Payload::Json(json) => Payload::Json(json.clone()),
                        Payload::Local(_) => unreachable!("messages between machines travel as JSON"),
                    };
                    let at = self.now + self.latency(from_machine, machine);
                    let due = self.due_at(at);
                    self.queue.push(due, Event::Deliver { from: sender, to: to.clone(), machine, payload: copy });
                }
                let at = self.now + self.latency(from_machine, machine);
                let due = match hold_micros {
                    Some(hold) => {
                        self.trace.record(self.now, TraceKind::FaultReorder, from, &to, name);
                        self.due_at(at + hold)
                    }
                    None => self.due_on_link(from, &to, at),
                };
                self.queue.push(due, Event::Deliver { from: sender, to, machine, payload });
            }
        }
    }

    /// Crashes machine `index`: every node on it ends at once (no stopping hook), with its
    /// timers and tasks; messages to it are dropped until it restarts, empty.
    pub(crate) fn crash(&mut self, index: usize) {
        if self.machines[index].down {
            return;
        }
        self.machines[index].down = true;
        self.faults.stats.crashes += 1;
        let machine_id = NodeId::from(self.machines[index].handle.id().as_str());
        self.trace.record(self.now, TraceKind::Crash, &machine_id, &machine_id, "crash");
        let doomed: Vec<NodeId> = self
            .nodes
            .slots
            .iter()
            .filter(|slot| slot.machine == index && !matches!(slot.state, NodeState::Dead))
            .map(|slot| slot.id.clone())
            .collect();
        for id in doomed {
            self.bury(&id, Ending::Crashed);
        }
    }

    /// Crashes machine `index` at `at` micros, and restarts it at `restart_at` if given.
    pub(crate) fn schedule_crash(&mut self, index: usize, at: u64, restart_at: Option<u64>) {
        let due = self.due_at(at.max(self.now));
        self.queue.push(due, Event::Crash { machine: index });
        if let Some(restart_at) = restart_at {
            let due = self.due_at(restart_at.max(at).max(self.now));
            self.queue.push(due, Event::Restart { machine: index });
        }
    }

    /// Whether `ctx.buggify()` says yes this time.
    pub(crate) fn buggify(&mut self) -> bool {
        self.config.buggify_rate > 0.0 && self.buggify_rng.chance(self.config.buggify_rate)
    }

    /// Brings a crashed machine back, with no nodes on it.
    pub(crate) fn restart(&mut self, index: usize) {
        if !self.machines[index].down {
            return;
        }
        self.machines[index].down = false;
        self.faults.stats.restarts += 1;
        let machine_id = NodeId::from(self.machines[index].handle.id().as_str());
        self.trace.record(self.now, TraceKind::Restart, &machine_id, &machine_id, "restart");
    }

    pub(crate) fn spawn(
        &mut self,
        from_machine: usize,
        from: NodeId,
        id: NodeId,
        on: &MachineHandle,
        node: Box<dyn ErasedNode>,
    ) {
        let Some(machine) = self.machine_of(on.id()).filter(|&m| !self.machines[m].down) else {
            self.stats.spawn_failed += 1;
            tracing::error!(%from, %id, machine = %on.id(), "dz sim: spawn on an unknown or crashed machine");
            self.trash.push(Box::new(node));
            return;
        };
        let node = if machine == from_machine {
            SpawnPayload::Local(node)
        } else {
            match node.to_json() {
                Ok(bytes) => {
                    self.stats.bytes_sent += bytes.len() as u64;
                    SpawnPayload::Json(Box::new((node.type_name(), node.factory(), bytes)))
                }
                Err(e) => {
                    self.stats.spawn_failed += 1;
                    tracing::error!(%from, %id, error = %e, "dz sim: a node's state does not serialise");
                    self.trash.push(Box::new(node));
                    return;
                }
            }
        };
        let at = self.now + self.latency(from_machine, machine);
        let due = self.due_on_link(&from, &id, at);
        self.queue.push(due, Event::Spawn { from, id, machine, node });
    }

    pub(crate) fn terminate(&mut self, from_machine: usize, from: NodeId, target: NodeId) {
        let Some(slot) = self.nodes.get_mut(&target) else { return };
        if from == target && matches!(slot.state, NodeState::Busy | NodeState::Suspended(_)) {
            // A node ending itself from its handler: it stops when that handler returns.
            slot.stop_requested = true;
            return;
        }
        let machine = slot.machine;
        let at = self.now + self.latency(from_machine, machine);
        let due = self.due_on_link(&from, &target, at);
        self.queue.push(due, Event::Terminate { from, target });
    }
}
