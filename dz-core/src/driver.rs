//! The [`Driver`]: the node that code outside every node acts as (a test driving a simulation,
//! a program driving a real machine) when it spawns nodes and sends them messages.

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::handle::RawHandle;
use crate::node::{HandleApi, Handled, Message, Node, NodeFuture};

/// The node that stands for code outside every node. It takes no messages: anything sent to it
/// is dropped and counted.
///
/// Under the simulator it lives on a machine of its own, outside the machines a test adds; use
/// it through [`Simulation::spawn`](crate::sim::Simulation::spawn),
/// [`Simulation::send`](crate::sim::Simulation::send) or, to call a node's typed send methods,
/// [`Simulation::driver`](crate::sim::Simulation::driver). A real runtime gives its own.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Driver;

/// The driver's messages: there are none.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum DriverMessage {}

impl Message for DriverMessage {
    fn name(&self) -> &'static str {
        match *self {}
    }
}

/// The driver's send methods: there are none.
#[derive(Debug)]
pub struct DriverHandle {
    raw: RawHandle,
}

impl HandleApi for DriverHandle {
    fn from_raw(raw: RawHandle) -> Self {
        DriverHandle { raw }
    }

    fn raw(&self) -> &RawHandle {
        &self.raw
    }
}

impl Node for Driver {
    type Message = DriverMessage;
    type Api = DriverHandle;
    const TYPE_NAME: &'static str = "Driver";

    fn handle(&mut self, _ctx: &mut Context<'_, Self>, msg: DriverMessage) -> Handled<DriverMessage> {
        match msg {}
    }

    fn handle_async(self: Box<Self>, _ctx: Context<'static, Self>, msg: DriverMessage) -> NodeFuture<Self> {
        match msg {}
    }
}
