//! [`Context`]: what a handler gets, and its only door to the world.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use crate::controller::{Envelope, MachineController, SpawnRequest, TimerMessage, TimerToken};
use crate::handle::{Handle, MachineHandle, RawHandle};
use crate::ids::NodeId;
use crate::node::{Message, Node};
use crate::rng::DetRng;

/// What a handler of node `N` gets: its only door to the world.
///
/// Through the context a node sends messages, spawns and terminates nodes, makes and passes on
/// handles, reads the time, sleeps, sets timers, draws random numbers and runs tasks. The same
/// calls work under the simulator (virtual time, seeded randomness) and on a real machine, which
/// is why node code must do all of these through the context and never on its own (see
/// [`Node`]'s rules).
///
/// Handlers take it as `ctx: &mut Context<Self>`.
pub struct Context<'a, N> {
    place: Place<'a>,
    /// The node's own random stream, when the runtime lends it for one handler call (saving a
    /// round trip to the controller per draw); otherwise draws go through the controller.
    rng: Option<&'a mut DetRng>,
    _node: PhantomData<fn() -> N>,
}

/// Whose context it is, and where: borrowed for one synchronous handler call (the common case,
/// kept to three references and no drop glue), or owned, for `async` handlers and tasks.
enum Place<'a> {
    Call {
        ctrl: &'a Arc<dyn MachineController>,
        id: &'a NodeId,
        /// The delegation chain of the message being handled; empty in hooks and timers.
        chain: &'a [NodeId],
    },
    Owned(Box<OwnedPlace>),
}

struct OwnedPlace {
    ctrl: Arc<dyn MachineController>,
    id: NodeId,
    chain: Arc<[NodeId]>,
}

impl<N> Context<'_, N> {
    /// The node's own id.
    #[inline(always)]
    pub fn id(&self) -> &NodeId {
        match &self.place {
            Place::Call { id, .. } => id,
            Place::Owned(owned) => &owned.id,
        }
    }

    /// The machine's controller.
    #[inline(always)]
    fn ctrl(&self) -> &Arc<dyn MachineController> {
        match &self.place {
            Place::Call { ctrl, .. } => ctrl,
            Place::Owned(owned) => &owned.ctrl,
        }
    }
}

impl<N> fmt::Debug for Context<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("node", self.id())
            .field("machine", self.ctrl().machine())
            .finish_non_exhaustive()
    }
}

impl<'a, N: Node> Context<'a, N> {
    /// For runtimes: the context of node `id` on the machine behind `ctrl`, for one handler call.
    #[inline(always)]
    pub fn for_runtime(ctrl: &'a Arc<dyn MachineController>, id: &'a NodeId) -> Self {
        Context { place: Place::Call { ctrl, id, chain: &[] }, rng: None, _node: PhantomData }
    }

    /// For runtimes: the same context, handling a message that came through a handle whose
    /// delegation chain is `chain`.
    #[inline(always)]
    pub fn with_chain(mut self, chain: &'a [NodeId]) -> Self {
        match &mut self.place {
            Place::Call { chain: mine, .. } => *mine = chain,
            Place::Owned(owned) => owned.chain = Arc::from(chain),
        }
        self
    }

    /// For runtimes: [`Context::with_chain`] with a shared chain, for contexts that outlive the
    /// call (`async` handlers).
    pub fn with_shared_chain(mut self, chain: Arc<[NodeId]>) -> Self {
        match &mut self.place {
            Place::Call { ctrl, id, .. } => {
                self.place = Place::Owned(Box::new(OwnedPlace { ctrl: Arc::clone(ctrl), id: (*id).clone(), chain }));
            }
            Place::Owned(owned) => owned.chain = chain,
        }
        self
    }

    /// The delegation chain of the handle the message being handled was sent through: the node
    /// the receiver issued it for, then each node it was passed to with
    /// [`Context::transfer_handle`]. Between machines the chain is verified (the message opens only
    /// under the key of that chain), so its first node answers for the message. Within one
    /// machine messages are not sealed and the chain is the one the sender's handle names.
    ///
    /// Empty in `started` and `stopping` hooks, in tasks, and for timer messages.
    ///
    /// # Examples
    ///
    /// ```
    /// # use dz_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize, Default)]
    /// pub struct Audited { senders: Vec<Vec<NodeId>> }
    ///
    /// #[node]
    /// impl Audited {
    ///     #[handler]
    ///     fn act(&mut self, ctx: &mut Context<Self>) {
    ///         self.senders.push(ctx.chain().to_vec());
    ///     }
    /// }
    ///
    /// let mut sim = dz_core::sim::Simulation::new(3);
    /// let m = sim.add_machine();
    /// let audited = sim.spawn(Audited::default(), &m);
    /// audited.act(&mut sim.driver());
    /// sim.run_until_idle();
    /// assert_eq!(sim.inspect(&audited, |a| a.senders.clone()), Some(vec![vec![sim.driver_id().clone()]]));
    /// ```
    pub fn chain(&self) -> &[NodeId] {
        match &self.place {
            Place::Call { chain, .. } => chain,
            Place::Owned(owned) => &owned.chain,
        }
    }

