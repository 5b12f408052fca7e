//! The typed model of a `#[node]` impl block: which methods are handlers and hooks, and what
//! each of their parameters is. It borrows the syn tree, so every error and every generated
//! token can keep the user's spans.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::{Attribute, FnArg, Ident, ImplItem, ImplItemFn, Item, ItemImpl, Pat, PatType, Receiver, Type, TypePath};

use crate::attr::{self, Marker, NodeArgs};
use crate::case::snake_to_camel;
use crate::errors::{tokens_to_string, Errors};

/// A `#[node]` impl block: `impl Ponger { ... }`.
pub(crate) struct Node<'a> {
    /// The whole impl block.
    pub(crate) block: &'a ItemImpl,
    /// The self type as written: `Ponger`.
    pub(crate) self_ty: &'a TypePath,
    /// The self type's name, which the generated names derive from.
    pub(crate) ident: &'a Ident,
    /// The arguments of `#[node(...)]`.
    pub(crate) args: NodeArgs,
    /// The `#[handler]` methods, in order.
    pub(crate) handlers: Vec<Method<'a>>,
    /// The `#[started]` methods: at most one, once checked.
    pub(crate) started: Vec<Method<'a>>,
    /// The `#[stopping]` methods: at most one, once checked.
    pub(crate) stopping: Vec<Method<'a>>,
}

impl<'a> Node<'a> {
    /// The model of `item`, or `None` (with the mistake recorded) if `item` is not an inherent
    /// impl block of a named type.
    pub(crate) fn from_syn(item: &'a Item, args: NodeArgs, errors: &mut Errors) -> Option<Self> {
        let block = inherent_impl(item, errors)?;
        let Type::Path(self_ty @ TypePath { qself: None, path }) = &*block.self_ty else {
            errors.at(
                &block.self_ty,
                format_args!(
                    "`#[node]` needs the node's type by its name, as in `impl Ponger {{ ... }}`; found `{}`",
                    tokens_to_string(&block.self_ty)
                ),
            );
            return None;
        };
        let ident = &path.segments.last()?.ident;
        let mut node =
            Node { block, self_ty, ident, args, handlers: Vec::new(), started: Vec::new(), stopping: Vec::new() };
        for attr in block.attrs.iter().filter(|attr| attr::is_node(attr)) {
            errors.at(attr, "duplicate `#[node]`: one on the impl block is enough");
        }
        for item in &block.items {
            if let Some(method) = Method::from_impl_item(item, errors) {
                match method.marker {
                    Marker::Handler => node.handlers.push(method),
                    Marker::Started => node.started.push(method),
                    Marker::Stopping => node.stopping.push(method),
                }
            }
        }
        Some(node)
    }
}

/// `item` as an inherent impl block, or the mistake recorded under its most telling tokens.
fn inherent_impl<'a>(item: &'a Item, errors: &mut Errors) -> Option<&'a ItemImpl> {
    let place = |kind: &str, name: &dyn std::fmt::Display| {
        format!("`#[node]` goes on the node's inherent impl block, not on its {kind}: write `#[node] impl {name} {{ ... }}`")
    };
    match item {
        Item::Impl(block) => match &block.trait_ {
            None => Some(block),
            Some((_, trait_path, _)) => {
                let name = tokens_to_string(&block.self_ty);
                errors.at(
                    trait_path,
                    format_args!(
                        "`#[node]` goes on the node's inherent impl block, not on a trait impl: write `#[node] impl {name} {{ ... }}`"
                    ),
                );
                None
            }
        },
        Item::Struct(item) => {
            errors.at(definition(&item.struct_token, &item.ident), place("struct", &item.ident));
            None
        }
        Item::Enum(item) => {
            errors.at(definition(&item.enum_token, &item.ident), place("enum", &item.ident));
            None
        }
        Item::Union(item) => {
            errors.at(definition(&item.union_token, &item.ident), place("union", &item.ident));
            None
        }
        Item::Fn(item) => {
            errors.at(
                &item.sig.ident,
                "`#[node]` goes on a node's inherent impl block, as in `#[node] impl Ponger { ... }`; use `#[handler]` to mark a method of it",
            );
            None
        }
        _ => {
            errors.at_span(
                Span::call_site(),
                "`#[node]` goes on a node's inherent impl block, as in `#[node] impl Ponger { ... }`",
            );
            None
        }
    }
}

/// The tokens `struct Ponger`: where a definition is named.
fn definition(keyword: &impl ToTokens, ident: &Ident) -> TokenStream {
    quote!(#keyword #ident)
}

/// A method of the impl block marked `#[handler]`, `#[started]` or `#[stopping]`.
pub(crate) struct Method<'a> {
    /// Which marker it carries.
    pub(crate) marker: Marker,
    /// The marker attribute itself.
    pub(crate) marker_attr: &'a Attribute,
    /// The method.
    pub(crate) func: &'a ImplItemFn,
    /// Its `self` parameter, if its first parameter is one.
    pub(crate) receiver: Option<&'a Receiver>,
    /// Its other parameters, in order.
    pub(crate) params: Vec<Param<'a>>,
}

