//! The simulator's [`MachineController`]: one per simulated machine, all sharing one world.

use std::sync::Arc;
use std::task::Waker;

use crate::controller::{Envelope, MachineController, SpawnRequest, TaskFuture, TimerMessage, TimerToken};
use crate::handle::{MachineHandle, RawHandle, Transport};
use crate::ids::NodeId;
use crate::parcel::InlineMessage;

use super::world::{Shared, TaskFut};

/// A simulated machine as its nodes see it.
pub(crate) struct SimController {
    pub(crate) handle: MachineHandle,
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
}

impl MachineController for SimController {
    fn machine(&self) -> &MachineHandle {
        &self.handle
    }

    fn now_micros(&self) -> u64 {
        self.shared.lock().now
    }

    fn send(&self, envelope: Envelope<'_>) {
        let Envelope { from, to, message } = envelope;
        self.shared.lock().send(self.index, from, to, message);
    }

    fn send_inline(&self, from: &NodeId, to: &RawHandle, message: InlineMessage) {
        self.shared.lock().send_inline(self.index, from, to, message);
    }

    fn spawn(&self, from: &NodeId, request: SpawnRequest<'_>) -> RawHandle {
        let SpawnRequest { id, on, node } = request;
        let node_type = node.type_name();
        let key = self.shared.lock().spawn(self.index, from.clone(), id.clone(), on, node);
        let transport = Transport::new(Arc::clone(on.shared_address()), from.clone(), key);
        RawHandle::new(id, node_type, on.id().clone(), transport)
    }

    fn terminate(&self, from: &NodeId, target: &RawHandle) {
        self.shared.lock().terminate(self.index, from.clone(), target);
    }

    fn new_id(&self, prefix: &str) -> NodeId {
        self.shared.lock().new_node_id(prefix)
    }

    fn new_transport(&self, receiver: &NodeId, for_node: &NodeId) -> Transport {
        let key = self.shared.lock().link_key(receiver, for_node);
        Transport::new(Arc::clone(self.handle.shared_address()), for_node.clone(), key)
    }

    fn transfer_transport(&self, _holder: &NodeId, transport: &Transport, for_node: &NodeId) -> Transport {
        transport.transferred(for_node.clone())
    }

    fn random_u64(&self, node: &NodeId) -> u64 {
        self.shared.lock().node_random(node)
    }

    fn wake_at(&self, deadline_micros: u64, waker: Waker) {
        self.shared.lock().push_wake_at(deadline_micros, waker);
    }

    fn schedule(&self, node: &NodeId, delay_micros: u64, message: TimerMessage) -> TimerToken {
        TimerToken(self.shared.lock().schedule(node, delay_micros, message))
    }

    fn cancel_timer(&self, node: &NodeId, token: TimerToken) -> bool {
        self.shared.lock().cancel_timer(node, token.0)
    }

    fn buggify(&self, _node: &NodeId) -> bool {
        self.shared.lock().buggify()
    }

    fn create_task(&self, node: &NodeId, task: TaskFuture) {
        let mut world = self.shared.lock();
        if let Some(task) = world.create_task(node, TaskFut::Plain(task), &self.shared.wakes) {
            world.push_polls(vec![task]);
        }
    }
}
