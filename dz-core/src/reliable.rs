//! Reliable delivery: exactly-once, in-order messages over a lossy network, built only from
//! [`Context`] operations, so it runs the same under the simulator and on real machines.
//!
//! Plain sends are at most once and in order (see the crate docs): a message can be lost, and
//! with an injected fault duplicated or reordered. A [`Reliable<N>`] link instead numbers its
//! messages, retransmits what is not acknowledged (with exponential back-off), and delivers
//! each message to its node exactly once and in send order, across drops, duplicates,
//! reorders and partitions that heal.
//!
//! A link is two small nodes that [`Reliable::connect`] spawns: a [`ReliableSender`] on the
//! sending node's machine and a [`ReliableReceiver`] on the receiving node's machine. The hops
//! between a node and its proxy stay on one machine, where nothing is lost; only the proxies
//! talk across the network. The receiving node needs nothing special: its handlers get the
//! messages as if they had been sent directly.
//!
//! What it does not cover: a crashed machine loses its memory, so a crash of either end loses
//! the messages that end held (a restarted machine starts empty, without the link). A link whose
//! peer stays unreachable for longer than [`ReliableConfig::give_up_ms`] fails: it logs why,
//! drops what it held, and refuses further messages (counted in [`LinkStats::refused`]); so does
//! a link whose buffer of unacknowledged messages is full. Runtimes must know the proxies' node
//! types (the simulator always does; a real machine registers them).
//!
//! # Examples
//!
//! ```
//! use dz_core::prelude::*;
//! use dz_core::reliable::Reliable;
//! use dz_core::sim::{FaultKind, FaultRule, Filter, Simulation};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! pub struct Log { lines: Vec<u64> }
//!
//! #[node]
//! impl Log {
//!     #[handler]
//!     fn line(&mut self, n: u64) { self.lines.push(n); }
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Writer { log: Handle<Log> }
//!
//! #[node]
//! impl Writer {
//!     #[handler]
//!     fn write(&mut self, ctx: &mut Context<Self>, count: u64) {
//!         let link = Reliable::connect(ctx, &self.log, Default::default());
//!         for n in 0..count {
//!             link.send(ctx, LogMessage::Line { n });
//!         }
//!     }
//! }
//!
//! let mut sim = Simulation::new(3);
//! let (a, b) = (sim.add_machine(), sim.add_machine());
//! let log = sim.spawn(Log::default(), &b);
//! let writer = sim.spawn(Writer { log: log.clone() }, &a);
//! // Lose 30% of what goes to `b`: the link's packets (the test's own message goes to `a`).
//! let to_b = Filter { to: Some(b.id().clone()), ..Filter::any() };
//! sim.add_fault(FaultRule { kind: FaultKind::Drop, rate: 0.3, filter: to_b });
//! writer.write(&mut sim.driver(), 20);
//! sim.run_until_idle();
//! assert_eq!(sim.inspect(&log, |l| l.lines.clone()), Some((0..20).collect()));
//! ```

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::controller::JsonMessage;
use crate::handle::{Handle, MachineHandle, RawHandle};
use crate::node::Node;
use crate::prelude::*;
use crate::TimerToken;

/// How a reliable link retransmits and when it gives up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReliableConfig {
    /// The first retransmission timeout, in milliseconds.
    pub initial_rto_ms: u64,
    /// The longest retransmission timeout after back-off, in milliseconds.
    pub max_rto_ms: u64,
    /// A link that hears nothing from its peer for this long fails, in milliseconds.
    pub give_up_ms: u64,
    /// The most messages a link holds unacknowledged; more are refused.
    pub max_unacked: u64,
    /// For tests only: deliver duplicates instead of suppressing them (a deliberately broken
    /// link, to show that a test can catch one).
    #[doc(hidden)]
    pub skip_duplicate_suppression: bool,
}

impl Default for ReliableConfig {
    /// 50 ms first timeout, doubling up to 2 s; give up after 60 s of silence; at most 10,000
    /// messages in flight.
    fn default() -> Self {
        ReliableConfig {
            initial_rto_ms: 50,
            max_rto_ms: 2_000,
            give_up_ms: 60_000,
            max_unacked: 10_000,
            skip_duplicate_suppression: false,
        }
    }
}

