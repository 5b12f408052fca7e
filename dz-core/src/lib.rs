//! # dz
//!
//! dz is a framework for distributed systems made of very many very small *nodes*: plain structs
//! that hold state and talk to each other only by typed messages. A node is written once, with
//! `#[node]` on its `impl` block and `#[handler]` on the methods that take messages, and runs
//! unchanged on the deterministic simulator in [`sim`] (many machines in one thread, virtual
//! time, seeded everything) and on real machines.
//!
//! ```
//! use dz_core::prelude::*;
//! use dz_core::sim::Simulation;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Ponger { served: u64 }
//!
//! #[node]
//! impl Ponger {
//!     /// Answers a ping with a pong.
//!     #[handler]
//!     fn ping(&mut self, ctx: &mut Context<Self>, reply_to: Handle<Pinger>, n: u64) {
//!         self.served += 1;
//!         reply_to.pong(ctx, n); // typed: `Pinger` has a `pong(u64)` handler
//!     }
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Pinger { left: u64 }
//!
//! #[node]
//! impl Pinger {
//!     /// Starts the rally against `ponger`.
//!     #[handler]
//!     fn start(&mut self, ctx: &mut Context<Self>, ponger: Handle<Ponger>) {
//!         let me = ctx.new_handle(ponger.id());
//!         ponger.ping(ctx, me, self.left);
//!     }
//!
//!     /// Counts a pong down and pings again.
//!     #[handler]
//!     fn pong(&mut self, ctx: &mut Context<Self>, n: u64) {
//!         self.left = n - 1;
//!         let _ = ctx;
//!     }
//! }
//!
//! let mut sim = Simulation::new(42);
//! let (a, b) = (sim.add_machine(), sim.add_machine());
//! let ponger = sim.spawn(Ponger { served: 0 }, &a);
//! let pinger = sim.spawn(Pinger { left: 3 }, &b);
//! let for_pinger = sim.transfer_handle(&ponger, pinger.id());
//! sim.send(&pinger, PingerMessage::Start { ponger: for_pinger });
//! sim.run_until_idle();
//! assert_eq!(sim.inspect(&ponger, |p| p.served), Some(1));
//! assert_eq!(sim.inspect(&pinger, |p| p.left), Some(2));
//! ```
//!
//! ## What `#[node]` generates
//!
//! For a node `Ponger`:
//! - `PongerMessage`, an enum with one variant per handler, named after it in CamelCase, whose
//!   fields are the handler's arguments (`Ping { reply_to, n }`; a handler without arguments
//!   gives a unit variant). It is what travels, as JSON when it leaves its machine.
//! - `impl Node for Ponger`, whose dispatch is a `match` on that enum.
//! - `impl Message for PongerMessage`: each message's name for traces, and how it travels with
//!   its type erased ([`parcel`]): a variant with no fields, or with one field of a primitive
//!   type (`u64`, `bool`, `f64`, ...), inline in one word with no allocation; any other boxed.
//! - `PongerHandle`, the typed send methods that `Handle<Ponger>` dereferences to: one method per
//!   handler, taking the caller's context and the handler's arguments. Because the handle
//!   dereferences to an inherent type, calling them needs no import, and a message the node does
//!   not take, or arguments of the wrong types, are compile errors.
//!
//! ## Rules for node code
//!
//! Node code reaches the world only through its [`Context`]: time, sleeping, randomness,
//! spawning, terminating and messaging. It must not read the system clock, sleep on its own,
//! spawn threads, use an unseeded random generator, or let a `HashMap`'s iteration order decide
//! what it does; under the simulator each of these breaks reproducibility.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod base64;
pub mod context;
pub mod controller;
pub mod driver;
pub mod error;
pub mod handle;
pub mod ids;
pub mod node;
pub mod parcel;
pub mod reliable;
pub mod rng;
pub mod security;
pub mod sim;

pub use context::{Context, Sleep};
pub use controller::{MachineController, TimerToken};
pub use driver::Driver;
pub use error::HandleError;
pub use handle::{Handle, MachineHandle, RawHandle, Transport};
pub use ids::{MachineId, NodeId};
pub use node::{Handled, Message, Node};

