//! Worker threads: each takes jobs off the store's run queue and runs node code, catching
//! panics so that a panicking handler stops its own node only.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use dz_core::controller::{Call, ErasedHandled, ErasedNode, ErasedNodeFuture, MachineController};
use dz_core::parcel::Parcel;
use dz_core::{NodeId, Transport};

use crate::core::Core;
use crate::letter::{Letter, RemoteLetter, Via, LOCAL_SENDER};
use crate::peer;
use crate::shard::Key;
use crate::stats::bump;
use crate::store::{Job, Trash, Turn};

/// How many turns a worker gives its held nodes before it looks at the shared run queue (and
/// writes what its handlers sent to other machines).
const TURNS: u32 = 4096;

/// Runs jobs until the machine closes its store.
///
/// A job from the shared run queue starts a *conversation*: the node it runs joins the worker's
/// held set, and so does every idle node its handlers (and theirs) send to, up to
/// `HELD_MAX` (4); the worker then runs the held nodes' mail, in turns,
/// until none is left, or until others wait on the run queue after [`TURNS`] turns. Then every
/// held node goes back to the store.
///
/// The worker is *corked* (frames its handlers send to other machines queue per peer) while it
/// converses, and uncorked, which writes them, every [`TURNS`] turns and before it looks at the
/// shared run queue (where it may sleep).
pub(crate) fn run(core: Arc<Core>) {
    let ctrl: Arc<dyn MachineController> = core.clone();
    core.store.enter_worker();
    loop {
        let Some(job) = core.store.next_job() else { break };
        peer::cork();
        let back = run_job(&core, &ctrl, job);
        converse(&core, &ctrl, back);
        core.store.give_back_all();
        peer::uncork(&core);
    }
    core.store.give_back_all();
}

/// Runs the held nodes' turns until none has mail, or others wait. `back` is the running node,
/// to hold again first.
fn converse(core: &Core, ctrl: &Arc<dyn MachineController>, mut back: Option<Back>) {
    let mut turns = TURNS;
    loop {
        let Some(turn) = core.store.next_turn(back) else { return };
        back = run_turn(core, ctrl, turn);
        turns -= 1;
        if turns == 0 {
            if core.store.should_yield() {
                if let Some((node, via)) = back {
                    core.store.resume(node, via);
                }
                return;
            }
            core.store.flush_counts();
            peer::uncork(core);
            peer::cork();
            turns = TURNS;
        }
    }
}

/// The running held node whose code ended normally, to hold again, with the transport its
/// turn's letter came through (for the worker's transport table).
type Back = (Box<dyn ErasedNode>, Option<Transport>);

/// Drops what a node's code left to drop (nothing, mostly: then without a call).
#[inline]
fn discard(trash: Trash) {
    if trash.capacity() == 0 {
        std::mem::forget(trash);
    } else {
        drop(trash);
    }
}

/// Runs a job from the shared run queue; returns the running held node, if it is to be held
/// again.
fn run_job(core: &Core, ctrl: &Arc<dyn MachineController>, job: Job) -> Option<Back> {
    match job {
        Job::Held => None,
        Job::Start { key, id, mut node } => match catch_unwind(AssertUnwindSafe(|| node.started(ctrl, &id))) {
            Ok(()) => Some((node, None)),
            Err(panic) => {
                log_panic(&id, &*panic);
                let mut trash = core.store.bury_running(key, true, None);
                trash.push(Box::new(node));
                drop(trash);
                None
            }
        },
        Job::Poll { key, id, fut, waker } => poll(core, key, &id, fut, &waker, None),
        Job::Stop { key, id, mut node } => {
            let result = catch_unwind(AssertUnwindSafe(|| node.stopping(ctrl, &id)));
            let mut trash = core.store.bury(key, result.is_err());
            if let Err(panic) = result {
                log_panic(&id, &*panic);
            }
            trash.push(Box::new(node));
            drop(trash);
            None
        }
        Job::Task { key, mut fut, waker } => {
            let mut cx = TaskContext::from_waker(&waker);
            let mut trash = match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
                Ok(Poll::Pending) => {
                    discard(core.store.task_pending(key, fut));
                    return None;
                }
                Ok(Poll::Ready(())) => core.store.task_done(key, false),
                Err(panic) => {
                    tracing::warn!(panic = %panic_text(&*panic), "dz: a task panicked; its node stops");
                    core.store.task_done(key, true)
                }
            };
            trash.push(Box::new(fut));
            drop(trash);
            None
        }
    }
}

/// Polls the `async` handler of the running held node; returns the node if the handler ended.
/// `via`: the transport its turn took out of the worker's table, if any.
fn poll(
    core: &Core,
    key: Key,
    id: &NodeId,
    mut fut: ErasedNodeFuture,
    waker: &Waker,
    via: Option<Transport>,
) -> Option<Back> {
    let mut cx = TaskContext::from_waker(waker);
    match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(node)) => {
            drop(fut);
            Some((node, via))
        }
        Ok(Poll::Pending) => {
            discard(core.store.suspend(key, fut, via));
            None
        }
        Err(panic) => {
            log_panic(id, &*panic);
            let mut trash = core.store.bury_running(key, true, via);
            trash.push(Box::new(fut));
            drop(trash);
            None
        }
    }
}