    /// For runtimes: the same context, drawing random numbers from `rng`, the node's own stream,
    /// lent for this call.
    #[inline(always)]
    pub fn with_rng(mut self, rng: &'a mut DetRng) -> Self {
        self.rng = Some(rng);
        self
    }

    /// The handle of the machine this node runs on.
    pub fn machine(&self) -> &MachineHandle {
        self.ctrl().machine()
    }

    /// Milliseconds since the machine's clock started; virtual time under the simulator.
    pub fn now_ms(&self) -> u64 {
        self.ctrl().now_micros() / 1000
    }

    /// Microseconds since the machine's clock started.
    pub fn now_micros(&self) -> u64 {
        self.ctrl().now_micros()
    }

    /// A future that completes `ms` milliseconds from now. In an `async` handler it holds the
    /// node's mailbox: no other message of this node is handled until the handler ends.
    ///
    /// # Examples
    ///
    /// ```
    /// # use dz_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize)]
    /// pub struct Napper { slept: u64 }
    ///
    /// #[node]
    /// impl Napper {
    ///     #[handler]
    ///     async fn nap(&mut self, ctx: &mut Context<Self>, ms: u64) {
    ///         let start = ctx.now_ms();
    ///         ctx.sleep_ms(ms).await;
    ///         self.slept = ctx.now_ms() - start;
    ///     }
    /// }
    ///
    /// let mut sim = dz_core::sim::Simulation::new(7);
    /// let m = sim.add_machine();
    /// let napper = sim.spawn(Napper { slept: 0 }, &m);
    /// napper.nap(&mut sim.driver(), 250);
    /// sim.run_until_idle();
    /// assert_eq!(sim.inspect(&napper, |n| n.slept), Some(250));
    /// ```
    pub fn sleep_ms(&self, ms: u64) -> Sleep {
        let deadline = self.ctrl().now_micros().saturating_add(ms.saturating_mul(1000));
        Sleep { ctrl: Arc::clone(self.ctrl()), deadline, registered: false }
    }

    /// Sends `msg` to the node behind `to`. The generated methods (`handle.ping(ctx, 7)`) call
    /// this; prefer them.
    ///
    /// Sending never fails here: delivery is at most once, and a message that cannot be delivered
    /// (the receiver is gone, its machine is down) is dropped and counted by the runtime.
    pub fn send<M: Node>(&mut self, to: &Handle<M>, msg: M::Message) {
        self.send_raw(to.raw(), msg.into_parcel());
    }

    /// Sends `msg` to this node itself, behind the messages this node already sent itself.
    pub fn send_self(&mut self, msg: N::Message) {
        let me = self.handle_to_self_raw(self.id().clone());
        self.send_raw(&me, msg.into_parcel());
    }

    /// Delivers `msg` to this node itself after `delay_ms`; cancel it with [`Context::cancel_timer`].
    pub fn send_after(&mut self, delay_ms: u64, msg: N::Message) -> TimerToken {
        self.ctrl().schedule(self.id(), delay_ms.saturating_mul(1000), TimerMessage::Once(msg.into_parcel()))
    }

    /// Delivers `make()` to this node itself every `period_ms` (the first after one period) until
    /// cancelled with [`Context::cancel_timer`] or the node ends.
    ///
    /// A period of 0 is taken as 1 ms, so that a timer can never stall virtual time.
    pub fn send_every(&mut self, period_ms: u64, mut make: impl FnMut() -> N::Message + Send + 'static) -> TimerToken {
        let period_micros = period_ms.max(1).saturating_mul(1000);
        let make = Box::new(move || make().into_parcel());
        self.ctrl().schedule(self.id(), period_micros, TimerMessage::Every { period_micros, make })
    }

    /// Cancels a timer made by [`Context::send_after`] or [`Context::send_every`]. Returns `false`
    /// if it had already fired (a one-shot timer) or was cancelled before.
    pub fn cancel_timer(&mut self, token: TimerToken) -> bool {
        self.ctrl().cancel_timer(self.id(), token)
    }

    /// A fresh node id for a node of type `M`, to build a node's state before spawning it with
    /// [`Context::spawn_with_id`] (a parent handing a child a handle to itself needs the child's
    /// id first).
    pub fn reserve_id<M: Node>(&mut self) -> NodeId {
        self.ctrl().new_id(M::TYPE_NAME)
    }

    /// Spawns `node` on machine `on` and returns a handle for this node to send to it.
    ///
    /// The node's initial state is sent to `on` (serialised, if `on` is another machine) and its
    /// `started` hook runs there before its first message. Messages this node sends to the new
    /// node arrive after it has started; a spawn that cannot happen (the machine is unknown or
    /// down, the state does not serialise) is logged and counted, and sends to the handle are then
    /// dropped.
    pub fn spawn<M: Node>(&mut self, node: M, on: &MachineHandle) -> Handle<M> {
        let id = self.reserve_id::<M>();
        self.spawn_with_id(id, node, on)
    }

