//! A tree of nodes that adds numbers up: leaves draw amounts, interior nodes gather them and
//! report to a root, and at the end the root's total must equal what the leaves sent.
//!
//! One root, one interior node per machine, and leaves spawned by the interior nodes on their own
//! machines. Every `tick_ms` each leaf draws a random amount (from its seeded stream) and sends it
//! to its parent; every `flush_ms` each interior node reports what it gathered to the root. When a
//! leaf has ticked for `seconds`, it tells its parent what it sent in all; when all its leaves are
//! done, an interior node flushes and tells the root. Nothing is left running then, so a
//! simulation of the tree ends by itself.

use dz_core::prelude::*;
use dz_core::reliable::{Reliable, ReliableConfig};
use dz_core::sim::Simulation;
use serde::{Deserialize, Serialize};

/// The shape and pace of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeConfig {
    /// Leaves under each interior node.
    pub leaves_per_interior: u64,
    /// How long each leaf ticks, in milliseconds.
    pub run_ms: u64,
    /// A leaf's tick period, in milliseconds.
    pub tick_ms: u64,
    /// An interior node's report period, in milliseconds.
    pub flush_ms: u64,
    /// Interior nodes report to the root over a reliable link ([`dz_core::reliable`]), so that
    /// the totals agree over a lossy network.
    pub reliable: bool,
}

impl Default for TreeConfig {
    /// 100 leaves per interior node, ticking every 100 ms for 300 s; reports every 500 ms, sent
    /// directly.
    fn default() -> Self {
        TreeConfig { leaves_per_interior: 100, run_ms: 300_000, tick_ms: 100, flush_ms: 500, reliable: false }
    }
}

/// The top of the tree: spawns one interior node per machine and adds up their reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct Root {
    machines: Vec<MachineHandle>,
    config: TreeConfig,
    interiors: Vec<Handle<Interior>>,
    /// The sum of all reports received.
    pub total: u64,
    /// Reports received.
    pub reports: u64,
    /// What the leaves say they sent, as their interior nodes passed it on when done.
    pub expected: u64,
    /// Interior nodes whose leaves are all done.
    pub interiors_done: u64,
    /// When the last interior node was done, in milliseconds.
    pub finished_ms: Option<u64>,
}

impl Root {
    /// A root that will spread the tree over `machines`.
    pub fn new(machines: Vec<MachineHandle>, config: TreeConfig) -> Self {
        Root {
            machines,
            config,
            interiors: Vec::new(),
            total: 0,
            reports: 0,
            expected: 0,
            interiors_done: 0,
            finished_ms: None,
        }
    }

    /// The interior nodes, one per machine.
    pub fn interiors(&self) -> &[Handle<Interior>] {
        &self.interiors
    }

    /// Whether every interior node is done.
    pub fn is_done(&self) -> bool {
        self.interiors_done == self.machines.len() as u64
    }
}

#[node]
impl Root {
    /// Spawns the interior nodes, each with a handle back to the root.
    #[started]
    fn begin(&mut self, ctx: &mut Context<Self>) {
        for machine in self.machines.clone() {
            let id = ctx.reserve_id::<Interior>();
            let root = ctx.new_handle(&id);
            let interior = Interior::new(root, self.config);
            self.interiors.push(ctx.spawn_with_id(id, interior, &machine));
        }
    }

    /// Adds an interior node's report.
    #[handler]
    fn report(&mut self, amount: u64) {
        self.total += amount;
        self.reports += 1;
    }

    /// An interior node's leaves are all done, having sent `sent` in all.
    #[handler]
    fn interior_done(&mut self, ctx: &mut Context<Self>, sent: u64) {
        self.expected += sent;
        self.interiors_done += 1;
        if self.is_done() {
            self.finished_ms = Some(ctx.now_ms());
        }
    }
}

/// The middle of the tree: spawns its leaves, gathers their amounts, reports to the root.
#[derive(Debug, Serialize, Deserialize)]
pub struct Interior {
    root: Handle<Root>,
    link: Option<Reliable<Root>>,
    config: TreeConfig,
    leaves: Vec<Handle<Leaf>>,
    flush_timer: Option<TimerToken>,
    /// Gathered since the last report.
    pub pending: u64,
    /// Leaves done so far.
    pub leaves_done: u64,
    /// What the done leaves say they sent.
    pub leaves_sent: u64,
}

impl Interior {
    fn new(root: Handle<Root>, config: TreeConfig) -> Self {
        Interior {
            root,
            link: None,
            config,
            leaves: Vec::new(),
            flush_timer: None,
            pending: 0,
            leaves_done: 0,
            leaves_sent: 0,
        }
    }

    /// Sends `msg` to the root, over the reliable link if there is one.
    fn to_root(&self, ctx: &mut Context<'_, Self>, msg: RootMessage) {
        match &self.link {
            Some(link) => link.send(ctx, msg),
            None => ctx.send(&self.root, msg),
        }
    }

    /// This node's leaves.
    pub fn leaves(&self) -> &[Handle<Leaf>] {
        &self.leaves
    }
}

