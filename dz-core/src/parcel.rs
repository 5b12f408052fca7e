//! [`Parcel`]: a message with its type erased, as it travels from a send to its handler.
//!
//! Most messages are small: a handler without arguments, or with one number. Boxing each of
//! them (`Box<dyn AnyMessage>`) costs a `malloc` and a `free` per message, which is about half
//! of what a local message costs when many are in flight (glibc's fast paths stop helping once a
//! mailbox holds a million boxes). So a parcel carries a message in one of two ways:
//!
//! - **inline**: a variant with no fields, or with one field of a primitive type (`u64`, `i32`,
//!   `bool`, `char`, `f64`, ...), travels as that field's bits in one word beside a `&'static`
//!   [`InlineKind`] that names its message type and variant. No allocation, nothing to drop.
//! - **boxed**: any other message, as a `Box<dyn AnyMessage>`.
//!
//! `#[node]` generates [`Message::into_parcel`] and [`Message::from_inline`] for each message
//! enum, choosing inline for the variants that fit. It is all safe code: an inline message is
//! rebuilt by the generated `match`, never reinterpreted from bytes. A receiver takes the message
//! back only after checking the parcel's type ([`Parcel::take`]), against the kind's record of
//! the type it was made by.
//!
//! ```
//! use dz_core::parcel::Parcel;
//! use dz_core::prelude::*;
//! use dz_core::Message;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize)] pub struct Counter { total: u64 }
//! #[node]
//! impl Counter {
//!     #[handler]
//!     fn add(&mut self, n: u64) { self.total += n; }
//!
//!     #[handler]
//!     fn rename(&mut self, name: String) { let _ = name; }
//! }
//!
//! let add = CounterMessage::Add { n: 5 }.into_parcel();
//! assert!(matches!(add, Parcel::Inline(_))); // one `u64`: no allocation
//! assert_eq!(add.name(), "Counter::add");
//! assert!(matches!(add.take::<CounterMessage>(), Ok(CounterMessage::Add { n: 5 })));
//!
//! let rename = CounterMessage::Rename { name: "c".into() }.into_parcel();
//! assert!(matches!(rename, Parcel::Boxed(_))); // a `String`: boxed
//! ```

use std::any::TypeId;
use std::fmt;

use crate::controller::AnyMessage;
use crate::node::Message;

/// A message with its type erased: inline (one word, no allocation) or boxed. See the
/// [module docs](self).
pub enum Parcel {
    /// A message whose variant fits one word.
    Inline(InlineMessage),
    /// Any other message.
    Boxed(Box<dyn AnyMessage>),
}

/// A message variant carried inline: its kind and one word of field bits.
#[derive(Clone, Copy)]
pub struct InlineMessage {
    kind: &'static InlineKind,
    word: u64,
}

/// What an inline message is: the message type that made it, the variant, and the variant's
/// name and its hash (for traces and logs). `#[node]` makes one `static` per inline variant.
#[derive(Debug)]
pub struct InlineKind {
    /// The [`TypeId`] of the message enum (a function: `TypeId::of` is not `const` on the
    /// supported compilers).
    type_id: fn() -> TypeId,
    /// Which variant, as the generated [`Message::from_inline`] numbers them.
    variant: u32,
    name: &'static str,
    name_hash: u64,
    /// The message as JSON (rebuilt, then serialised).
    to_json: fn(InlineMessage) -> Result<Vec<u8>, serde_json::Error>,
}

impl InlineKind {
    /// The kind of variant number `variant` of `M`, named `name` (its [`Message::name`]).
    pub const fn new<M: Message>(variant: u32, name: &'static str) -> Self {
        InlineKind {
            type_id: TypeId::of::<M>,
            variant,
            name,
            name_hash: crate::rng::stable_hash(name.as_bytes()),
            to_json: inline_to_json::<M>,
        }
    }

    /// The variant's name (`NodeType::handler`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether this kind was made for message type `M`.
    ///
    /// The kind keeps `TypeId::of::<M>` as a function. The same function at the same address is
    /// `M`'s for sure (the instances for two types return different constants, so they are never
    /// merged), which settles the common case without a call and without reading a 16-byte
    /// `TypeId` back from memory; a different address may still be `M`'s (an instance can be
    /// duplicated across codegen units), so then the two `TypeId`s are compared.
    #[inline(always)]
    fn is<M: Message>(&self) -> bool {
        let theirs: fn() -> TypeId = TypeId::of::<M>;
        self.type_id as usize == theirs as usize || (self.type_id)() == TypeId::of::<M>()
    }
}

fn inline_to_json<M: Message>(inline: InlineMessage) -> Result<Vec<u8>, serde_json::Error> {
    match M::from_inline(inline) {
        Some(message) => serde_json::to_vec(&message),
        None => Err(serde::ser::Error::custom("an inline message that its own type does not take back")),
    }
}

impl InlineMessage {
    /// Variant `kind`, with its field's bits `word` (0 for a variant without fields).
    pub fn new(kind: &'static InlineKind, word: u64) -> Self {
        InlineMessage { kind, word }
    }

    /// Whether the message is of type `M` (not through JSON: its own type).
    #[inline]
    pub fn is<M: Message>(&self) -> bool {
        self.kind.is::<M>()
    }