    /// Spawns `node` on `on` under an id reserved with [`Context::reserve_id`].
    pub fn spawn_with_id<M: Node>(&mut self, id: NodeId, node: M, on: &MachineHandle) -> Handle<M> {
        let raw = self.ctrl().spawn(self.id(), SpawnRequest { id, on, node: Box::new(node) });
        Handle::typed(raw)
    }

    /// Terminates the node behind `handle`: its `stopping` hook runs, its timers and tasks end,
    /// and later messages to it are dropped and counted.
    pub fn terminate<M: Node>(&mut self, handle: &Handle<M>) {
        self.ctrl().terminate(self.id(), handle.raw());
    }

    /// Terminates this node once the current handler returns.
    pub fn terminate_self(&mut self) {
        let me = self.handle_to_self_raw(self.id().clone());
        self.ctrl().terminate(self.id(), &me);
    }

    /// A handle to this node for the node `for_node` to use.
    pub fn new_handle(&mut self, for_node: &NodeId) -> Handle<N> {
        let raw = self.handle_to_self_raw(for_node.clone());
        Handle::typed(raw)
    }

    fn handle_to_self_raw(&self, for_node: NodeId) -> RawHandle {
        let transport = self.ctrl().new_transport(self.id(), &for_node);
        RawHandle::new(self.id().clone(), N::TYPE_NAME, self.ctrl().machine().id().clone(), transport)
    }

    /// Passes `handle`, which this node holds, on to `for_node`: the new handle reaches the same
    /// node, and its delegation chain records `for_node` after this node. No message is needed.
    pub fn transfer_handle<M: Node>(&mut self, handle: &Handle<M>, for_node: &NodeId) -> Handle<M> {
        // A handle whose key is derived on demand gets it now: the transfer derives from it.
        let keyed = handle.raw().with_key();
        let transport = self.ctrl().transfer_transport(self.id(), keyed.transport(), for_node);
        Handle::typed(handle.raw().with_transport(transport))
    }

    /// 64 random bits from this node's own stream (seeded under the simulator).
    pub fn random_u64(&mut self) -> u64 {
        match &mut self.rng {
            Some(rng) => rng.next_u64(),
            None => self.ctrl().random_u64(self.id()),
        }
    }

    /// A random number in `range` (empty ranges give `range.start`).
    pub fn random_range(&mut self, range: Range<u64>) -> u64 {
        let span = range.end.saturating_sub(range.start);
        if span == 0 {
            return range.start;
        }
        let mut rng = crate::rng::DetRng::from_seed(self.random_u64());
        range.start + rng.below(span)
    }

    /// A random number in `[0, 1)`.
    pub fn random_f64(&mut self) -> f64 {
        (self.random_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A new id `prefix_<12 characters>` (seeded under the simulator).
    pub fn new_id(&mut self, prefix: &str) -> NodeId {
        self.ctrl().new_id(prefix)
    }

    /// `true` now and then when a simulation enables it, so that a node takes its rare paths in
    /// tests; always `false` on a real machine.
    pub fn buggify(&mut self) -> bool {
        self.ctrl().buggify(self.id())
    }

    /// Runs a task beside this node until it ends or the node does. The task gets a context of
    /// its own for this node, to sleep, send (to the node itself too) and so on; it never touches
    /// the node's state, which only handlers do.
    pub fn create_task<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(Context<'static, N>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let ctx = Context::for_runtime_owned(Arc::clone(self.ctrl()), self.id().clone());
        self.ctrl().create_task(self.id(), Box::pin(task(ctx)));
    }

    pub(crate) fn send_raw(&mut self, to: &RawHandle, message: crate::parcel::Parcel) {
        match message {
            crate::parcel::Parcel::Inline(inline) => self.ctrl().send_inline(self.id(), to, inline),
            message => self.ctrl().send(Envelope { from: self.id(), to, message }),
        }
    }
}

impl<N: Node> Context<'static, N> {
    /// For runtimes: a context that owns what it needs, for `async` handlers and tasks.
    pub fn for_runtime_owned(ctrl: Arc<dyn MachineController>, id: NodeId) -> Self {
        Context {
            place: Place::Owned(Box::new(OwnedPlace { ctrl, id, chain: Arc::from(Vec::new()) })),
            rng: None,
            _node: PhantomData,
        }
    }
}

/// The future of [`Context::sleep_ms`].
#[must_use = "a sleep does nothing unless awaited"]
pub struct Sleep {
    ctrl: Arc<dyn MachineController>,
    deadline: u64,
    registered: bool,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("deadline_micros", &self.deadline).finish()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.ctrl.now_micros() >= self.deadline {
            return Poll::Ready(());
        }
        if !self.registered {
            self.registered = true;
            self.ctrl.wake_at(self.deadline, cx.waker().clone());
        }
        Poll::Pending
    }
}