#[node]
impl Interior {
    /// Spawns the leaves on this machine and starts reporting.
    #[started]
    fn begin(&mut self, ctx: &mut Context<Self>) {
        if self.config.reliable {
            self.link = Some(Reliable::connect(ctx, &self.root, ReliableConfig::default()));
        }
        let here = ctx.machine().clone();
        for _ in 0..self.config.leaves_per_interior {
            let id = ctx.reserve_id::<Leaf>();
            let parent = ctx.new_handle(&id);
            let ticks = self.config.run_ms / self.config.tick_ms.max(1);
            let leaf = Leaf { parent, tick_ms: self.config.tick_ms, ticks_left: ticks, sent: 0 };
            self.leaves.push(ctx.spawn_with_id(id, leaf, &here));
        }
        self.flush_timer = Some(ctx.send_every(self.config.flush_ms, || InteriorMessage::Flush));
    }

    /// Gathers a leaf's amount.
    #[handler]
    fn add(&mut self, amount: u64) {
        self.pending += amount;
    }

    /// Reports what was gathered since the last report.
    #[handler]
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.pending > 0 {
            self.to_root(ctx, RootMessage::Report { amount: self.pending });
            self.pending = 0;
        }
    }

    /// A leaf is done, having sent `sent` in all; when all are, report a last time and stop.
    #[handler]
    fn leaf_done(&mut self, ctx: &mut Context<Self>, sent: u64) {
        self.leaves_done += 1;
        self.leaves_sent += sent;
        if self.leaves_done == self.leaves.len() as u64 {
            self.flush(ctx);
            if let Some(timer) = self.flush_timer.take() {
                ctx.cancel_timer(timer);
            }
            self.to_root(ctx, RootMessage::InteriorDone { sent: self.leaves_sent });
        }
    }
}

/// The bottom of the tree: sends its parent a random amount every tick.
#[derive(Debug, Serialize, Deserialize)]
pub struct Leaf {
    parent: Handle<Interior>,
    tick_ms: u64,
    ticks_left: u64,
    /// What this leaf sent so far.
    pub sent: u64,
}

#[node]
impl Leaf {
    /// Starts ticking.
    #[started]
    fn begin(&mut self, ctx: &mut Context<Self>) {
        if self.ticks_left == 0 {
            self.parent.leaf_done(ctx, 0);
        } else {
            ctx.send_after(self.tick_ms, LeafMessage::Tick);
        }
    }

    /// Sends one amount, then ticks again or says it is done.
    #[handler]
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let amount = ctx.random_range(1..101);
        self.parent.add(ctx, amount);
        self.sent += amount;
        self.ticks_left -= 1;
        if self.ticks_left == 0 {
            self.parent.leaf_done(ctx, self.sent);
        } else {
            ctx.send_after(self.tick_ms, LeafMessage::Tick);
        }
    }
}

/// What a simulated run of the tree did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeOutcome {
    /// The root's total of the reports it received.
    pub total: u64,
    /// The sum of what every leaf says it sent, read from the leaves themselves.
    pub leaves_sent: u64,
    /// What the interior nodes passed on to the root as their leaves' totals.
    pub expected_at_root: u64,
    /// Leaves that ran.
    pub leaves: u64,
    /// Virtual milliseconds the run took.
    pub simulated_ms: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// The run's trace hash.
    pub trace_hash: u64,
}

/// Runs the tree on `machines` simulated machines until it is done.
///
/// # Panics
///
/// If the tree does not finish (every node must have ended its timers), which would be a bug.
pub fn simulate(seed: u64, machines: usize, config: TreeConfig) -> TreeOutcome {
    let mut sim = Simulation::new(seed);
    let all: Vec<MachineHandle> = (0..machines).map(|_| sim.add_machine()).collect();
    run(&mut sim, &all, config)
}

/// Runs the tree on the machines `all` of `sim` (the root on the first) until it is done.
///
/// # Panics
///
/// If the tree does not finish, or `all` is empty.
pub fn run(sim: &mut Simulation, all: &[MachineHandle], config: TreeConfig) -> TreeOutcome {
    let seed = sim.seed();
    let root = sim.spawn(Root::new(all.to_vec(), config), &all[0]);
    sim.run_until_idle();
    let (total, expected, interiors) =
        sim.inspect(&root, |r| (r.total, r.expected, r.interiors.clone())).expect("the root is alive");
    let mut leaves = 0;
    let mut leaves_sent = 0;
    for interior in &interiors {
        let handles = sim.inspect(interior, |i| i.leaves.clone()).expect("interior nodes are alive");
        for leaf in &handles {
            leaves += 1;
            leaves_sent += sim.inspect(leaf, |l| l.sent).expect("leaves are alive");
        }
    }
    assert!(sim.inspect(&root, Root::is_done).unwrap_or(false), "the tree did not finish (seed {seed})");
    TreeOutcome {
        total,
        leaves_sent,
        expected_at_root: expected,
        leaves,
        simulated_ms: sim.now_ms(),
        delivered: sim.stats().delivered,
        trace_hash: sim.trace_hash(),
    }
}
