//! [`Machine`]: a running machine, and what the code outside its nodes can do with it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use dz_core::controller::MachineController;
use dz_core::Driver;
use dz_core::{Context, Handle, MachineHandle, Node, NodeId};

use crate::builder::MachineBuilder;
use crate::core::Core;
use crate::stats::MachineStats;

/// How long a shutdown waits for frames queued for peers to be written.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The threads of a machine.
pub(crate) struct Threads {
    pub(crate) io: Option<JoinHandle<()>>,
    pub(crate) stop_io: Option<async_channel::Sender<()>>,
    pub(crate) workers: Vec<JoinHandle<()>>,
}

/// A real machine: nodes on worker threads, real time, TCP to its peers.
///
/// Built with [`Machine::builder`]; it runs from then on, on its own threads, until
/// [`Machine::shutdown`] (or drop): the code that holds it can spawn nodes, send them messages
/// and read their state, acting as the machine's *client* node (like the simulator's driver).
///
/// # Examples
///
/// Two machines in one process, a node spawned on the second from the first:
///
/// ```
/// use dz_core::prelude::*;
/// use dz_runtime_smol::Machine;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Counter { total: u64 }
///
/// #[node]
/// impl Counter {
///     #[handler]
///     fn add(&mut self, n: u64) { self.total += n; }
/// }
///
/// let a = Machine::builder().build()?;
/// let b = Machine::builder().register::<Counter>().build()?;
/// let counter = a.spawn_on(Counter { total: 0 }, &b.handle()); // over TCP
/// for n in 1..=10 {
///     a.send(&counter, CounterMessage::Add { n });
/// }
/// let total = (0..500).find_map(|_| {
///     std::thread::sleep(std::time::Duration::from_millis(10));
///     b.inspect(&counter, |c| c.total).filter(|&t| t == 55)
/// });
/// assert_eq!(total, Some(55));
/// assert_eq!(b.stats().delivered, 10);
/// a.shutdown();
/// b.shutdown();
/// # Ok::<(), dz_runtime_smol::MachineError>(())
/// ```
pub struct Machine {
    core: Arc<Core>,
    client: NodeId,
    threads: Threads,
    stopper: Stopper,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("handle", &self.core.handle)
            .field("workers", &self.threads.workers.len())
            .field("nodes", &self.core.store.len())
            .finish()
    }
}

impl Machine {
    /// A builder with the defaults: listen on `127.0.0.1:0`, one worker per core, no peers.
    pub fn builder() -> MachineBuilder {
        MachineBuilder::default()
    }

    pub(crate) fn new(core: Arc<Core>, client: NodeId, threads: Threads) -> Self {
        Machine { core, client, threads, stopper: Stopper::default() }
    }

    /// This machine's handle: its id and the address it listens on. Give it to nodes that
    /// should spawn here.
    pub fn handle(&self) -> MachineHandle {
        self.core.handle.clone()
    }

    /// The machine's counters.
    pub fn stats(&self) -> MachineStats {
        self.core.stats.snapshot(self.core.store.kept_counts())
    }

    /// How many nodes live here now (the client node included).
    pub fn node_count(&self) -> usize {
        self.core.store.len()
    }

    /// The peers this machine is connected to now, by address.
    pub fn peers(&self) -> Vec<MachineHandle> {
        self.core.peers.connected()
    }