    /// The variant's kind.
    pub fn kind(&self) -> &'static InlineKind {
        self.kind
    }

    /// The variant's number (what the generated [`Message::from_inline`] matches on).
    pub fn variant(&self) -> u32 {
        self.kind.variant
    }

    /// The field's bits.
    pub fn word(&self) -> u64 {
        self.word
    }
}

impl fmt::Debug for InlineMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineMessage").field("name", &self.kind.name).field("word", &self.word).finish()
    }
}

/// A field type that travels inline: its value as one word and back. Implemented for the
/// primitive number types, `bool` and `char`; `#[node]` uses it for the variants it inlines.
pub trait Word: Sized {
    /// The value's bits.
    fn to_word(self) -> u64;
    /// The value back from what [`Word::to_word`] made.
    fn from_word(word: u64) -> Self;
}

macro_rules! word_as {
    ($($ty:ty),*) => {$(
        impl Word for $ty {
            #[inline(always)]
            fn to_word(self) -> u64 {
                self as u64
            }
            #[inline(always)]
            fn from_word(word: u64) -> Self {
                word as $ty
            }
        }
    )*};
}

word_as!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl Word for bool {
    #[inline(always)]
    fn to_word(self) -> u64 {
        u64::from(self)
    }
    #[inline(always)]
    fn from_word(word: u64) -> Self {
        word != 0
    }
}

impl Word for char {
    #[inline(always)]
    fn to_word(self) -> u64 {
        u64::from(u32::from(self))
    }
    #[inline(always)]
    fn from_word(word: u64) -> Self {
        // Only ever given what `to_word` made, which is a valid `char`.
        char::from_u32(word as u32).unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

impl Word for f32 {
    #[inline(always)]
    fn to_word(self) -> u64 {
        u64::from(self.to_bits())
    }
    #[inline(always)]
    fn from_word(word: u64) -> Self {
        f32::from_bits(word as u32)
    }
}

impl Word for f64 {
    #[inline(always)]
    fn to_word(self) -> u64 {
        self.to_bits()
    }
    #[inline(always)]
    fn from_word(word: u64) -> Self {
        f64::from_bits(word)
    }
}

impl Parcel {
    /// `message`, inline if its variant fits one word ([`Message::into_parcel`]).
    #[inline(always)]
    pub fn new<M: Message>(message: M) -> Self {
        message.into_parcel()
    }

    /// `message`, boxed.
    pub fn boxed(message: Box<dyn AnyMessage>) -> Self {
        Parcel::Boxed(message)
    }

    /// The message's name (`NodeType::handler`).
    pub fn name(&self) -> &'static str {
        match self {
            Parcel::Inline(inline) => inline.kind.name,
            Parcel::Boxed(message) => message.name(),
        }
    }

    /// The message's name and its [`stable_hash`](crate::rng::stable_hash), for traces.
    #[inline]
    pub fn name_and_hash(&self) -> (&'static str, u64) {
        match self {
            Parcel::Inline(inline) => (inline.kind.name, inline.kind.name_hash),
            Parcel::Boxed(message) => message.name_and_hash(),
        }
    }

    /// The message as JSON.
    ///
    /// # Errors
    ///
    /// When the message's `Serialize` implementation fails.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Parcel::Inline(inline) => (inline.kind.to_json)(*inline),
            Parcel::Boxed(message) => message.to_json(),
        }
    }

    /// Whether the message is of type `M` (not through JSON: its own type).
    pub fn is<M: Message>(&self) -> bool {
        self.type_id() == TypeId::of::<M>()
    }

    fn type_id(&self) -> TypeId {
        match self {
            Parcel::Inline(inline) => (inline.kind.type_id)(),
            Parcel::Boxed(message) => message.message_type_id(),
        }
    }

    /// The message, if it is of type `M`; the parcel back otherwise.
    ///
    /// # Errors
    ///
    /// The parcel itself, unopened, when it holds another type.
    #[inline]
    pub fn take<M: Message>(self) -> Result<M, Parcel> {
        match self {
            Parcel::Inline(inline) if inline.kind.is::<M>() => M::from_inline(inline).ok_or(self),
            Parcel::Boxed(message) if message.message_type_id() == TypeId::of::<M>() => {
                let name = message.name();
                match message.into_any().downcast::<M>() {
                    Ok(message) => Ok(*message),
                    // Checked just above: only a hand-written `AnyMessage` that lies about its
                    // type gets here, and its value is gone.
                    Err(_) => Err(Parcel::Boxed(Box::new(Unopened { name }))),
                }
            }
            other => Err(other),
        }
    }
}

/// What is left of a boxed message whose `AnyMessage` implementation named a type it was not:
/// its name, for the error, and JSON that decodes as nothing.
struct Unopened {
    name: &'static str,
}

impl AnyMessage for Unopened {
    fn name(&self) -> &'static str {
        self.name
    }

    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        Err(serde::ser::Error::custom("a message whose type changed while it was checked"))
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl From<Box<dyn AnyMessage>> for Parcel {
    fn from(message: Box<dyn AnyMessage>) -> Self {
        Parcel::Boxed(message)
    }
}

impl fmt::Debug for Parcel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parcel::Inline(inline) => inline.fmt(f),
            Parcel::Boxed(message) => f.debug_tuple("Boxed").field(&message.name()).finish(),
        }
    }
}