/// A reliable link to a node of type `N`. Plain data: keep it in the sending node's state.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Reliable<N: Node> {
    sender: Handle<ReliableSender>,
    _node: PhantomData<fn() -> N>,
}

impl<N: Node> Clone for Reliable<N> {
    fn clone(&self) -> Self {
        Reliable { sender: self.sender.clone(), _node: PhantomData }
    }
}

impl<N: Node> std::fmt::Debug for Reliable<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reliable<{}>({:?})", N::TYPE_NAME, self.sender.id())
    }
}

impl<N: Node> Reliable<N> {
    /// Opens a link from the node of `ctx` to the node behind `target`: spawns its two proxies
    /// and returns the link. Messages sent on it reach `target` exactly once, in order.
    pub fn connect<S: Node>(ctx: &mut Context<'_, S>, target: &Handle<N>, config: ReliableConfig) -> Self {
        let receiver_id = ctx.reserve_id::<ReliableReceiver>();
        let sender_id = ctx.reserve_id::<ReliableSender>();
        let target_machine = MachineHandle::new(target.machine_id().clone(), target.raw().transport().address());
        let for_receiver = ctx.transfer_handle(target, &receiver_id);
        let receiver = ReliableReceiver {
            target: for_receiver.into_raw(),
            ack_to: None,
            expected: 0,
            pending: BTreeMap::new(),
            skip_duplicate_suppression: config.skip_duplicate_suppression,
            stats: LinkStats::default(),
        };
        let receiver = ctx.spawn_with_id(receiver_id, receiver, &target_machine);
        let peer = ctx.transfer_handle(&receiver, &sender_id);
        let here = ctx.machine().clone();
        let sender = ReliableSender::new(peer, config);
        Reliable { sender: ctx.spawn_with_id(sender_id, sender, &here), _node: PhantomData }
    }

    /// Sends `msg` on the link.
    ///
    /// A message that does not serialise is logged and dropped here; one the link refuses (it
    /// failed, or its buffer is full) is counted in its sender's [`LinkStats::refused`].
    pub fn send<S: Node>(&self, ctx: &mut Context<'_, S>, msg: N::Message) {
        match serde_json::to_string(&msg) {
            Ok(json) => self.sender.submit(ctx, json),
            Err(e) => tracing::error!(error = %e, "dz reliable: a message does not serialise"),
        }
    }

    /// The link's sending proxy, to inspect its [`LinkStats`] in tests.
    pub fn sender(&self) -> &Handle<ReliableSender> {
        &self.sender
    }
}

/// Counters of one end of a reliable link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    /// Messages given to the link (sender) or delivered to the node (receiver).
    pub messages: u64,
    /// Packets sent for the first time (sender) or received (receiver).
    pub packets: u64,
    /// Packets sent again (sender) or received again and suppressed (receiver).
    pub repeats: u64,
    /// Messages refused: the link had failed or its buffer was full (sender).
    pub refused: u64,
}

/// The sending end of a reliable link, on the sending node's machine.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReliableSender {
    peer: Handle<ReliableReceiver>,
    config: ReliableConfig,
    next_seq: u64,
    unacked: BTreeMap<u64, String>,
    acked_once: bool,
    rto_ms: u64,
    timer: Option<TimerToken>,
    last_heard_ms: u64,
    failed: Option<String>,
    stats: LinkStats,
}

impl ReliableSender {
    fn new(peer: Handle<ReliableReceiver>, config: ReliableConfig) -> Self {
        ReliableSender {
            peer,
            rto_ms: config.initial_rto_ms.max(1),
            config,
            next_seq: 0,
            unacked: BTreeMap::new(),
            acked_once: false,
            timer: None,
            last_heard_ms: 0,
            failed: None,
            stats: LinkStats::default(),
        }
    }

    /// The link's counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Why the link failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Messages sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.unacked.len()
    }

    fn transmit(&self, ctx: &mut Context<'_, Self>, seq: u64, json: String) {
        // Until the receiver has answered once, every packet says where to answer.
        let ack_to = if self.acked_once { None } else { Some(ctx.new_handle(self.peer.id())) };
        self.peer.packet(ctx, seq, json, ack_to);
    }

    fn arm(&mut self, ctx: &mut Context<'_, Self>) {
        if self.timer.is_none() {
            self.timer = Some(ctx.send_after(self.rto_ms, ReliableSenderMessage::Retransmit));
        }
    }
}