impl<'a> Method<'a> {
    /// The marked method of `item`, or `None` if `item` carries no marker or (recorded as a
    /// mistake) is not a method.
    fn from_impl_item(item: &'a ImplItem, errors: &mut Errors) -> Option<Self> {
        let mut markers = attr::item_attrs(item).iter().filter_map(|attr| Some((attr, Marker::of(attr)?)));
        let (marker_attr, marker) = markers.next()?;
        marker.check_no_arguments(marker_attr, errors);
        for (other_attr, other) in markers {
            other.check_no_arguments(other_attr, errors);
            if other == marker {
                errors.at(other_attr, format_args!("duplicate {other}"));
            } else {
                errors.at(
                    other_attr,
                    format_args!("a method can carry only one of `#[handler]`, `#[started]` and `#[stopping]`; this one is {marker} already"),
                );
            }
        }
        let ImplItem::Fn(func) = item else {
            errors.at(marker_attr, format_args!("{marker} goes on a method"));
            return None;
        };
        let mut inputs = func.sig.inputs.iter().peekable();
        let receiver = match inputs.peek() {
            Some(FnArg::Receiver(receiver)) => {
                inputs.next();
                Some(receiver)
            }
            _ => None,
        };
        let params = inputs
            .filter_map(|input| match input {
                FnArg::Typed(pat_type) => Some(Param::new(pat_type)),
                FnArg::Receiver(_) => None, // rustc rejects a `self` that is not first
            })
            .collect();
        Some(Method { marker, marker_attr, func, receiver, params })
    }

    /// The method's name.
    pub(crate) fn ident(&self) -> &'a Ident {
        &self.func.sig.ident
    }

    /// The name of the method's message variant, derived from the method's: `do_it` → `DoIt`.
    /// Only a valid identifier once the method is checked.
    pub(crate) fn variant_name(&self) -> String {
        snake_to_camel(&self.ident().unraw().to_string())
    }

    /// The method's message variant, spanned on the method's name.
    ///
    /// # Panics
    ///
    /// If the method has not passed the checks, whose name gives no valid variant name.
    pub(crate) fn variant(&self) -> Ident {
        Ident::new(&self.variant_name(), self.ident().span())
    }

    /// Whether the method takes the context (as its first parameter after `self`, once checked).
    pub(crate) fn takes_ctx(&self) -> bool {
        self.params.first().is_some_and(|param| matches!(param.kind, ParamKind::Context))
    }

    /// The method's arguments: each parameter but the context, with its name and type.
    pub(crate) fn args(&self) -> impl Iterator<Item = (&'a Ident, &'a Type)> + '_ {
        self.params.iter().filter_map(|param| match param.kind {
            ParamKind::Arg(ident) => Some((ident, &*param.pat_type.ty)),
            ParamKind::Context | ParamKind::Unnamed => None,
        })
    }

    /// The method's `#[cfg(...)]` attributes.
    pub(crate) fn cfgs(&self) -> impl Iterator<Item = &'a Attribute> {
        self.func.attrs.iter().filter(|attr| attr::is_cfg(attr))
    }

    /// The method's doc comments.
    pub(crate) fn docs(&self) -> impl Iterator<Item = &'a Attribute> {
        self.func.attrs.iter().filter(|attr| attr::is_doc(attr))
    }
}

/// A parameter of a marked method, other than `self`.
pub(crate) struct Param<'a> {
    /// The parameter as written: `n: u64`.
    pub(crate) pat_type: &'a PatType,
    /// What the parameter is.
    pub(crate) kind: ParamKind<'a>,
}

/// What a parameter of a marked method is.
pub(crate) enum ParamKind<'a> {
    /// The context: a parameter whose type is (a reference to) a path ending in `Context`.
    Context,
    /// An argument with a plain name, which becomes a field of the message: `n: u64`.
    Arg(&'a Ident),
    /// An argument whose pattern is not a plain name (`_`, `(a, b)`, `ref n`).
    Unnamed,
}

impl<'a> Param<'a> {
    fn new(pat_type: &'a PatType) -> Self {
        let kind = if is_context(&pat_type.ty) {
            ParamKind::Context
        } else {
            match &*pat_type.pat {
                Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => ParamKind::Arg(&pat.ident),
                _ => ParamKind::Unnamed,
            }
        };
        Param { pat_type, kind }
    }
}

/// Whether `ty` names the context: a path whose last segment is `Context`, behind any references.
fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Reference(reference) => is_context(&reference.elem),
        Type::Paren(paren) => is_context(&paren.elem),
        Type::Group(group) => is_context(&group.elem),
        Type::Path(TypePath { qself: None, path }) => path.segments.last().is_some_and(|last| last.ident == "Context"),
        _ => false,
    }
}
