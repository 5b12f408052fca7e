//! The semantic checks of a `#[node]` impl block: every rule a node, a handler or a hook must
//! follow, each broken one recorded under the user's tokens. The checks keep what is right, so
//! the rest of the node is still generated and the rest of the crate keeps compiling.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{GenericArgument, GenericParam, Ident, PathArguments, ReturnType, Type, TypePath};

use crate::ast::{Method, Node, ParamKind};
use crate::attr::{self, Marker};
use crate::errors::{tokens_to_string, Errors};

/// The methods a [`Handle`] already has, and so the names a handler cannot have: a handler
/// `id` would hide behind `Handle::id`. The same list as `RESERVED_HANDLE_METHODS` in
/// `dz-core/src/handle.rs`; a unit test below keeps the two in step.
///
/// [`Handle`]: https://docs.rs/dz-core/latest/dz_core/handle/struct.Handle.html
const RESERVED_HANDLE_METHODS: &[&str] = &[
    "id",
    "machine_id",
    "raw",
    "into_raw",
    "from_raw",
    "clone",
    "clone_from",
    "fmt",
    "eq",
    "ne",
    "hash",
    "serialize",
    "deserialize",
    "deref",
    "to_owned",
    "borrow",
    "into",
    "try_into",
    "type_id",
];

/// Checks `node`, recording every mistake, and gives back what can be generated: the node with
/// only its valid handlers and hooks, or `None` if the node itself cannot be one.
pub(crate) fn node<'a>(mut node: Node<'a>, errors: &mut Errors) -> Option<Node<'a>> {
    let node_ok = check_block(&node, errors);
    let handlers = std::mem::take(&mut node.handlers);
    let mut variants: Vec<(String, &Ident)> = Vec::new();
    for handler in handlers {
        // `&`, not `&&`: both checks run, so that every mistake is reported.
        let ok = check_method(&node, &handler, errors) & check_handler_name(&node, &handler, &variants, errors);
        variants.push((handler.variant_name(), handler.ident()));
        if ok {
            node.handlers.push(handler);
        }
    }
    let started = std::mem::take(&mut node.started);
    node.started = check_hooks(&node, started, errors);
    let stopping = std::mem::take(&mut node.stopping);
    node.stopping = check_hooks(&node, stopping, errors);
    node_ok.then_some(node)
}

/// Checks the impl block itself: one fixed, plainly named type.
fn check_block(node: &Node<'_>, errors: &mut Errors) -> bool {
    let before = errors.count();
    let block = node.block;
    let generic = "a node cannot be generic: a machine spawns a node by its type name, so a node is one fixed type";
    if !block.generics.params.is_empty() {
        errors.at(&block.generics, generic);
    } else if let Some(where_clause) = &block.generics.where_clause {
        errors.at(where_clause, generic);
    }
    let path = &node.self_ty.path;
    if path.leading_colon.is_some() || path.segments.len() != 1 {
        errors.at(
            node.self_ty,
            format_args!(
                "`#[node]` needs the node's type by its plain name, as in `impl {} {{ ... }}`, in the module that defines it",
                node.ident
            ),
        );
    } else if !path.segments[0].arguments.is_none() && block.generics.params.is_empty() {
        errors.at(&path.segments[0].arguments, generic);
    }
    if let Some(unsafety) = &block.unsafety {
        errors.at(unsafety, "a node's impl block cannot be `unsafe`");
    }
    if let Some(defaultness) = &block.defaultness {
        errors.at(defaultness, "a node's impl block cannot be `default`");
    }
    errors.count() == before
}

/// Checks the `#[started]` or `#[stopping]` methods: at most one, each well formed. Keeps the
/// first if it is valid.
fn check_hooks<'a>(node: &Node<'a>, hooks: Vec<Method<'a>>, errors: &mut Errors) -> Vec<Method<'a>> {
    let mut kept = Vec::new();
    let mut first: Option<&Ident> = None;
    for hook in hooks {
        if let Some(first) = first {
            errors.at(
                hook.marker_attr,
                format_args!("a node has at most one {} method, and `{first}` is one already", hook.marker),
            );
        }
        let ok = check_method(node, &hook, errors);
        if first.is_none() {
            first = Some(hook.ident());
            if ok {
                kept.push(hook);
            }
        }
    }
    kept
}

