//! Attributes: the arguments of `#[node(...)]`, and the markers `#[handler]`, `#[started]` and
//! `#[stopping]` on the methods of a `#[node]` impl block.

use std::fmt;

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Attribute, Expr, ImplItem, Item, LitStr, Meta, Path, Token};

use crate::errors::{tokens_to_string, Errors};

/// `#[node(name = "...")]`: the node's stable type name.
pub(crate) const NAME: &str = "name";

/// `#[node(crate = "...")]`: the path to `dz_core`, for crates that rename it.
pub(crate) const CRATE: &str = "crate";

/// The arguments of `#[node(...)]`, each kept with its tokens for error spans.
#[derive(Default)]
pub(crate) struct NodeArgs {
    /// `name = "..."`: the node's stable type name; by default the type's own name.
    pub(crate) name: Option<LitStr>,
    /// `crate = "..."`: the path to `dz_core`; by default `::dz_core`.
    pub(crate) krate: Option<Path>,
}

impl NodeArgs {
    /// Parses the tokens between the parentheses of `#[node(...)]`, recording every mistake
    /// (unknown or repeated keys, bad values) and keeping the arguments that are right.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut parsed = NodeArgs::default();
        let parser = syn::meta::parser(|meta| {
            if let Err(error) = parsed.parse_one(&meta) {
                errors.push(error);
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(args) {
            errors.push(error);
        }
        parsed
    }

    /// Parses one `key = value` argument.
    fn parse_one(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident(NAME) {
            let name = string_value(meta, NAME, "stable.Name")?;
            if name.value().is_empty() {
                return Err(syn::Error::new(name.span(), "a node's `name` cannot be empty"));
            }
            set_once(&mut self.name, name, meta, NAME)
        } else if meta.path.is_ident(CRATE) {
            let string = string_value(meta, CRATE, "::dz_core")?;
            let path = string.parse::<Path>().map_err(|_| {
                syn::Error::new(string.span(), "`crate` takes a path to `dz_core`, as in `crate = \"::dz_core\"`")
            })?;
            set_once(&mut self.krate, path, meta, CRATE)
        } else {
            let key = meta.path.get_ident().map_or_else(|| tokens_to_string(&meta.path), ToString::to_string);
            Err(meta.error(format_args!(
                "unknown `#[node]` argument `{key}`; expected `{NAME} = \"...\"` or `{CRATE} = \"...\"`"
            )))
        }
    }
}

/// The string of `key = "..."`, with an error that shows `example` if the value is not a string.
fn string_value(meta: &ParseNestedMeta<'_>, key: &str, example: &str) -> syn::Result<LitStr> {
    let expected = || format!("`{key}` takes a string, as in `{key} = \"{example}\"`");
    let value = meta.value().map_err(|error| syn::Error::new(error.span(), expected()))?;
    match value.parse::<Expr>()? {
        Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(string), .. }) => Ok(string),
        other => Err(syn::Error::new_spanned(other, expected())),
    }
}

/// Stores `value` in `slot`, or fails on the key if an earlier argument already set it.
fn set_once<T>(slot: &mut Option<T>, value: T, meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new_spanned(&meta.path, format_args!("duplicate `#[node]` argument `{key}`")));
    }
    *slot = Some(value);
    Ok(())
}

/// Skips what is left of an argument after a mistake (`= value` or `(...)`), so that the
/// arguments after it are still read and checked.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.input.parse::<Token![=]>()?;
        meta.input.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}

/// The attributes that mark methods of a `#[node]` impl block.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    /// `#[handler]`: the method takes a message.
    Handler,
    /// `#[started]`: the method runs before the node's first message.
    Started,
    /// `#[stopping]`: the method runs when the node is terminated.
    Stopping,
}

impl Marker {
    /// The marker that `attr` is, if it is one: recognised by the last segment of its path, so
    /// `#[handler]` and `#[dz_core::handler]` are both markers.
    pub(crate) fn of(attr: &Attribute) -> Option<Marker> {
        let last = attr.path().segments.last()?;
        if last.ident == "handler" {
            Some(Marker::Handler)
        } else if last.ident == "started" {
            Some(Marker::Started)
        } else if last.ident == "stopping" {
            Some(Marker::Stopping)
        } else {
            None
        }
    }

    /// Records an error if the marker `attr` has arguments: markers take none.
    pub(crate) fn check_no_arguments(self, attr: &Attribute, errors: &mut Errors) {
        match &attr.meta {
            Meta::Path(_) => {}
            Meta::List(list) => errors.at_span(list.delimiter.span().join(), format_args!("{self} takes no arguments")),
            Meta::NameValue(value) => errors.at(&value.value, format_args!("{self} takes no arguments")),
        }
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Marker::Handler => "`#[handler]`",
            Marker::Started => "`#[started]`",
            Marker::Stopping => "`#[stopping]`",
        })
    }
}

/// The attributes of an impl block's item.
pub(crate) fn item_attrs(item: &ImplItem) -> &[Attribute] {
    match item {
        ImplItem::Const(item) => &item.attrs,
        ImplItem::Fn(item) => &item.attrs,
        ImplItem::Type(item) => &item.attrs,
        ImplItem::Macro(item) => &item.attrs,
        _ => &[],
    }
}

/// `item` as it is re-emitted: without the markers on the items of an impl block (they are
/// inert tokens for `#[node]` and would otherwise run as attribute macros of their own and
/// complain that they are misplaced), and without a repeated `#[node]` on the block.
pub(crate) fn strip(mut item: Item) -> Item {
    let Item::Impl(block) = &mut item else {
        return item;
    };
    block.attrs.retain(|attr| !is_node(attr));
    for item in &mut block.items {
        let attrs = match item {
            ImplItem::Const(item) => &mut item.attrs,
            ImplItem::Fn(item) => &mut item.attrs,
            ImplItem::Type(item) => &mut item.attrs,
            ImplItem::Macro(item) => &mut item.attrs,
            _ => continue,
        };
        attrs.retain(|attr| Marker::of(attr).is_none());
    }
    item
}

/// Whether `attr` is `#[node]` (or `#[dz_core::node]`): on a block that already has one, a
/// mistake.
pub(crate) fn is_node(attr: &Attribute) -> bool {
    attr.path().segments.last().is_some_and(|last| last.ident == "node")
}

/// Whether `attr` is `#[cfg(...)]`; those of a handler also apply to what is generated for it.
pub(crate) fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg")
}

/// Whether `attr` is a doc comment; those of a handler are copied onto what is generated for it.
pub(crate) fn is_doc(attr: &Attribute) -> bool {
    attr.path().is_ident("doc")
}
