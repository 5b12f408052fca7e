//! [`MachineBuilder`]: what a machine listens on, whom it knows, what it can host.

use std::sync::Arc;

use async_executor::Executor;
use dz_core::controller::{ErasedNode, NodeFactory};
use dz_core::rng::DetRng;
use dz_core::Driver;
use dz_core::{MachineHandle, MachineId, Node};

use crate::core::{Config, Core, Registry};
use crate::error::MachineError;
use crate::machine::{Machine, Threads};
use crate::{peer, timers, worker};

/// The default limit on a frame from a peer: 16 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;

/// Builds a [`Machine`]. Start from [`Machine::builder`].
///
/// # Examples
///
/// ```
/// use dz_runtime_smol::Machine;
/// # use dz_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] pub struct Counter { total: u64 }
/// # #[node] impl Counter { #[handler] fn add(&mut self, n: u64) { self.total += n; } }
///
/// let machine = Machine::builder()
///     .listen("127.0.0.1:0")       // any free port
///     .register::<Counter>()       // peers may spawn Counters here
///     .workers(2)
///     .build()?;
/// assert!(machine.handle().address().starts_with("127.0.0.1:"));
/// machine.shutdown();
/// # Ok::<(), dz_runtime_smol::MachineError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MachineBuilder {
    listen: String,
    peers: Vec<String>,
    registry: Registry,
    seed: Option<u64>,
    workers: usize,
    machine_id: Option<String>,
    max_frame_bytes: usize,
    max_backlog_bytes: usize,
    sealing: bool,
}

impl Default for MachineBuilder {
    fn default() -> Self {
        MachineBuilder {
            listen: "127.0.0.1:0".to_string(),
            peers: Vec::new(),
            registry: Registry::new(),
            seed: None,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            machine_id: None,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_backlog_bytes: 64 << 20,
            sealing: true,
        }
    }
}

fn from_json<N: Node>(json: &[u8]) -> Result<Box<dyn ErasedNode>, serde_json::Error> {
    Ok(Box::new(serde_json::from_slice::<N>(json)?))
}

impl MachineBuilder {
    /// The address to listen on (default `127.0.0.1:0`: loopback, any free port). The machine's
    /// handle carries the address actually bound.
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = address.into();
        self
    }

    /// A peer's listen address: the machine connects to it at start (and to any other machine
    /// on demand, when a node first sends there). Connected peers are listed by
    /// [`Machine::peers`].
    pub fn peer(mut self, address: impl Into<String>) -> Self {
        self.peers.push(address.into());
        self
    }

    /// Lets peers spawn nodes of type `N` here, by `N::TYPE_NAME`, from their JSON state.
    /// (Nodes spawned on this machine by its own nodes need no registration.)
    pub fn register<N: Node>(mut self) -> Self {
        self.registry.insert(N::TYPE_NAME.to_string(), from_json::<N> as NodeFactory);
        self
    }

    /// Seeds the machine's ids and its nodes' random streams. Without a seed they come from
    /// generators seeded from the OS (ids from one per thread, drawn without a lock). A real machine is not deterministic either way (threads and the network decide the
    /// order of events); a seed only makes ids and draws repeatable.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How many worker threads run node code (default: one per core; at least one).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// The machine's id (default: `Machine_<12 random characters>`). Useful when machine
    /// processes are started by a script that wants to name them.
    pub fn machine_id(mut self, id: impl Into<String>) -> Self {
        self.machine_id = Some(id.into());
        self
    }

    /// The largest frame accepted from a peer (default [`DEFAULT_MAX_FRAME_BYTES`]); a peer that
    /// announces a larger one is disconnected before anything is allocated for it. This machine
    /// also keeps the sealed batches it sends under its own limit (a message that alone exceeds
    /// it still travels alone): give every machine of a cluster the same limit.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = bytes;
        self
    }

    /// The most bytes queued for one peer (default 64 MiB); sends beyond fail, counted.
    pub fn max_backlog_bytes(mut self, bytes: usize) -> Self {
        self.max_backlog_bytes = bytes;
        self
    }

    /// Whether messages to and from other machines are sealed (default `true`): encrypted and
    /// authenticated under their handle's link key, so that a forged, tampered, re-addressed or
    /// replayed message is rejected, counted, and never reaches a handler (see the crate's
    /// threat model).
    ///
    /// `false` sends plain JSON, for speed on a network the machines trust entirely; handles'
    /// keys and chains are then not checked (a handler's [`Context::chain`] of a message from
    /// afar is empty), and anyone who can reach the port can send to any node. **Every machine
    /// of a cluster must agree**: a machine with sealing on rejects plain messages (counted in
    /// [`MachineStats::rejected_malformed`](crate::MachineStats::rejected_malformed)), and one
    /// with it off drops sealed ones (counted in
    /// [`MachineStats::dropped_undecodable`](crate::MachineStats::dropped_undecodable)).
    ///
    /// [`Context::chain`]: dz_core::Context::chain
    pub fn sealing(mut self, on: bool) -> Self {
        self.sealing = on;
        self
    }

    /// Binds the listen address, starts the machine's threads and connects to its peers.
    ///
    /// # Errors
    ///
    /// [`MachineError::Listen`] when the address cannot be bound, [`MachineError::Thread`] when
    /// a thread cannot be started.
    pub fn build(self) -> Result<Machine, MachineError> {
        let listen_error = |source| MachineError::Listen { address: self.listen.clone(), source };
        let listener = std::net::TcpListener::bind(&self.listen).map_err(listen_error)?;
        let address = listener.local_addr().map_err(listen_error)?;
        let listener = async_net::TcpListener::try_from(listener).map_err(listen_error)?;
        let seed = self.seed.unwrap_or_else(|| fastrand::u64(..));
        let id = match &self.machine_id {
            Some(id) => MachineId::from(id.as_str()),
            None => {
                let salt = MachineId::from(address.to_string()).stable_hash();
                MachineId::generate("Machine", &mut DetRng::substream(seed, "machine", salt))
            }
        };
        let handle = MachineHandle::new(id, address.to_string());
        let config = Config {
            max_frame_bytes: self.max_frame_bytes,
            max_backlog_bytes: self.max_backlog_bytes,
            sealing: self.sealing,
        };
        let executor = Arc::new(Executor::new());
        let core = Core::new(handle, self.registry, config, seed, self.seed.is_some(), Arc::clone(&executor));

        let client = core.fresh_id(Driver::TYPE_NAME);
        core.store.insert_idle(client.clone(), Box::new(Driver));

        let (stop_io, io_stopped) = async_channel::bounded::<()>(1);
        let io = std::thread::Builder::new()
            .name("dz-io".to_string())
            .spawn(move || {
                async_io::block_on(executor.run(async {
                    let _ = io_stopped.recv().await;
                }));
            })
            .map_err(MachineError::Thread)?;
        let mut threads = Threads { io: Some(io), stop_io: Some(stop_io), workers: Vec::new() };
        core.spawn_io(peer::accept_loop(Arc::clone(&core), listener));
        core.spawn_io(timers::drive(Arc::clone(&core)));
        for n in 0..self.workers {
            let for_worker = Arc::clone(&core);
            let worker =
                std::thread::Builder::new().name(format!("dz-worker-{n}")).spawn(move || worker::run(for_worker));
            match worker {
                Ok(worker) => threads.workers.push(worker),
                Err(e) => {
                    drop(Machine::new(core, client, threads));
                    return Err(MachineError::Thread(e));
                }
            }
        }
        for address in &self.peers {
            peer::connect(&core, address);
        }
        Ok(Machine::new(core, client, threads))
    }
}
