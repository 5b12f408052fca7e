//! Worker threads: each takes jobs off the store's run queue and runs node code, catching
//! panics so that a panicking handler stops its own node only.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use dz_core::controller::{Call, ErasedHandled, MachineController};
use dz_core::NodeId;

use crate::core::Core;
use crate::letter::{Letter, RemoteLetter, Via, LOCAL_SENDER};
use crate::peer;
use crate::shard::Key;
use crate::stats::bump;
use crate::store::{Job, Trash};

/// How many messages a worker handles for one node before giving others their turn.
const BATCH: u32 = 64;

/// How many nodes in a row a worker runs from its own "next" slot before it takes from the
/// shared run queue again.
const NEXT_STREAK: u32 = 64;

/// Runs jobs until the machine closes its store.
///
/// The worker is *corked* (frames its handlers send to other machines queue per peer) while it
/// runs a streak of jobs, and uncorked, which writes them, before it looks at the shared run
/// queue (where it may sleep).
pub(crate) fn run(core: Arc<Core>) {
    let ctrl: Arc<dyn MachineController> = core.clone();
    core.store.enter_worker();
    loop {
        let Some(job) = core.store.next_job() else { break };
        peer::cork();
        run_job(&core, &ctrl, job);
        for _ in 1..NEXT_STREAK {
            match core.store.take_next() {
                Some(job) => run_job(&core, &ctrl, job),
                None => break,
            }
        }
        core.store.spill_next();
        peer::uncork(&core);
    }
    core.store.spill_next();
}

/// Runs `job`, then the jobs of the same node that follow from it, up to [`BATCH`].
fn run_job(core: &Core, ctrl: &Arc<dyn MachineController>, job: Job) {
    let mut next = Some(job);
    let mut budget = BATCH;
    while let Some(job) = next.take() {
        budget = budget.saturating_sub(1);
        let (job, trash) = step(core, ctrl, job, budget > 0);
        drop(trash);
        next = job;
    }
}

fn step(core: &Core, ctrl: &Arc<dyn MachineController>, job: Job, more: bool) -> (Option<Job>, Trash) {
    match job {
        Job::Start { key, id, mut node } => match catch_unwind(AssertUnwindSafe(|| node.started(ctrl, &id))) {
            Ok(()) => core.store.put_back(key, node, more),
            Err(panic) => panicked(core, key, &id, &*panic),
        },
        Job::Handle { key, id, mut node, letter } => {
            // The sender is known (for the logs) only of a message from afar.
            let (message, from, via) = match letter {
                Letter::Local { message, via: Some(t) } => (message, None, Via::Transport(t)),
                Letter::Local { message, via: None } => (message, None, Via::Timer),
                Letter::Remote(remote) => match node.decode_message(&remote.json) {
                    Ok(m) => {
                        let RemoteLetter { from, chain, .. } = *remote;
                        (m, Some(from), Via::Chain(chain))
                    }
                    Err(error) => {
                        tracing::warn!(from = %remote.from, to = %id, %error, "dz: dropped a message that does not decode");
                        bump(&core.stats.dropped_undecodable);
                        return core.store.put_back(key, node, more);
                    }
                },
            };
            core.stats.delivered.bump();
            let call = Call { ctrl, id: &id, chain: via.chain(), rng: None };
            match catch_unwind(AssertUnwindSafe(|| node.handle(call, message))) {
                Ok(Ok(ErasedHandled::Done)) => core.store.put_back(key, node, more),
                Ok(Ok(ErasedHandled::Async(message))) => {
                    let fut = node.handle_async(Arc::clone(ctrl), id.clone(), via.into_shared(), message);
                    let waker = core.store.node_waker(key);
                    (Some(Job::Poll { key, id, fut, waker }), Vec::new())
                }
                Ok(Err(error)) => {
                    let from = from.as_ref().map_or(LOCAL_SENDER, NodeId::as_str);
                    tracing::warn!(from, to = %id, %error, "dz: dropped a message of the wrong type");
                    bump(&core.stats.dropped_wrong_type);
                    core.store.put_back(key, node, more)
                }
                Err(panic) => panicked(core, key, &id, &*panic),
            }
        }
        Job::Poll { key, id, mut fut, waker } => {
            let mut cx = TaskContext::from_waker(&waker);
            match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
                Ok(Poll::Ready(node)) => {
                    let (job, mut trash) = core.store.put_back(key, node, more);
                    trash.push(Box::new(fut));
                    (job, trash)
                }
                Ok(Poll::Pending) => (None, core.store.suspend(key, fut)),
                Err(panic) => {
                    let (job, mut trash) = panicked(core, key, &id, &*panic);
                    trash.push(Box::new(fut));
                    (job, trash)
                }
            }
        }
        Job::Stop { key, id, mut node } => {
            let result = catch_unwind(AssertUnwindSafe(|| node.stopping(ctrl, &id)));
            let mut trash = core.store.bury(key, result.is_err());
            if let Err(panic) = result {
                log_panic(&id, &*panic);
            }
            trash.push(Box::new(node));
            (None, trash)
        }
        Job::Task { key, mut fut, waker } => {
            let mut cx = TaskContext::from_waker(&waker);
            let mut trash = match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
                Ok(Poll::Pending) => return (None, core.store.task_pending(key, fut)),
                Ok(Poll::Ready(())) => core.store.task_done(key, false),
                Err(panic) => {
                    tracing::warn!(panic = %panic_text(&*panic), "dz: a task panicked; its node stops");
                    core.store.task_done(key, true)
                }
            };
            trash.push(Box::new(fut));
            (None, trash)
        }
    }
}

fn panicked(core: &Core, key: Key, id: &NodeId, panic: &(dyn std::any::Any + Send)) -> (Option<Job>, Trash) {
    log_panic(id, panic);
    (None, core.store.bury(key, true))
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