/// Runs a held node's turn; returns the node if it is to be held again.
#[inline]
fn run_turn(core: &Core, ctrl: &Arc<dyn MachineController>, turn: Turn) -> Option<Back> {
    match turn {
        Turn::Handle { key, id, node, letter } => handle(core, ctrl, key, &id, node, letter),
        Turn::Stop { key, id, mut node } => {
            let result = catch_unwind(AssertUnwindSafe(|| node.stopping(ctrl, &id)));
            let mut trash = core.store.bury_running(key, result.is_err(), None);
            if let Err(panic) = result {
                log_panic(&id, &*panic);
            }
            trash.push(Box::new(node));
            drop(trash);
            None
        }
    }
}

/// Hands `letter` to the running held node's handler; returns the node if it is to be held
/// again.
#[inline]
fn handle(
    core: &Core,
    ctrl: &Arc<dyn MachineController>,
    key: Key,
    id: &NodeId,
    node: Box<dyn ErasedNode>,
    letter: Letter,
) -> Option<Back> {
    let (message, via) = match letter {
        Letter::Local { message, via } => (message, via),
        Letter::Remote(remote) => return handle_remote(core, ctrl, key, id, node, remote),
        // Made `Local` by the turn; never here.
        Letter::Held(held) => (held.into_parts().0, None),
    };
    handle_local(core, ctrl, key, id, node, message, via)
}

/// [`handle`] for a letter from a node of this machine (or a timer's): its chain is read from
/// the transport it came through, which goes back to the worker's table afterwards. The common
/// end (the handler ran to its end) is kept small; the rest is out of line.
#[inline(always)]
fn handle_local(
    core: &Core,
    ctrl: &Arc<dyn MachineController>,
    key: Key,
    id: &NodeId,
    mut node: Box<dyn ErasedNode>,
    message: Parcel,
    via: Option<Transport>,
) -> Option<Back> {
    let chain: &[NodeId] = via.as_ref().map_or(&[], Transport::chain);
    let call = Call { ctrl, id, chain, rng: None };
    let handled = catch_unwind(AssertUnwindSafe(|| match message {
        Parcel::Inline(inline) => node.handle_inline(call, inline),
        message => node.handle(call, message),
    }));
    match handled {
        Ok(Ok(ErasedHandled::Done)) => Some((node, via)),
        other => settle(core, ctrl, key, id, node, via, None, other),
    }
}

/// [`handle`] for a letter from another machine: decoded here, by the worker that runs its node.
/// (It takes the letter's box as it is, a pointer, rather than the letter moved out of it.)
#[allow(clippy::boxed_local)]
#[inline(never)]
fn handle_remote(
    core: &Core,
    ctrl: &Arc<dyn MachineController>,
    key: Key,
    id: &NodeId,
    mut node: Box<dyn ErasedNode>,
    remote: Box<RemoteLetter>,
) -> Option<Back> {
    let message = match node.decode_message(&remote.json) {
        Ok(message) => message,
        Err(error) => {
            tracing::warn!(from = %remote.from, to = %id, %error, "dz: dropped a message that does not decode");
            bump(&core.stats.dropped_undecodable);
            return Some((node, None));
        }
    };
    let RemoteLetter { from, chain, .. } = *remote;
    let call = Call { ctrl, id, chain: &chain, rng: None };
    let handled = catch_unwind(AssertUnwindSafe(|| node.handle(call, message)));
    settle(core, ctrl, key, id, node, None, Some((from, chain)), handled)
}

/// What follows a handler: the node held again, its `async` handler run, a message of the wrong
/// type dropped, or a panic's node buried. `remote` is the sender and chain of a message from
/// afar (`None`: from this machine, through `via`).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn settle(
    core: &Core,
    ctrl: &Arc<dyn MachineController>,
    key: Key,
    id: &NodeId,
    node: Box<dyn ErasedNode>,
    via: Option<Transport>,
    remote: Option<(NodeId, Arc<[NodeId]>)>,
    handled: std::thread::Result<Result<ErasedHandled, dz_core::controller::DeliveryError>>,
) -> Option<Back> {
    match handled {
        Ok(Ok(ErasedHandled::Done)) => Some((node, via)),
        Ok(Ok(ErasedHandled::Async(message))) => {
            let shared = match (&via, remote) {
                (Some(t), _) => Via::Transport(t.clone()),
                (None, Some((_, chain))) => Via::Chain(chain),
                (None, None) => Via::Timer,
            };
            let fut = node.handle_async(Arc::clone(ctrl), id.clone(), shared.into_shared(), message);
            poll(core, key, id, fut, &core.store.node_waker(key), via)
        }
        Ok(Err(error)) => {
            let from = remote.as_ref().map_or(LOCAL_SENDER, |(from, _)| from.as_str());
            tracing::warn!(from, to = %id, %error, "dz: dropped a message of the wrong type");
            bump(&core.stats.dropped_wrong_type);
            Some((node, via))
        }
        Err(panic) => {
            log_panic(id, &*panic);
            discard(core.store.bury_running(key, true, via));
            None
        }
    }
}

fn log_panic(id: &NodeId, panic: &(dyn std::any::Any + Send)) {
    tracing::warn!(node = %id, panic = %panic_text(panic), "dz: node panicked and stopped");
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_string())
}