    /// A context of this machine's client node, through which the code outside the nodes calls
    /// their typed send methods (`counter.add(&mut machine.client(), 5)`) or anything else a
    /// context offers. Handles made by the client's context are for the client.
    pub fn client(&self) -> Context<'static, Driver> {
        let ctrl: Arc<dyn MachineController> = self.core.clone();
        Context::for_runtime_owned(ctrl, self.client.clone())
    }

    /// The client node's id: handles the outside code holds were issued for it.
    pub fn client_id(&self) -> &NodeId {
        &self.client
    }

    /// Spawns `node` on this machine; the handle is for the client.
    pub fn spawn<N: Node>(&self, node: N) -> Handle<N> {
        self.client().spawn(node, &self.core.handle)
    }

    /// Spawns `node` on the machine `on` (this one or a peer, which must have registered `N`).
    pub fn spawn_on<N: Node>(&self, node: N, on: &MachineHandle) -> Handle<N> {
        self.client().spawn(node, on)
    }

    /// Sends `msg` to the node behind `to`, from the client.
    pub fn send<N: Node>(&self, to: &Handle<N>, msg: N::Message) {
        self.client().send(to, msg);
    }

    /// Passes a handle the client holds on to `for_node`.
    pub fn transfer_handle<N: Node>(&self, handle: &Handle<N>, for_node: &NodeId) -> Handle<N> {
        self.client().transfer_handle(handle, for_node)
    }

    /// Terminates the node behind `handle` (here or on a peer).
    pub fn terminate<N: Node>(&self, handle: &Handle<N>) {
        self.client().terminate(handle);
    }

    /// Reads the state of the node behind `handle`, a node of this machine: `f` gets it and its
    /// result is returned. `None` if the node is not here, or a worker has it right now (running
    /// a handler, or holding it while it or the nodes it talks with still have mail); an idle
    /// node can always be read.
    pub fn inspect<N: Node, R>(&self, handle: &Handle<N>, f: impl FnOnce(&N) -> R) -> Option<R> {
        self.core.store.inspect(handle.id(), |node| node.as_any().downcast_ref::<N>().map(f)).flatten()
    }

    /// Whether node `id` lives on this machine now.
    pub fn is_alive(&self, id: &NodeId) -> bool {
        self.core.store.contains(id)
    }

    /// A handle that asks [`Machine::run`] to return, from another thread.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Blocks until the process gets SIGINT (Ctrl-C) or SIGTERM, or a [`Stopper`] asks the
    /// machine to stop; then shuts it down cleanly (see [`Machine::shutdown`]) and returns its
    /// final counters.
    ///
    /// While it runs, those two signals no longer end the process at once: they stop the machine.
    /// If the signals cannot be listened for, the failure is logged and only a `Stopper` stops it.
    pub fn run(mut self) -> MachineStats {
        match async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term]) {
            Ok(mut signals) => {
                let stopper = self.stopper.clone();
                self.core.spawn_io(async move {
                    if let Some(signal) = futures_lite::StreamExt::next(&mut signals).await {
                        tracing::info!(?signal, "dz: signal received; the machine stops");
                        stopper.stop();
                    }
                });
            }
            Err(error) => tracing::warn!(%error, "dz: cannot listen for signals; only a Stopper stops this machine"),
        }
        self.stopper.wait();
        self.stop();
        self.stats()
    }

    /// Shuts the machine down: its workers stop, the `stopping` hooks of its idle nodes run, what
    /// they and others sent to peers is written (waiting up to a second), its connections and
    /// listener close, and its threads are joined.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.threads.stop_io.is_none() {
            return;
        }
        self.core.store.close();
        for worker in self.threads.workers.drain(..) {
            let _ = worker.join();
        }
        let ctrl: Arc<dyn MachineController> = self.core.clone();
        let (idle, trash) = self.core.store.drain();
        drop(trash);
        for (id, mut node) in idle {
            if catch_unwind(AssertUnwindSafe(|| node.stopping(&ctrl, &id))).is_err() {
                tracing::warn!(node = %id, "dz: a stopping hook panicked");
            }
        }
        // What the hooks sent to peers goes out before the connections close (bounded wait).
        let deadline = std::time::Instant::now() + FLUSH_LIMIT;
        while !self.core.peers.flushed() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(self.threads.stop_io.take());
        if let Some(io) = self.threads.io.take() {
            let _ = io.join();
        }
        drop(self.core.take_io());
        drop(self.core.timers.clear());
        self.core.peers.clear();
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Asks a [`Machine::run`] to return. Cheap to clone; usable from any thread.
#[derive(Clone, Default)]
pub struct Stopper {
    state: Arc<(Mutex<bool>, Condvar)>,
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopper").field("stopped", &self.is_stopped()).finish()
    }
}

impl Stopper {
    /// Asks the machine to stop.
    pub fn stop(&self) {
        *self.state.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.state.1.notify_all();
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        *self.state.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait(&self) {
        let mut stopped = self.state.0.lock().unwrap_or_else(PoisonError::into_inner);
        while !*stopped {
            stopped = self.state.1.wait(stopped).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[allow(dead_code)]
fn _ensure_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Machine>();
    both::<Stopper>();
}