/// What a method is called in messages: "a handler", "a `#[started]` method".
fn noun(marker: Marker) -> String {
    match marker {
        Marker::Handler => "a handler".to_owned(),
        other => format!("a {other} method"),
    }
}

/// Checks a method's signature and parameters; whether it is valid.
fn check_method(node: &Node<'_>, method: &Method<'_>, errors: &mut Errors) -> bool {
    let before = errors.count();
    let sig = &method.func.sig;
    let noun = noun(method.marker);
    if let Some(constness) = &sig.constness {
        errors.at(constness, format_args!("{noun} cannot be `const`"));
    }
    if let Some(asyncness) = &sig.asyncness {
        match method.marker {
            Marker::Handler => {}
            Marker::Started => errors.at(
                asyncness,
                "`#[started]` cannot be `async`: it runs to its end before the node's first message; to start \
                 async work, send the node a message (`ctx.send_self(...)`) and handle it in an `async` handler",
            ),
            Marker::Stopping => errors.at(
                asyncness,
                "`#[stopping]` cannot be `async`: the node is gone when it returns, so it cannot wait for anything",
            ),
        }
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.at(
            unsafety,
            format_args!(
                "{noun} cannot be `unsafe`: the node's dispatch calls it with no way to uphold a safety contract"
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.at(abi, format_args!("{noun} cannot be `extern`"));
    }
    if let Some(variadic) = &sig.variadic {
        errors.at(variadic, format_args!("{noun} cannot be variadic"));
    }
    let generic = sig.generics.params.iter().find(|param| !matches!(param, GenericParam::Lifetime(_)));
    if let Some(param) = generic {
        errors.at(
            param,
            format_args!("{noun} cannot be generic: its arguments are the fields of a message, and each field has one fixed type"),
        );
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.at(where_clause, format_args!("{noun} cannot have a `where` clause"));
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if !matches!(&**ty, Type::Tuple(tuple) if tuple.elems.is_empty()) {
            match method.marker {
                Marker::Handler => errors.at(
                    ty,
                    "a handler returns nothing; its result would have nowhere to go — send a reply message instead",
                ),
                _ => errors.at(ty, format_args!("{noun} returns nothing")),
            }
        }
    }
    check_receiver(node, method, &noun, errors);
    check_params(node, method, &noun, errors);
    errors.count() == before
}

/// Checks that the method's first parameter is `&mut self`.
fn check_receiver(node: &Node<'_>, method: &Method<'_>, noun: &str, errors: &mut Errors) {
    let Some(receiver) = method.receiver else {
        let parens = method.func.sig.paren_token.span.join();
        errors.at_span(parens, format_args!("{noun} needs `&mut self` as its first parameter"));
        return;
    };
    let by_mut_ref = match &*receiver.ty {
        Type::Reference(reference) => reference.mutability.is_some() && is_self(node, &reference.elem),
        _ => false,
    };
    if !by_mut_ref {
        errors.at(receiver, format_args!("{noun} takes `&mut self`; found `{}`", tokens_to_string(receiver)));
    }
}

/// Checks the parameters after `self`: the context first if there is one, then (for handlers
/// only) the arguments.
fn check_params(node: &Node<'_>, method: &Method<'_>, noun: &str, errors: &mut Errors) {
    for (index, param) in method.params.iter().enumerate() {
        let ty = &*param.pat_type.ty;
        match (&param.kind, method.marker) {
            (ParamKind::Context, _) if index == 0 => check_context(node, ty, noun, errors),
            (ParamKind::Context, _) => errors.at(
                param.pat_type,
                format_args!(
                    "the context comes right after `&mut self`: `fn {}(&mut self, ctx: &mut Context<Self>, ...)`",
                    method.ident()
                ),
            ),
            (_, Marker::Started | Marker::Stopping) => errors.at(
                param.pat_type,
                format_args!(
                    "{} takes no arguments but the context: `fn {}(&mut self, ctx: &mut Context<Self>)`",
                    method.marker,
                    method.ident()
                ),
            ),
            (ParamKind::Unnamed, Marker::Handler) => errors.at(
                &param.pat_type.pat,
                "a handler argument needs a plain name, as in `n: u64`: it becomes a field of the message",
            ),
            (ParamKind::Arg(_), Marker::Handler) => {
                check_arg_type(ty, errors);
                for cfg in param.pat_type.attrs.iter().filter(|attr| attr::is_cfg(attr)) {
                    errors.at(cfg, "a handler argument cannot be conditional: it is a field of the message");
                }
            }
        }
    }
}

/// Checks that the context's type is `&mut Context<Self>` (or `Context<'_, Self>`, or the
/// node's own name for `Self`).
fn check_context(node: &Node<'_>, ty: &Type, noun: &str, errors: &mut Errors) {
    let Type::Reference(reference) = ty else {
        errors.at(
            ty,
            format_args!("the context is borrowed: write `ctx: &mut Context<Self>`; found `{}`", tokens_to_string(ty)),
        );
        return;
    };
    if reference.mutability.is_none() {
        errors.at(ty, format_args!("the context must be `&mut Context<Self>`; found `{}`", tokens_to_string(ty)));
        return;
    }
    let context = &*reference.elem;
    let for_self = match context {
        Type::Path(TypePath { qself: None, path }) => match path.segments.last().map(|last| &last.arguments) {
            Some(PathArguments::AngleBracketed(args)) => {
                let mut lifetimes = 0;
                let mut types = Vec::new();
                let mut others = 0;
                for arg in &args.args {
                    match arg {
                        GenericArgument::Lifetime(_) => lifetimes += 1,
                        GenericArgument::Type(ty) => types.push(ty),
                        _ => others += 1,
                    }
                }
                lifetimes <= 1 && others == 0 && types.len() == 1 && is_self(node, types[0])
            }
            _ => false,
        },
        _ => false,
    };
    if !for_self {
        let this = noun.replacen("a ", "this ", 1);
        errors.at(
            context,
            format_args!(
                "{this} is on `{}`, so its context is `Context<Self>`; found `{}`",
                node.ident,
                tokens_to_string(context)
            ),
        );
    }
}

/// Whether `ty` is `Self` or the node's own name.
fn is_self(node: &Node<'_>, ty: &Type) -> bool {
    match ty {
        Type::Path(TypePath { qself: None, path }) => {
            path.get_ident().is_some_and(|ident| ident == "Self" || ident == node.ident)
        }
        Type::Paren(paren) => is_self(node, &paren.elem),
        Type::Group(group) => is_self(node, &group.elem),
        _ => false,
    }
}

/// Checks that an argument's type is owned: it becomes a field of the message, which is sent
/// away and must not borrow anything. (Whether it is serde-serialisable, rustc checks through
/// the `assert_handler_arg` the generated code calls, under the same type.)
fn check_arg_type(ty: &Type, errors: &mut Errors) {
    let owned = "a handler argument travels in a message, so it must be owned";
    if let Type::Reference(reference) = ty {
        if reference.mutability.is_some() {
            // Most likely the context, under a name of its own.
            errors.at(
                ty,
                format_args!(
                    "{owned}, not a `&mut` borrow; if `{}` is the context, name its type `Context`: `ctx: &mut Context<Self>`",
                    tokens_to_string(&reference.elem)
                ),
            );
            return;
        }
        let suggestion = match &*reference.elem {
            Type::Path(TypePath { qself: None, path }) if path.is_ident("str") => "String".to_owned(),
            Type::Slice(slice) => format!("Vec<{}>", tokens_to_string(&slice.elem)),
            Type::Path(_) | Type::Array(_) | Type::Tuple(_) => tokens_to_string(&reference.elem),
            _ => {
                errors.at(ty, format_args!("{owned}; found `{}`", tokens_to_string(ty)));
                return;
            }
        };
        errors.at(ty, format_args!("{owned}: use `{suggestion}` instead of `{}`", tokens_to_string(ty)));
        return;
    }
    let tokens = ty.to_token_stream();
    if matches!(ty, Type::ImplTrait(_)) || contains_ident(&tokens, "impl") {
        errors.at(
            ty,
            "a handler argument cannot be `impl Trait`: it is a field of the message, which has one fixed type",
        );
    } else if contains_punct(&tokens, '&') {
        errors.at(ty, format_args!("{owned}, with no references inside; found `{}`", tokens_to_string(ty)));
    } else if let Some(lifetime) = borrowed_lifetime(&tokens) {
        errors.at(ty, format_args!("{owned}; found `{}`, which borrows for `'{lifetime}`", tokens_to_string(ty)));
    }
}

/// Whether `tokens` contain the identifier `name`, at any depth.
fn contains_ident(tokens: &TokenStream, name: &str) -> bool {
    tokens.clone().into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == name,
        TokenTree::Group(group) => contains_ident(&group.stream(), name),
        _ => false,
    })
}