/// The `#[node]` attribute: turns an inherent `impl` block into a node. See the [crate docs](crate).
pub use dz_macros::node;

/// Marks a method of a `#[node]` impl block as a message handler.
pub use dz_macros::handler;

/// Marks the method of a `#[node]` impl block that runs once before the node's first message.
pub use dz_macros::started;

/// Marks the method of a `#[node]` impl block that runs once when the node is terminated.
pub use dz_macros::stopping;

/// What node code needs: `use dz_core::prelude::*;`.
pub mod prelude {
    pub use crate::{handler, node, started, stopping};
    pub use crate::{Context, Handle, MachineHandle, NodeId, TimerToken};
}

/// Helpers for the code `#[node]` generates. Not a public API: may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use std::boxed::Box;
    pub use std::pin::Pin;

    pub use crate::controller::AnyMessage;
    pub use crate::handle::RESERVED_HANDLE_METHODS;
    pub use crate::node::{HandleApi, Handled, Message, Node, NodeFuture};
    pub use crate::parcel::{InlineKind, InlineMessage, Parcel, Word};
    pub use crate::rng::stable_hash;
    pub use crate::{Context, RawHandle};

    /// Sends `msg` to the node of type `N` behind `to`, from the node of `ctx`.
    pub fn send<N: Node, C: Node>(ctx: &mut Context<'_, C>, to: &RawHandle, msg: N::Message) {
        ctx.send_raw(to, Message::into_parcel(msg));
    }

    /// A handler argument travels in a message, so its type must be `Serialize`. The generated
    /// message enum serialises each argument through [`serialize_arg`], whose bound is this
    /// trait, so that a type that is not serialisable gets this one error, under its own name.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a handler argument: it travels in a message, so it must implement `Serialize`",
        label = "not `Serialize`",
        note = "derive it with `#[derive(Serialize, Deserialize)]`, or take a type that has both"
    )]
    pub trait SerializeArg: serde::Serialize {}

    impl<T: serde::Serialize + ?Sized> SerializeArg for T {}

    /// A handler argument travels in a message, so its type must be `Deserialize` (owned: any
    /// lifetime will do); see [`SerializeArg`].
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a handler argument: it travels in a message, so it must implement `Deserialize`",
        label = "not `Deserialize`",
        note = "derive it with `#[derive(Serialize, Deserialize)]`, or take a type that has both"
    )]
    pub trait DeserializeArg: serde::de::DeserializeOwned {}

    impl<T: serde::de::DeserializeOwned> DeserializeArg for T {}

    /// Serialises one argument of a message: `#[serde(serialize_with = "...")]` on its field.
    pub fn serialize_arg<T: SerializeArg + ?Sized, S: serde::Serializer>(
        arg: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        arg.serialize(serializer)
    }

    /// Deserialises one argument of a message: `#[serde(deserialize_with = "...")]` on its field.
    pub fn deserialize_arg<'de, T: DeserializeArg, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        T::deserialize(deserializer)
    }

    /// A handler argument travels in a message, which a runtime may move to another thread.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a handler argument: it travels in a message, so it must be `Send`",
        label = "not `Send`",
        note = "take a type that is `Send`: `Arc` rather than `Rc`, `Mutex` rather than `RefCell`"
    )]
    pub trait SendArg: Send + 'static {}

    impl<T: Send + 'static> SendArg for T {}

    /// Compiles only if `T` is `Send`; the generated code calls it under each argument's type.
    pub const fn assert_send_arg<T: SendArg>() {}

    /// Writes `msg` for the generated `Debug` of a message enum: its name, then its fields as
    /// JSON (`Ponger::ping {"n":7}`), so that printing a message needs no `Debug` of its
    /// argument types.
    pub fn fmt_message<M: Message>(msg: &M, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(msg.name())?;
        match serde_json::to_value(msg) {
            // `{"Ping":{"n":7}}`: a variant with fields.
            Ok(serde_json::Value::Object(variant)) => match variant.into_iter().next() {
                Some((_, fields)) => write!(f, " {fields}"),
                None => Ok(()),
            },
            // `"Reset"`: a unit variant, which its name says all about.
            Ok(_) => Ok(()),
            Err(error) => write!(f, " <cannot serialise: {error}>"),
        }
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
