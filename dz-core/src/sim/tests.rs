//! Tests of the simulator's bookkeeping that need nodes of their own (written out by hand: the
//! `#[node]` macro names `::dz_core`, which this crate cannot).

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::handle::{Handle, RawHandle};
use crate::ids::NodeId;
use crate::node::{HandleApi, Handled, Message, Node, NodeFuture};

use super::Simulation;

/// Records the delegation chain of the messages that reach it, and sends through a handle it
/// holds when told to.
#[derive(Default, Serialize, Deserialize)]
struct Echo {
    chains: Vec<Vec<NodeId>>,
    held: Option<Handle<Echo>>,
}

#[derive(Serialize, Deserialize)]
enum EchoMessage {
    /// Record the chain.
    Note,
    /// Nap for `ms` in an `async` handler, then record the chain.
    NapThenNote { ms: u64 },
    /// Hold `handle`.
    Take { handle: Handle<Echo> },
    /// Send `Note` through the held handle.
    NoteHeld,
    /// Send `NapThenNote` through the held handle.
    NapHeld { ms: u64 },
    /// Issue a handle to this node for `holder`, and give it to them.
    Issue { holder: Handle<Echo> },
}

impl Message for EchoMessage {
    fn name(&self) -> &'static str {
        match self {
            EchoMessage::Note => "Echo::note",
            EchoMessage::NapThenNote { .. } => "Echo::nap_then_note",
            EchoMessage::Take { .. } => "Echo::take",
            EchoMessage::NoteHeld => "Echo::note_held",
            EchoMessage::NapHeld { .. } => "Echo::nap_held",
            EchoMessage::Issue { .. } => "Echo::issue",
        }
    }
}

#[derive(Debug)]
struct EchoApi {
    raw: RawHandle,
}

impl HandleApi for EchoApi {
    fn from_raw(raw: RawHandle) -> Self {
        EchoApi { raw }
    }

    fn raw(&self) -> &RawHandle {
        &self.raw
    }
}

impl Node for Echo {
    type Message = EchoMessage;
    type Api = EchoApi;
    const TYPE_NAME: &'static str = "Echo";

    fn handle(&mut self, ctx: &mut Context<'_, Self>, msg: EchoMessage) -> Handled<EchoMessage> {
        match msg {
            EchoMessage::Note => self.chains.push(ctx.chain().to_vec()),
            EchoMessage::NapThenNote { .. } => return Handled::Async(msg),
            EchoMessage::Take { handle } => self.held = Some(handle),
            EchoMessage::NoteHeld => {
                if let Some(held) = &self.held {
                    ctx.send(held, EchoMessage::Note);
                }
            }
            EchoMessage::NapHeld { ms } => {
                if let Some(held) = &self.held {
                    ctx.send(held, EchoMessage::NapThenNote { ms });
                }
            }
            EchoMessage::Issue { holder } => {
                let handle = ctx.new_handle(holder.id());
                ctx.send(&holder, EchoMessage::Take { handle });
            }
        }
        Handled::Done
    }

    fn handle_async(mut self: Box<Self>, ctx: Context<'static, Self>, msg: EchoMessage) -> NodeFuture<Self> {
        Box::pin(async move {
            if let EchoMessage::NapThenNote { ms } = msg {
                ctx.sleep_ms(ms).await;
            }
            self.chains.push(ctx.chain().to_vec());
            self
        })
    }
}

/// Messages within a machine carry the chain of the handle they were sent through, whichever
/// way the simulator keeps it: a handle issued for its sender (the chain is the sender alone), a
/// handle passed on (the transport's chain), a message to an `async` handler (which keeps the
/// chain past the step), and a message that waited in the mailbox of a node in such a handler.
#[test]
fn handlers_see_the_chain_of_the_handle_a_message_came_through_within_a_machine() {
    let mut sim = Simulation::new(21);
    let m = sim.add_machine();
    let a = sim.spawn(Echo::default(), &m);
    let b = sim.spawn(Echo::default(), &m);
    sim.run_until_idle();
    let issue_to_b = |sim: &mut Simulation| {
        let holder = sim.transfer_handle(&b, a.id());
        sim.send(&a, EchoMessage::Issue { holder });
        sim.run_until_idle();
    };
    // `b` holds a handle issued for it, and sends through it.
    issue_to_b(&mut sim);
    sim.send(&b, EchoMessage::NoteHeld);
    sim.run_until_idle();
    // `b` holds a handle the driver passed on to it.
    let passed = sim.transfer_handle(&a, b.id());
    sim.send(&b, EchoMessage::Take { handle: passed });
    sim.send(&b, EchoMessage::NoteHeld);
    sim.run_until_idle();
    // Through its own handle again: to `a` in an `async` handler, then to `a` while it naps.
    issue_to_b(&mut sim);
    // The nap outlasts the next message's way there, whatever the latency drawn.
    sim.send(&b, EchoMessage::NapHeld { ms: 1000 });
    sim.run_for(100);
    sim.send(&b, EchoMessage::NoteHeld);
    sim.run_until_idle();

    let (driver, b_id) = (sim.driver_id().clone(), b.id().clone());
    let expected = vec![vec![b_id.clone()], vec![driver, b_id.clone()], vec![b_id.clone()], vec![b_id]];
    assert_eq!(sim.inspect(&a, |e| e.chains.clone()), Some(expected));
    assert_eq!(sim.inspect(&b, |e| e.chains.len()), Some(0));
    assert_eq!(sim.stats().dropped, 0);
}
