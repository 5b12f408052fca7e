//! # dz-runtime-smol
//!
//! dz's real runtime: the node types that run on the simulator (`dz_core::sim`) run here
//! unchanged, on real machines — worker threads, real time, and TCP between machines. A
//! [`Machine`] is built with [`Machine::builder`]; several can live in one process (each on its
//! own port), or each in its own process.
//!
//! ```
//! use dz_core::prelude::*;
//! use dz_runtime_smol::Machine;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Ponger { served: u64 }
//!
//! #[node]
//! impl Ponger {
//!     #[handler]
//!     fn ping(&mut self, ctx: &mut Context<Self>, reply_to: Handle<Pinger>) {
//!         self.served += 1;
//!         reply_to.pong(ctx);
//!     }
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Pinger { pongs: u64 }
//!
//! #[node]
//! impl Pinger {
//!     #[handler]
//!     fn start(&mut self, ctx: &mut Context<Self>, ponger: Handle<Ponger>) {
//!         let me = ctx.new_handle(ponger.id());
//!         ponger.ping(ctx, me);
//!     }
//!
//!     #[handler]
//!     fn pong(&mut self) { self.pongs += 1; }
//! }
//!
//! // Two machines over loopback TCP.
//! let a = Machine::builder().listen("127.0.0.1:0").build()?;
//! let b = Machine::builder().listen("127.0.0.1:0").register::<Ponger>().build()?;
//! let ponger = a.spawn_on(Ponger { served: 0 }, &b.handle()); // a remote spawn
//! let pinger = a.spawn(Pinger { pongs: 0 });
//! let for_pinger = a.transfer_handle(&ponger, pinger.id());
//! pinger.start(&mut a.client(), for_pinger);
//!
//! let pongs = (0..500).find_map(|_| {
//!     std::thread::sleep(std::time::Duration::from_millis(10));
//!     a.inspect(&pinger, |p| p.pongs).filter(|&n| n == 1)
//! });
//! assert_eq!(pongs, Some(1));
//! assert_eq!(b.inspect(&ponger, |p| p.served), Some(1));
//! a.shutdown();
//! b.shutdown();
//! # Ok::<(), dz_runtime_smol::MachineError>(())
//! ```
//!
//! ## How a machine runs its nodes
//!
//! - **Store**: nodes live in slabs (one 48-byte slot each: the id, a few flags, and the boxed
//!   state or a box made on first use that holds it with the mailbox and the task list), a
//!   table of 4-byte slot numbers to find them by id, all split over 64 shards
//!   by the id's last character, each behind its own lock. There is no executor task and no
//!   channel per node. An idle node whose state is one `u64`, with one handle to it held, costs
//!   about 120 bytes: the 48-byte slot, the state's 32-byte allocation, its table entry and the
//!   32-byte handle. A spawn takes one lock (its shard's) and one other atomic operation, the
//!   reference count of the transport a loop of spawns shares for its handles: an unseeded
//!   machine draws the id from a per-thread generator, with no lock, that ends 2,048 ids in a
//!   row with one shard's character (so a spawn loop fills one slab and one table at a time),
//!   and the spawn count sits beside the shard's lock.
//! - **Scheduling**: a node with work (its `started` hook, mail, a woken `async` handler, a stop
//!   request) is put once on the machine's run queue; a node without a `started` hook is idle
//!   from its spawn and costs the run queue nothing until its first message. Worker threads
//!   (one per core by default) take nodes off it. A node taken joins the worker's *held set*: up to four nodes the worker
//!   has checked out of the store (marked busy, so a node's handlers never run concurrently),
//!   each with its mail moved to the worker's side. A message a handler sends to an idle local
//!   node with an empty mailbox takes that node into the held set too, so a conversation stays
//!   on one thread and wakes no other. The worker runs its held nodes' mail in turns, up to 64
//!   messages each, until none is left; then it gives every held node back to the store (after
//!   4,096 turns it also does so if other nodes wait on the run queue, so no conversation keeps
//!   the others waiting for long). Idle workers look for work for 50 µs, then sleep on a
//!   condition variable: an idle machine uses no CPU.
//! - **`async` handlers** become a future kept in the node's slot; the node leaves the held set,
//!   its mailbox is held until the handler ends, and its waker puts the node back on the run
//!   queue. Tasks made with `create_task` go through the same queue, and die with their node.
//! - **Local messages** are moved into the receiver's mail as typed values: no serialising. A
//!   message from a handler to a node its worker holds goes onto that node's mail on the worker's
//!   side: no lock and no atomic operation. It costs a look through the held set and a push onto
//!   a queue that grows only when fuller than ever before; a message whose variant has no fields
//!   or one field of a primitive type travels inline in its letter (a
//!   [`Parcel`](dz_core::parcel::Parcel): no allocation at all), any other in one `Box`. The
//!   letter (32 bytes) names its transport by an entry of the worker's table of transports
//!   (so the handler can read the delegation chain, [`Context::chain`](dz_core::Context::chain))
//!   instead of taking a reference count, and the machine's counters are added up on the worker
//!   and published before any node is given back. A message to a node that is busy on another
//!   worker, or sent from outside the workers (the client, a timer, a peer's frame), goes into
//!   the receiver's mailbox in the store under its shard's lock, with a reference to its
//!   transport; the worker holding the receiver picks it up after its current handler.
//!   Each sender's messages arrive in send order, also when the sender moves between workers
//!   while its receiver stays held (see the store's module docs for the argument). A letter from
//!   a node of this machine does not keep its sender, so the logs of a dropped local message do
//!   not name it.
//! - **No copies of what was just written.** At tens of millions of messages a second the
//!   cost that shows is less the instructions than the stalls of reading back, in one wide
//!   load, a value that narrower stores wrote a moment before. So an inline message crosses the
//!   controller ([`MachineController::send_inline`](dz_core::MachineController::send_inline)) and
//!   reaches its handler
//!   ([`ErasedNode::handle_inline`](dz_core::controller::ErasedNode::handle_inline)) as two
//!   words in registers, a letter to a held node is written straight into its mail (room is
//!   checked first, so the push cannot call out to grow it), and what a turn gives back is
//!   taken apart before it is moved on.
//! - **Time** is microseconds since the machine started. Timers (`sleep_ms`, `send_after`,
//!   `send_every`) sit in one heap driven by one task on the I/O thread, which sleeps until the
//!   earliest deadline.
//! - **Panics**: a handler, hook or task that panics stops its own node only (counted in
//!   [`MachineStats::panicked`]).
//!
//! ## Between machines
//!
//! One TCP connection per pair of machines, opened when a node first sends to the other
//! machine (or at start, for the builder's peers) and reopened on demand after it breaks, with
//! a back-off after failed connects. Frames are a 4-byte big-endian length and a payload: a
//! binary *batch* of sealed messages (the default), or JSON (a plain message with sealing off,
//! a spawn, a termination, a greeting). A worker running handlers is *corked*: the frames its
//! handlers send queue per peer and leave in one write when it is done (or as soon as 256 KiB
//! are queued for a peer, so that it can start on them); a send with nothing queued ahead goes
//! straight into the socket from the sending thread; whatever the socket does not take at once
//! is written by the peer's writer task on the I/O thread, together with all that queued
//! meanwhile.
//!
//! Messages that queue back to back from one sender to one receiver through one handle (one
//! *link*) are gathered into one batch, sealed once when something else is queued behind it or
//! when it is written (at most 4,096 messages or 64 KiB a batch, and no more than the machine's
//! own frame limit, which the machines of a cluster should share; a longer message travels alone):
//! one nonce, one tag and one frame for them all. So a handler that sends a burst to a node on
//! another machine pays for sealing per batch, not per message, and the receiving machine opens
//! the batch once (on its I/O thread) and delivers its messages in order. Frames stay in the order
//! they were queued: a batch never gathers a message sent after a spawn or a termination queued
//! behind it. A send with nothing queued ahead is a batch of one. A batch that is dropped or
//! rejected before it opens (for a node that is not here, say) is counted once, whatever it
//! held: its count is sealed.
//!
//! A frame announcing more than the limit ([`MachineBuilder::max_frame_bytes`]) closes the
//! connection before anything is allocated for it; a frame that is not valid closes it too; a
//! message for an unknown node, a spawn of an unregistered node type or a message whose JSON
//! does not fit its node is dropped. Every such
//! case is logged (`tracing`) and counted in [`MachineStats`], and the machine goes on serving
//! everyone else. Sends to a peer that is down fail at once and are counted
//! ([`MachineStats::send_failed`]); delivery is at most once, as everywhere in dz.
//!
//! ## Threads
//!
//! A machine has its worker threads (node code only), one I/O thread (an `async-executor`
//! driven by `async-io`: connections, the timer task, signals) and nothing else of its own.
//! [`Machine::run`] blocks until SIGINT or SIGTERM (or a [`Stopper`]) and then shuts down:
//! workers stop, idle nodes' `stopping` hooks run, what they sent is flushed to peers, the
//! connections close.
//!
//! Peers may spawn on this machine only node types it registered with
//! [`MachineBuilder::register`].
//!
//! ## Security: the threat model
//!
//! Every node has a secret: its machine's 32-byte secret (drawn from the OS's entropy at start)
//! together with its id, if it was spawned there, or 32 bytes drawn by its spawner and shipped
//! with the spawn if it was spawned from another machine. A handle carries the link key of its delegation
//! chain (the node it was issued for, then each node it was passed to with
//! `transfer_handle`), derived from the receiver's secret. Messages from one machine to
//! another are *sealed* (ChaCha20-Poly1305 under that key, with the receiver and the chain as
//! associated data and a per-link counter in the nonce; see [`dz_core::security`]), unless the
//! machines were built with [`MachineBuilder::sealing`]`(false)`: a batch of messages on one
//! link is sealed as one AEAD message, with one nonce of its own. The receiving machine opens it
//! with the receiver's secret before anything else looks at it, and checks the batch's count
//! against a limit (65,536) and its plaintext's size before allocating anything for its messages.
//!
//! **An attacker on the network** (who can read, write, drop and replay frames)
//! - cannot read a message's content (it is encrypted);
//! - cannot forge a message, tamper with one, replay one on the same link, re-address one to
//!   another node, or change the chain it claims, nor do any of that to a batch, or cut one
//!   short, or split, merge or reorder the messages inside one: each is rejected (a batch
//!   whole: none of its messages is delivered), counted by reason in [`MachineStats`] (once per
//!   frame: `rejected_bad_tag`, `rejected_replayed`, `rejected_malformed`,
//!   `rejected_bad_chain`), logged at warn (at most once a second) and never reaches a handler;
//! - can drop, delay and reorder frames (a batch is lost or kept whole; delivery is at most once
//!   anyway; a frame more than 1,023 behind the newest on its link is taken for a replay), and
//!   cut connections;
//! - can see who talks to whom and when, and how big each batch is: ids, chains and sizes
//!   travel in the clear (traffic analysis is not prevented; how many messages a batch holds is
//!   sealed, but its size hints at it).
//!
//! **A node holding a handle** can send through it and delegate it with `transfer_handle`
//! (which appends the new holder to the chain, with no round trip). It cannot make a handle to
//! another receiver, nor one with a chain that does not start with a chain it holds: the
//! receiver recomputes the key of every chain from its own secret, and the first link of a
//! chain is the node the receiver issued the handle to, answerable for everyone it delegated
//! to. (The links after the first say whom the handle went through; whoever holds a handle can
//! pass it on under any name.)
//!
//! **Not protected:**
//! - *Spawn frames travel in the clear*, with the new node's state and its secret: an
//!   eavesdropper who records one can read the state and talk to that node as its spawner (and
//!   as anyone the spawner delegated to).
//! - *Greetings are not authenticated*: a `hello` claims a machine id and a listen address
//!   that nothing checks. (Terminations from afar are sealed like messages: only a holder of a
//!   handle to a node can terminate it.)
//! - *A compromised machine*: whoever reads a machine's memory holds its secret and its nodes'
//!   secrets, and every key they issued.
//! - *Messages within one machine are not sealed*: they never leave its memory. The machine is
//!   the trust boundary; its nodes trust each other's handles as the runtime made them.
//! - With sealing off, nothing is checked: anyone who reaches the port can send to any node,
//!   and a handler's chain of a message from afar is empty. Use it only on a network the
//!   machines trust entirely, and on every machine of the cluster alike.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

mod builder;
mod core;
mod error;
mod frame;
mod index;
mod letter;
mod machine;
mod padded;
mod peer;
mod shard;
mod stats;
mod store;
mod timers;
mod wire;
mod worker;

pub use builder::{MachineBuilder, DEFAULT_MAX_FRAME_BYTES};
pub use error::MachineError;
pub use machine::{Machine, Stopper};
pub use stats::MachineStats;

/// Reads `payload` (a frame's bytes after its length prefix) as a machine reads a frame from a
/// peer, without a network and short of acting on it: parses it (a JSON frame or a binary
/// batch), tries to open a batch (with a throwaway secret), and reads its sealed bytes as a
/// batch's plaintext. Whether it parsed. Never panics, whatever the bytes: for
/// the fuzzer (`fuzz/fuzz_targets/frame_decoder.rs`); not part of the interface.
#[doc(hidden)]
pub fn decode_frame_payload(payload: &[u8]) -> bool {
    wire::check(payload)
}