#[node(crate = "crate", name = "dz.ReliableSender")]
impl ReliableSender {
    #[started]
    fn begin(&mut self, ctx: &mut Context<Self>) {
        self.last_heard_ms = ctx.now_ms();
    }

    /// A message from the link's node, as JSON.
    #[handler]
    fn submit(&mut self, ctx: &mut Context<Self>, json: String) {
        if let Some(why) = &self.failed {
            self.stats.refused += 1;
            tracing::warn!(link = %ctx.id(), why = %why, "dz reliable: a failed link refused a message");
            return;
        }
        if self.unacked.len() as u64 >= self.config.max_unacked {
            self.stats.refused += 1;
            tracing::warn!(link = %ctx.id(), max = self.config.max_unacked, "dz reliable: link buffer full, message refused");
            return;
        }
        if self.unacked.is_empty() {
            self.last_heard_ms = ctx.now_ms();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.messages += 1;
        self.stats.packets += 1;
        self.transmit(ctx, seq, json.clone());
        self.unacked.insert(seq, json);
        self.arm(ctx);
    }

    /// The receiver has every message before `upto`.
    #[handler]
    fn ack(&mut self, ctx: &mut Context<Self>, upto: u64) {
        self.acked_once = true;
        self.last_heard_ms = ctx.now_ms();
        let before = self.unacked.len();
        self.unacked = self.unacked.split_off(&upto);
        if self.unacked.len() < before {
            self.rto_ms = self.config.initial_rto_ms.max(1);
        }
        if self.unacked.is_empty() {
            if let Some(timer) = self.timer.take() {
                ctx.cancel_timer(timer);
            }
        }
    }

    /// Sends everything unacknowledged again, backing off; or gives up.
    #[handler]
    fn retransmit(&mut self, ctx: &mut Context<Self>) {
        self.timer = None;
        if self.unacked.is_empty() || self.failed.is_some() {
            return;
        }
        let silent = ctx.now_ms().saturating_sub(self.last_heard_ms);
        if silent > self.config.give_up_ms {
            let why = format!("no answer from {} for {silent} ms", self.peer.id());
            tracing::error!(link = %ctx.id(), lost = self.unacked.len(), why = %why, "dz reliable: link failed");
            self.unacked.clear();
            self.failed = Some(why);
            return;
        }
        for (seq, json) in self.unacked.clone() {
            self.stats.repeats += 1;
            self.transmit(ctx, seq, json);
        }
        self.rto_ms = (self.rto_ms * 2).min(self.config.max_rto_ms.max(1));
        self.arm(ctx);
    }
}

/// The receiving end of a reliable link, on the receiving node's machine.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReliableReceiver {
    target: RawHandle,
    ack_to: Option<Handle<ReliableSender>>,
    expected: u64,
    pending: BTreeMap<u64, String>,
    skip_duplicate_suppression: bool,
    stats: LinkStats,
}

impl ReliableReceiver {
    /// The link's counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    fn forward(&mut self, ctx: &mut Context<'_, Self>, json: String) {
        self.stats.messages += 1;
        ctx.send_raw(&self.target, crate::parcel::Parcel::boxed(Box::new(JsonMessage::new(json.into_bytes()))));
    }
}

#[node(crate = "crate", name = "dz.ReliableReceiver")]
impl ReliableReceiver {
    /// Packet `seq` of the link; `ack_to` says where to acknowledge, until the sender has heard
    /// back once.
    #[handler]
    fn packet(&mut self, ctx: &mut Context<Self>, seq: u64, json: String, ack_to: Option<Handle<ReliableSender>>) {
        if self.ack_to.is_none() {
            self.ack_to = ack_to;
        }
        self.stats.packets += 1;
        if self.skip_duplicate_suppression && seq < self.expected {
            self.forward(ctx, json);
        } else if seq < self.expected || self.pending.contains_key(&seq) {
            self.stats.repeats += 1;
        } else {
            self.pending.insert(seq, json);
            while let Some(json) = self.pending.remove(&self.expected) {
                self.forward(ctx, json);
                self.expected += 1;
            }
        }
        if let Some(sender) = &self.ack_to {
            sender.ack(ctx, self.expected);
        }
    }
}
