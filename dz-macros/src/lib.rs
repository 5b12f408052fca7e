//! The attribute macros of dz: `#[node]` on a node's inherent impl block, and `#[handler]`,
//! `#[started]` and `#[stopping]` on its methods. Use them through `dz_core`
//! (`use dz_core::prelude::*;`), whose docs show them at work.
//!
//! From this impl block,
//!
//! ```text
//! #[node]
//! impl Ponger {
//!     /// Answers a ping.
//!     #[handler]
//!     fn ping(&mut self, ctx: &mut Context<Self>, reply_to: Handle<Pinger>, n: u64) { ... }
//! }
//! ```
//!
//! `#[node]` generates, next to the impl block (which it keeps, without the markers):
//!
//! - `pub enum PongerMessage { Ping { reply_to: Handle<Pinger>, n: u64 } }`: one variant per
//!   handler, named after it in CamelCase, whose fields are its arguments (a handler without
//!   arguments gives a unit variant); serde-serialisable, with the handlers' docs;
//! - `pub struct PongerHandle`, which `Handle<Ponger>` dereferences to, with one send method per
//!   handler: `handle.ping(ctx, reply_to, 7)` sends `PongerMessage::Ping`;
//! - `impl Node for Ponger`, whose dispatch is a `match` on `PongerMessage`, and
//!   `impl Message for PongerMessage`, whose names are `Ponger::ping` (with `#[node(name)]`'s
//!   name if given);
//! - `Debug` for both generated types, which prints a message as its name and its fields as JSON
//!   (`Ponger::ping {"n":7,...}`), so that the argument types need not be `Debug`.
//!
//! In the marked methods, `Context<Self>` becomes `Context<'_, Self>`: the same type, spelled so
//! that `rust_2018_idioms` does not warn about the hidden lifetime.
//!
//! Mistakes are reported all at once, each under the tokens that make it, and the rest of the
//! node is still generated so that the rest of the crate keeps compiling.
#![warn(missing_docs, rust_2018_idioms)]
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod ast;
mod attr;
mod case;
mod check;
mod errors;
mod expand;

use attr::Marker;

/// Turns an inherent impl block into a node.
///
/// Goes on `impl Ponger { ... }`, where `Ponger` is a `Serialize + Deserialize` struct or enum
/// that is not generic. Its methods marked `#[handler]` take messages, the one marked
/// `#[started]` runs before the first message, the one marked `#[stopping]` when the node is
/// terminated; other methods are left as they are.
///
/// Arguments, both optional:
///
/// - `name = "stable.Name"`: the node's type name, by which handles and machines know it;
///   by default the type's own name (`"Ponger"`). Give one to keep it stable across renames.
/// - `crate = "path::to::dz_core"`: where the generated code finds `dz_core`, for a crate that
///   renames it; by default `::dz_core`.
#[proc_macro_attribute]
pub fn node(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::node(args.into(), syn::parse_macro_input!(item as syn::Item)).into()
}

/// Marks a method of a `#[node]` impl block as a message handler.
///
/// A handler is `fn` or `async fn` and takes `&mut self`, then optionally the context
/// (`ctx: &mut Context<Self>`), then its arguments, each a plain name with an owned,
/// serde-serialisable type: they are the fields of its message. It returns nothing.
#[proc_macro_attribute]
pub fn handler(_args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced(Marker::Handler, item.into()).into()
}

/// Marks the method of a `#[node]` impl block that runs once, before the node's first message.
///
/// At most one per node; a plain `fn` that takes `&mut self` and optionally the context.
#[proc_macro_attribute]
pub fn started(_args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced(Marker::Started, item.into()).into()
}

/// Marks the method of a `#[node]` impl block that runs once, when the node is terminated.
///
/// At most one per node; a plain `fn` that takes `&mut self` and optionally the context.
#[proc_macro_attribute]
pub fn stopping(_args: TokenStream, item: TokenStream) -> TokenStream {
    expand::misplaced(Marker::Stopping, item.into()).into()
}