/// Whether `tokens` contain the punctuation `ch`, at any depth.
fn contains_punct(tokens: &TokenStream, ch: char) -> bool {
    tokens.clone().into_iter().any(|token| match token {
        TokenTree::Punct(punct) => punct.as_char() == ch,
        TokenTree::Group(group) => contains_punct(&group.stream(), ch),
        _ => false,
    })
}

/// The name of the first lifetime in `tokens` other than `'static`, at any depth.
fn borrowed_lifetime(tokens: &TokenStream) -> Option<Ident> {
    let mut tokens = tokens.clone().into_iter();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Punct(punct) if punct.as_char() == '\'' => {
                if let Some(TokenTree::Ident(name)) = tokens.next() {
                    if name != "static" {
                        return Some(name);
                    }
                }
            }
            TokenTree::Group(group) => {
                if let Some(name) = borrowed_lifetime(&group.stream()) {
                    return Some(name);
                }
            }
            _ => {}
        }
    }
    None
}

/// Checks that a handler's name gives a message variant of its own and hides no method of
/// `Handle`; `earlier` holds the variant names of the handlers before it.
fn check_handler_name(
    node: &Node<'_>,
    handler: &Method<'_>,
    earlier: &[(String, &Ident)],
    errors: &mut Errors,
) -> bool {
    let ident = handler.ident();
    let name = ident.unraw().to_string();
    let variant = handler.variant_name();
    if RESERVED_HANDLE_METHODS.contains(&name.as_str()) {
        errors.at(
            ident,
            format_args!("a handler cannot be named `{name}`: `Handle<{}>` already has a method `{name}`", node.ident),
        );
        return false;
    }
    if !variant.starts_with(char::is_alphabetic) {
        errors.at(
            ident,
            format_args!("handler `{name}` has no letter to start the name of its message variant; rename it"),
        );
        return false;
    }
    if variant == "Self" {
        errors.at(
            ident,
            format_args!("handler `{name}` would become the message variant `Self`, which Rust reserves; rename it"),
        );
        return false;
    }
    if let Some((_, first)) = earlier.iter().find(|(other, _)| *other == variant) {
        errors.at(
            ident,
            format_args!(
                "handler `{name}` and handler `{}` both become the message variant `{variant}`; rename one",
                first.unraw()
            ),
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::RESERVED_HANDLE_METHODS;

    /// The macro cannot read dz-core's list, so this test reads its source and compares.
    #[test]
    fn reserved_names_match_dz_core() {
        let source = include_str!("../../dz-core/src/handle.rs");
        let file = syn::parse_file(source).expect("dz-core's handle.rs parses");
        let list = file
            .items
            .iter()
            .find_map(|item| match item {
                syn::Item::Const(item) if item.ident == "RESERVED_HANDLE_METHODS" => Some(&item.expr),
                _ => None,
            })
            .expect("dz-core defines RESERVED_HANDLE_METHODS");
        let mut theirs = Vec::new();
        collect_strings(list, &mut theirs);
        let mut ours: Vec<String> = RESERVED_HANDLE_METHODS.iter().map(|name| (*name).to_owned()).collect();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs);
    }

    fn collect_strings(expr: &syn::Expr, out: &mut Vec<String>) {
        match expr {
            syn::Expr::Reference(reference) => collect_strings(&reference.expr, out),
            syn::Expr::Array(array) => array.elems.iter().for_each(|elem| collect_strings(elem, out)),
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(string), .. }) => out.push(string.value()),
            other => panic!("unexpected expression in RESERVED_HANDLE_METHODS: {other:?}"),
        }
    }
}
