//! Counters a simulation keeps, for the whole run and per node.

/// Counters over a whole simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Events taken off the queue.
    pub events: u64,
    /// Messages that reached a handler.
    pub delivered: u64,
    /// Messages dropped: their node was gone or never existed, or they did not decode.
    pub dropped: u64,
    /// Messages that crossed machines (and so were serialised).
    pub cross_machine: u64,
    /// Bytes of JSON that crossed machines, messages and spawned states.
    pub bytes_sent: u64,
    /// Nodes started.
    pub spawned: u64,
    /// Spawns that could not happen (unknown machine, id in use, state that does not serialise).
    pub spawn_failed: u64,
    /// Nodes terminated, panicked ones included.
    pub terminated: u64,
    /// Nodes stopped because a handler, hook or task panicked.
    pub panicked: u64,
    /// Sealed messages rejected on arrival (tampered, forged, re-addressed, replayed), also
    /// counted in `dropped`; by reason in [`Simulation::rejections`](super::Simulation::rejections).
    pub rejected: u64,
}

/// Counters of one node. They outlive the node, so a test can read them after terminating it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Messages this node sent (timer messages to itself included).
    pub sent: u64,
    /// Messages that reached this node's handlers.
    pub received: u64,
    /// Messages this node sent that were dropped before reaching a handler.
    pub dropped: u64,
}
