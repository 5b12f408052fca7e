//! What a node's calls through its context do to the world: sends (through the network's
//! faults, between machines), spawns, terminations, and machine crashes and restarts.

use crate::controller::ErasedNode;
use crate::handle::MachineHandle;
use crate::ids::NodeId;
use crate::parcel::{InlineMessage, Parcel};

use super::faults::Verdict;
use super::tables::NodeState;
use super::trace::TraceKind;
use super::world::{
    Ending, Event, JsonPayload, JsonSpawn, LocalChain, LocalSend, Payload, SpawnEvent, SpawnPayload, Target,
    TerminateEvent, World,
};
use super::WireFrame;
use crate::security::{LinkKey, MachineSecret, NodeSecret};

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

    #[inline(always)]
    pub(crate) fn send(&mut self, from_machine: usize, from: &NodeId, to: &crate::RawHandle, message: Parcel) {
        let Some(sender) = self.count_sent(from) else {
            // Only a node that has ended (a context kept past its node) has no slot.
            self.drop_message(from, to.id(), message.name(), "the sender has ended");
            return;
        };
        // Most sends stay on their machine, and are kept small: no map, no serialising.
        if self.machines[from_machine].handle.id() != to.machine_id() {
            return self.send_away(from_machine, (sender, from), to, message);
        }
        let receiver = self.nodes.find_receiver(sender, to.id());
        self.queue_local(from_machine, (sender, from), (to, receiver), message);
    }

    /// Queues `message` from slot `sender` (node `from`) to `to`, on the sender's machine, as an
    /// event: to the receiver's slot if the send found it, else by id (looked up on arrival).
    #[inline(always)]
    fn queue_local(
        &mut self,
        from_machine: usize,
        (sender, from): (usize, &NodeId),
        (to, receiver): (&crate::RawHandle, Option<usize>),
        message: Parcel,
    ) {
        let (target, to_hash) = match receiver {
            Some(index) => (Target::Slot(index), self.nodes.slots[index].hash),
            None => (Target::Id(Box::new(to.id().clone())), to.id().stable_hash()),
        };
        let payload = Payload::Local(message, LocalChain::of(to.transport(), from));
        let due = self.due_on_hashed_link((self.nodes.slots[sender].hash, to_hash), self.now);
        self.queue.push(due, Event::deliver(sender, target, from_machine, payload));
    }

    /// [`World::send`] for a message carried inline: one within a machine, through a handle
    /// issued for its sender, to a node found by slot there, goes into the queue as a
    /// [`LocalSend`]; any other takes [`World::send`]'s way.
    #[inline(always)]
    pub(crate) fn send_inline(
        &mut self,
        from_machine: usize,
        from: &NodeId,
        to: &crate::RawHandle,
        message: InlineMessage,
    ) {
        let Some(sender) = self.count_sent(from) else {
            self.drop_message(from, to.id(), message.kind().name(), "the sender has ended");
            return;
        };
        if self.machines[from_machine].handle.id() != to.machine_id() {
            return self.send_away(from_machine, (sender, from), to, Parcel::Inline(message));
        }
        let receiver = self.nodes.find_receiver(sender, to.id());
        if let Some(index) = receiver {
            let slot = &self.nodes.slots[index];
            if slot.machine == from_machine && matches!(to.transport().chain(), [only] if only == from) {
                let due = self.due_on_hashed_link((self.nodes.slots[sender].hash, slot.hash), self.now);
                let light = LocalSend { from: sender as u32, to: index as u32, message };
                return self.queue.push_light(due, light);
            }
        }
        self.queue_local(from_machine, (sender, from), (to, receiver), Parcel::Inline(message));
    }

    /// [`World::send`] to a node its handle places on another machine.
    #[inline(never)]
    fn send_away(
        &mut self,
        from_machine: usize,
        (sender, from): (usize, &NodeId),
        to: &crate::RawHandle,
        message: Parcel,
    ) {
        let to_id = to.id();
        let here = self.machines[from_machine].handle.id() == to.machine_id();
        let Some(machine) = (if here { Some(from_machine) } else { self.machine_of(to.machine_id()) }) else {
            self.drop_message(from, to_id, message.name(), "unknown machine");
            return;
        };
        let payload = if machine == from_machine {
            Payload::Local(message, LocalChain::of(to.transport(), from))
        } else {
            match message.to_json() {
                Ok(bytes) => {
                    self.stats.cross_machine += 1;
                    let sealed = self.config.seal;
                    let bytes = if sealed {
                        let rng = &mut self.secrets_rng;
                        let links = &mut self.machines[from_machine].send_links;
                        links.seal(to, &bytes, || rng.next_u64() as u32)
                    } else {
                        bytes
                    };
                    self.stats.bytes_sent += bytes.len() as u64;
                    let chain = std::sync::Arc::clone(to.transport().shared_chain());
                    let (name, name_hash) = message.name_and_hash();
                    let json = JsonPayload { name, name_hash, chain, sealed, bytes };
                    if let Some(tap) = &mut self.wiretap {
                        tap.push(WireFrame {
                            from: from.clone(),
                            to: to_id.clone(),
                            from_machine: self.machines[from_machine].handle.id().clone(),
                            to_machine: self.machines[machine].handle.id().clone(),
                            chain: json.chain.to_vec(),
                            message: json.name,
                            sealed,
                            bytes: json.bytes.clone(),
                        });
                    }
                    Payload::Json(Box::new(json))
                }
                Err(e) => {
                    tracing::error!(%from, to = %to_id, message = message.name(), error = %e, "dz sim: message does not serialise");
                    self.drop_message(from, to_id, message.name(), "does not serialise");
                    return;
                }
            }
        };
        let target = match self.nodes.find_receiver(sender, to.id()) {
            Some(index) => Target::Slot(index),
            None => Target::Id(Box::new(to.id().clone())),
        };
        if machine != from_machine && self.faults.active() {
            return self.send_through_faults(from_machine, (sender, from), (to.id(), target), machine, payload);
        }
        let at = if machine == from_machine { self.now } else { self.now + self.latency(from_machine, machine) };
        let due = self.due_on_link(from, to.id(), at);
        self.queue.push(due, Event::deliver(sender, target, machine, payload));
    }

    /// A message between machines while faults are on: it may be cut off, dropped, duplicated
    /// or held back. A held-back message or a copy is not bound by its link's order.
    pub(super) fn send_through_faults(
        &mut self,
        from_machine: usize,
        (sender, from): (usize, &NodeId),
        (to, target): (&NodeId, Target),
        machine: usize,
        payload: Payload,
    ) {
        let name = payload.name();
        let (from_m, to_m) = (self.machines[from_machine].handle.id(), self.machines[machine].handle.id());
        let (from_m, to_m) = (from_m.clone(), to_m.clone());
        match self.faults.verdict(self.now, &from_m, &to_m, name) {
            Verdict::Partitioned => {
                self.trace.record(self.now, TraceKind::Partitioned, from, to, name);
                self.drop_message(from, to, name, "partitioned");
            }
            Verdict::Dropped => {
                self.trace.record(self.now, TraceKind::FaultDrop, from, to, name);
                self.drop_message(from, to, name, "dropped by a fault rule");
            }
            Verdict::Deliver { duplicate, hold_micros } => {
                if duplicate {
                    self.trace.record(self.now, TraceKind::FaultDuplicate, from, to, name);
                    let copy = match &payload {
                        Payload::Json(json) => Payload::Json(json.clone()),
                        Payload::Local(..) => unreachable!("messages between machines travel as JSON"),
                    };
                    let at = self.now + self.latency(from_machine, machine);
                    let due = self.due_at(at);
                    let to = match &target {
                        Target::Slot(index) => Target::Slot(*index),
                        Target::Id(id) => Target::Id(id.clone()),
                    };
                    self.queue.push(due, Event::deliver(sender, to, machine, copy));
                }
                let at = self.now + self.latency(from_machine, machine);
                let due = match hold_micros {
                    Some(hold) => {
                        self.trace.record(self.now, TraceKind::FaultReorder, from, to, name);
                        self.due_at(at + hold)
                    }
                    None => self.due_on_link(from, to, at),
                };
                self.queue.push(due, Event::deliver(sender, target, machine, payload));
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
        // A restarted machine is a new process: it draws a new secret, and its links start over.
        let machine = &mut self.machines[index];
        machine.secret = MachineSecret::from_rng(&mut self.secrets_rng);
        machine.send_links = Default::default();
        machine.recv_links = Default::default();
        self.faults.stats.restarts += 1;
        let machine_id = NodeId::from(self.machines[index].handle.id().as_str());
        self.trace.record(self.now, TraceKind::Restart, &machine_id, &machine_id, "restart");
    }

    /// Spawns `node` under `id` on `on` for `from`; returns the key of `from`'s handle to it.
    ///
    /// On its own machine a node's secret derives from the machine's. Across machines the
    /// spawner draws the secret (it makes the first handle before the node exists) and ships it
    /// with the state. A spawn that fails still gets a key, a random one that opens nothing.
    pub(crate) fn spawn(
        &mut self,
        from_machine: usize,
        from: NodeId,
        id: NodeId,
        on: &MachineHandle,
        node: Box<dyn ErasedNode>,
    ) -> LinkKey {
        let Some(machine) = self.machine_of(on.id()).filter(|&m| !self.machines[m].down) else {
            self.stats.spawn_failed += 1;
            tracing::error!(%from, %id, machine = %on.id(), "dz sim: spawn on an unknown or crashed machine");
            self.trash.push(Box::new(node));
            return NodeSecret::from_rng(&mut self.secrets_rng).link_key(&from);
        };
        let (node, key) = if machine == from_machine {
            let key = self.machines[machine].secret.node_secret(&id).link_key(&from);
            (SpawnPayload::Local(node), key)
        } else {
            let secret = NodeSecret::from_rng(&mut self.secrets_rng);
            let key = secret.link_key(&from);
            match node.to_json() {
                Ok(state) => {
                    self.stats.bytes_sent += state.len() as u64;
                    let (type_name, factory) = (node.type_name(), node.factory());
                    (SpawnPayload::Json(Box::new(JsonSpawn { type_name, factory, state, secret })), key)
                }
                Err(e) => {
                    self.stats.spawn_failed += 1;
                    tracing::error!(%from, %id, error = %e, "dz sim: a node's state does not serialise");
                    self.trash.push(Box::new(node));
                    return key;
                }
            }
        };
        let at = self.now + self.latency(from_machine, machine);
        let due = self.due_on_link(&from, &id, at);
        self.queue.push(due, Event::Spawn(Box::new(SpawnEvent { from, id, machine, node })));
        key
    }

    /// The key of a handle to `receiver` for `for_node` (a random one, opening nothing, if
    /// `receiver` is gone).
    pub(crate) fn link_key(&mut self, receiver: &NodeId, for_node: &NodeId) -> LinkKey {
        match self.node_secret(receiver) {
            Some(secret) => secret.link_key(for_node),
            None => NodeSecret::from_rng(&mut self.secrets_rng).link_key(for_node),
        }
    }

    /// Terminates the node behind `handle` for `from`. From another machine, with sealing on, a
    /// termination is sealed like a message (as real machines do), so it takes a handle whose
    /// key opens: one with a made-up key or a forged chain is rejected and counted.
    pub(crate) fn terminate(&mut self, from_machine: usize, from: NodeId, handle: &crate::RawHandle) {
        let target = handle.id().clone();
        let Some(slot) = self.nodes.get_mut(&target) else { return };
        if from == target && matches!(slot.state, NodeState::Busy | NodeState::Suspended(_)) {
            // A node ending itself from its handler: it stops when that handler returns.
            slot.stop_requested = true;
            return;
        }
        let machine = slot.machine;
        if machine != from_machine && self.config.seal {
            let secret = self.node_secret(&target);
            let opens = secret.and_then(|s| s.key_for_chain(handle.transport().chain()));
            if opens.as_ref() != Some(&*handle.key()) {
                self.machines[machine].recv_links.count_rejection(crate::security::OpenError::Rejected);
                self.stats.rejected += 1;
                self.trace.record(self.now, TraceKind::Rejected, &from, &target, "terminate");
                tracing::warn!(%from, %target, "dz sim: a termination through a handle that does not open was rejected");
                return;
            }
        }
        let at = self.now + self.latency(from_machine, machine);
        let due = self.due_on_link(&from, &target, at);
        self.queue.push(due, Event::Terminate(Box::new(TerminateEvent { from, target })));
    }

    /// Puts a frame on the wire from outside (a test playing the attacker); `false` if its
    /// machine is unknown.
    pub(crate) fn inject(&mut self, frame: WireFrame, driver: &NodeId) -> bool {
        let Some(machine) = self.machine_of(&frame.to_machine) else { return false };
        let Some(sender) = self.nodes.find(&frame.from).or_else(|| self.nodes.find(driver)) else { return false };
        let from_machine = self.machine_of(&frame.from_machine).unwrap_or(self.nodes.slots[sender].machine);
        let name = frame.message;
        let json = JsonPayload {
            name,
            name_hash: crate::rng::stable_hash(name.as_bytes()),
            chain: frame.chain.into(),
            sealed: frame.sealed,
            bytes: frame.bytes,
        };
        let at = self.now + self.latency(from_machine, machine);
        let due = self.due_at(at);
        self.queue
            .push(due, Event::deliver(sender, Target::Id(Box::new(frame.to)), machine, Payload::Json(Box::new(json))));
        true
    }
}
