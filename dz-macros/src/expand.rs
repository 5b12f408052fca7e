//! Code generation: from a checked [`Node`] to the message enum, the typed send methods and the
//! `Node` implementation. Every path is absolute (`::core::…`, or the `dz_core` path through
//! its `__private` module), so the code means the same under any imports.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, GenericArgument, ImplItem, Item, Lifetime, LitStr, PathArguments, Type, TypePath};

use crate::ast::{Method, Node};
use crate::attr::{self, Marker, NodeArgs};
use crate::check;
use crate::errors::{tokens_to_string, Errors};

/// `#[node]`: the user's impl block without its markers, what can be generated from it, and
/// the errors, all together, so that a mistake in one handler leaves the rest of the node (and
/// of the crate) compiling.
pub(crate) fn node(args: TokenStream, item: Item) -> TokenStream {
    let mut errors = Errors::new();
    let args = NodeArgs::parse(args, &mut errors);
    let generated = Node::from_syn(&item, args, &mut errors)
        .and_then(|node| check::node(node, &mut errors))
        .map(|node| Generator::new(&node).into_token_stream());
    let errors = errors.into_compile_errors();
    let item = user_item(item);
    quote!(#item #generated #errors)
}

/// The user's item as it is emitted again: without the markers, and with the context's
/// lifetime spelled out (`Context<Self>` → `Context<'_, Self>`) in the marked methods, so that
/// the short form that dz documents raises no `elided_lifetimes_in_paths` warning (a lint of
/// `rust_2018_idioms`).
fn user_item(mut item: Item) -> Item {
    if let Item::Impl(block) = &mut item {
        let marked = block.items.iter_mut().filter_map(|item| match item {
            ImplItem::Fn(func) if func.attrs.iter().any(|attr| Marker::of(attr).is_some()) => Some(func),
            _ => None,
        });
        for func in marked {
            for input in &mut func.sig.inputs {
                if let FnArg::Typed(pat_type) = input {
                    spell_out_context_lifetime(&mut pat_type.ty);
                }
            }
        }
    }
    attr::strip(item)
}

/// Turns `&mut Context<Self>` into `&mut Context<'_, Self>`; leaves any other type alone.
fn spell_out_context_lifetime(ty: &mut Type) {
    let Type::Reference(reference) = ty else {
        return;
    };
    let Type::Path(TypePath { qself: None, path }) = &mut *reference.elem else {
        return;
    };
    let Some(last) = path.segments.last_mut().filter(|last| last.ident == "Context") else {
        return;
    };
    let PathArguments::AngleBracketed(args) = &mut last.arguments else {
        return;
    };
    if !args.args.iter().any(|arg| matches!(arg, GenericArgument::Lifetime(_))) {
        let elided = Lifetime::new("'_", last.ident.span());
        args.args.insert(0, GenericArgument::Lifetime(elided));
    }
}

/// `#[handler]`, `#[started]` or `#[stopping]` outside a `#[node]` impl block: an error on the
/// marker, and the item as it was.
pub(crate) fn misplaced(marker: Marker, item: TokenStream) -> TokenStream {
    let error = syn::Error::new(
        Span::call_site(),
        format_args!("{marker} marks a method inside a `#[node]` impl block: put `#[node]` on the impl block"),
    );
    let error = error.into_compile_error();
    quote!(#error #item)
}

/// Generates the code of one node; each method makes one item.
struct Generator<'a> {
    /// The checked node.
    node: &'a Node<'a>,
    /// The path to `dz_core`'s helpers for generated code: `::dz_core::__private`.
    private: TokenStream,
    /// The string form of the path to serde, for `#[serde(crate = "...")]`.
    serde: String,
    /// The string form of `private`, for `#[serde(serialize_with = "...")]`.
    private_path: String,
    /// The message enum: `PongerMessage`.
    message: Ident,
    /// The typed send methods: `PongerHandle`.
    api: Ident,
    /// The node's stable type name.
    type_name: String,
    /// The impl block's `#[cfg(...)]` attributes, which every generated item repeats.
    cfgs: Vec<&'a Attribute>,
    /// The context parameter of the generated methods, hygienic so that it can never clash
    /// with a handler argument named `ctx`.
    ctx: Ident,
    /// The message parameter of the dispatch methods, hygienic likewise.
    msg: Ident,
    /// The node inside `handle_async`'s future, hygienic likewise.
    this: Ident,
}

impl<'a> Generator<'a> {
    fn new(node: &'a Node<'a>) -> Self {
        let krate = match &node.args.krate {
            Some(path) => path.to_token_stream(),
            None => quote!(::dz_core),
        };
        let name = node.ident.unraw();
        Generator {
            node,
            serde: format!("{}::__private::serde", tokens_to_string(&krate)),
            private_path: format!("{}::__private", tokens_to_string(&krate)),
            private: quote!(#krate::__private),
            message: format_ident!("{}Message", name, span = node.ident.span()),
            api: format_ident!("{}Handle", name, span = node.ident.span()),
            type_name: node.args.name.as_ref().map_or_else(|| name.to_string(), syn::LitStr::value),
            cfgs: node.block.attrs.iter().filter(|attr| attr::is_cfg(attr)).collect(),
            ctx: Ident::new("ctx", Span::mixed_site()),
            msg: Ident::new("msg", Span::mixed_site()),
            this: Ident::new("this", Span::mixed_site()),
        }
    }

    /// `enum PongerMessage { Ping { reply_to: Handle<Pinger>, n: u64 }, Reset }`.
    ///
    /// It is `pub`, so that it is as visible as any node can be; the lint against types more
    /// private than it is allowed, since the argument types are as visible as the user made them.
    fn message_enum(&self) -> TokenStream {
        let Generator { private, serde, message, cfgs, .. } = self;
        let doc = format!(
            "The messages of the node `{}`: one variant per `#[handler]` method, whose fields are the \
             handler's arguments. Generated by `#[node]`.",
            self.node.ident
        );
        let variants = self.node.handlers.iter().map(|handler| {
            let variant = handler.variant();
            let method_cfgs = handler.cfgs();
            let docs = self.docs(handler, format!("The message of the handler `{}`.", self.handler_path(handler)));
            let fields = handler.args().map(|(ident, ty)| {
                let doc = format!("The argument `{}` of the handler.", ident.unraw());
                let with = self.serde_with(ty);
                let ty = self.owned_ty(ty);
                quote!(#[doc = #doc] #with #ident: #ty)
            });
            let fields = if handler.args().next().is_some() { quote!({ #(#fields),* }) } else { quote!() };
            quote! {
                #(#method_cfgs)*
                #(#docs)*
                #variant #fields
            }
        });
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
            #[serde(crate = #serde, deny_unknown_fields)]
            #[allow(private_interfaces)]
            pub enum #message {
                #(#variants,)*
            }
        }
    }

    /// `#[serde(serialize_with = "...", deserialize_with = "...")]` for the field of an argument
    /// of type `ty`: dz-core's helpers, whose bounds carry the messages that say why an
    /// argument must be serde-serialisable. The paths are spanned on `ty`, so a type that is not
    /// gets one error for `Serialize` and one for `Deserialize`, each under the argument's type,
    /// rather than serde's errors from deep inside its derive.
    ///
    /// `serialize_arg` is named with its type (`serialize_arg::<Token, _>`), or rustc would put
    /// its error under the value serde passes it, which has no span in the user's code. A type
    /// that cannot be written back as a string (one with `$crate` in it, from a `macro_rules!`
    /// macro) goes without; its error then sits on `#[node]`, with a label under the type.
    fn serde_with(&self, ty: &Type) -> TokenStream {
        let span = ty.span();
        let owned = self.owned_ty(ty);
        let serialize = if contains_dollar_crate(&owned) {
            format!("{}::serialize_arg", self.private_path)
        } else {
            format!("{}::serialize_arg::<{}, _>", self.private_path, owned)
        };
        let serialize = LitStr::new(&serialize, span);
        let deserialize = LitStr::new(&format!("{}::deserialize_arg", self.private_path), span);
        quote!(#[serde(serialize_with = #serialize, deserialize_with = #deserialize)])
    }

    /// `impl Message for PongerMessage`: each message's name for traces, `Ponger::ping`.
    fn message_impl(&self) -> TokenStream {
        let Generator { private, message, .. } = self;
        let names: Vec<_> = self
            .node
            .handlers
            .iter()
            .map(|handler| {
                let (cfgs, variant) = (handler.cfgs(), handler.variant());
                (cfgs.collect::<Vec<_>>(), variant, format!("{}::{}", self.type_name, handler.ident().unraw()))
            })
            .collect();
        let arms = names.iter().map(|(cfgs, variant, name)| quote!(#(#cfgs)* Self::#variant { .. } => #name,));
        // Each name's hash, computed once at compile time, for the simulator's trace.
        let hashes = names.iter().map(|(cfgs, variant, name)| {
            quote!(#(#cfgs)* Self::#variant { .. } => {
                const HASH: u64 = #private::stable_hash(#name.as_bytes());
                HASH
            })
        });
        let (into_parcel, from_inline) = self.inline_fns();
        quote! {
            #[automatically_derived]
            impl #private::Message for #message {
                fn name(&self) -> &'static str {
                    match *self {
                        #(#arms)*
                    }
                }

                fn name_hash(&self) -> u64 {
                    match *self {
                        #(#hashes)*
                    }
                }

                #into_parcel
                #from_inline
            }
        }
    }

    /// `fn into_parcel` and `fn from_inline` of `impl Message`: a variant without fields, or with
    /// one field of a primitive type, travels inline in a `Parcel` (one word, no allocation);
    /// any other is boxed. Variants are numbered by their handler's place in the block.
    fn inline_fns(&self) -> (TokenStream, TokenStream) {
        let Generator { private, message, msg, .. } = self;
        let mut into_arms = Vec::new();
        let mut from_arms = Vec::new();
        let mut all_inline = true;
        for (number, handler) in self.node.handlers.iter().enumerate() {
            let args: Vec<_> = handler.args().collect();
            let field = match args.as_slice() {
                [] => None,
                [(ident, ty)] if is_word_type(ty) => Some((*ident, self.owned_ty(ty))),
                _ => {
                    all_inline = false;
                    continue;
                }
            };
            let cfgs: Vec<_> = handler.cfgs().collect();
            let variant = handler.variant();
            let number = number as u32;
            let name = format!("{}::{}", self.type_name, handler.ident().unraw());
            let kind = quote! {
                static KIND: #private::InlineKind = #private::InlineKind::new::<#message>(#number, #name);
            };
            match field {
                None => {
                    into_arms.push(quote!(#(#cfgs)* #message::#variant { .. } => {
                        #kind
                        #private::Parcel::Inline(#private::InlineMessage::new(&KIND, 0))
                    }));
                    from_arms.push(quote!(#(#cfgs)* #number => ::core::option::Option::Some(#message::#variant),));
                }
                Some((ident, ty)) => {
                    into_arms.push(quote!(#(#cfgs)* #message::#variant { #ident } => {
                        #kind
                        #private::Parcel::Inline(#private::InlineMessage::new(&KIND, <#ty as #private::Word>::to_word(#ident)))
                    }));
                    from_arms.push(quote!(#(#cfgs)* #number => ::core::option::Option::Some(#message::#variant {
                        #ident: <#ty as #private::Word>::from_word(#msg.word())
                    }),));
                }
            }
        }
        let boxed = (!all_inline).then(|| {
            quote! {
                #[allow(unreachable_patterns)]
                #msg => #private::Parcel::Boxed(#private::Box::new(#msg)),
            }
        });
        let into_parcel = quote! {
            #[inline]
            fn into_parcel(self) -> #private::Parcel {
                match self {
                    #(#into_arms)*
                    #boxed
                }
            }
        };
        let from_inline = quote! {
            #[inline]
            fn from_inline(#msg: #private::InlineMessage) -> ::core::option::Option<Self> {
                match #msg.variant() {
                    #(#from_arms)*
                    _ => ::core::option::Option::None,
                }
            }
        };
        (into_parcel, from_inline)
    }

    /// `impl Debug for PongerMessage`: the message's name and its fields as JSON, which needs
    /// no `Debug` of the argument types.
    fn message_debug(&self) -> TokenStream {
        let Generator { private, message, .. } = self;
        quote! {
            #[automatically_derived]
            impl ::core::fmt::Debug for #message {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    #private::fmt_message(self, f)
                }
            }
        }
    }

    /// `struct PongerHandle`: what `Handle<Ponger>` dereferences to.
    fn api_struct(&self) -> TokenStream {
        let Generator { private, api, cfgs, .. } = self;
        let ident = self.node.ident;
        let doc = format!(
            "The typed send methods of the node `{ident}`, one per `#[handler]` method: `Handle<{ident}>` \
             dereferences to this type, so `handle.method(ctx, ...)` needs no import. Generated by `#[node]`."
        );
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            pub struct #api {
                raw: #private::RawHandle,
            }
        }
    }

    /// `impl PongerHandle { pub fn ping(&self, ctx, reply_to, n) }`: one send method per handler,
    /// with the handler's name, arguments, docs and `#[deprecated]`.
    fn api_methods(&self) -> TokenStream {
        let Generator { private, message, api, cfgs, ctx, .. } = self;
        let ident = self.node.ident;
        let methods = self.node.handlers.iter().map(|handler| {
            let (method, variant, method_cfgs) = (handler.ident(), handler.variant(), handler.cfgs());
            let docs = self.docs(handler, String::new());
            let deprecated = handler.func.attrs.iter().filter(|attr| attr.path().is_ident("deprecated"));
            let sends = format!("Sends the node the message `{message}::{variant}`.");
            let params = handler.args().map(|(arg, ty)| {
                let ty = self.owned_ty(ty);
                quote!(#arg: #ty)
            });
            let fields = handler.args().map(|(arg, _)| arg);
            quote! {
                #(#method_cfgs)*
                #(#docs)*
                #[doc = #sends]
                #(#deprecated)*
                pub fn #method<__C: #private::Node>(&self, #ctx: &mut #private::Context<'_, __C>, #(#params),*) {
                    #private::send::<#ident, __C>(#ctx, &self.raw, #message::#variant { #(#fields),* })
                }
            }
        });
        quote! {
            #(#cfgs)*
            #[allow(private_interfaces)]
            impl #api {
                #(#methods)*
            }
        }
    }

    /// `impl HandleApi for PongerHandle` and its `Debug`.
    fn api_impls(&self) -> TokenStream {
        let Generator { private, api, .. } = self;
        let name = api.to_string();
        quote! {
            #[automatically_derived]
            impl #private::HandleApi for #api {
                fn from_raw(raw: #private::RawHandle) -> Self {
                    #api { raw }
                }

                fn raw(&self) -> &#private::RawHandle {
                    &self.raw
                }
            }

            #[automatically_derived]
            impl ::core::fmt::Debug for #api {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_tuple(#name).field(&self.raw).finish()
                }
            }
        }
    }

    /// `impl Node for Ponger`: the types, the type name, the dispatch and the hooks.
    fn node_impl(&self) -> TokenStream {
        let Generator { private, message, api, type_name, .. } = self;
        let ident = self.node.ident;
        let handle = self.handle_fn();
        let handle_async = self.handle_async_fn();
        let started = self.hook_fn(&self.node.started, quote!(started));
        // Without `#[started]` the runtime may skip the node's start (the trait's default says
        // it may have one).
        let has_started = started.is_none().then(|| {
            quote!(
                const HAS_STARTED_HOOK: bool = false;
            )
        });
        let stopping = self.hook_fn(&self.node.stopping, quote!(stopping));
        quote! {
            #[automatically_derived]
            #[allow(deprecated)] // the dispatch calls every handler, deprecated ones too
            impl #private::Node for #ident {
                type Message = #message;
                type Api = #api;
                const TYPE_NAME: &'static str = #type_name;
                #has_started
                #handle
                #handle_async
                #started
                #stopping
            }
        }
    }

    /// `fn handle`: runs a synchronous handler, hands an `async` one's message back.
    fn handle_fn(&self) -> TokenStream {
        let Generator { private, message, msg, .. } = self;
        let ident = self.node.ident;
        let ctx = self.ctx_param(|handler| handler.func.sig.asyncness.is_none());
        let arms = self.node.handlers.iter().map(|handler| {
            let (method, variant, cfgs) = (handler.ident(), handler.variant(), handler.cfgs());
            if handler.func.sig.asyncness.is_some() {
                return quote!(#(#cfgs)* #msg @ #message::#variant { .. } => #private::Handled::Async(#msg),);
            }
            let fields: Vec<_> = handler.args().map(|(arg, _)| arg).collect();
            let pass_ctx = handler.takes_ctx().then(|| quote!(#ctx,));
            quote! {
                #(#cfgs)*
                #message::#variant { #(#fields),* } => {
                    #ident::#method(self, #pass_ctx #(#fields),*);
                    #private::Handled::Done
                }
            }
        });
        quote! {
            fn handle(
                &mut self,
                #ctx: &mut #private::Context<'_, Self>,
                #msg: #message,
            ) -> #private::Handled<#message> {
                match #msg {
                    #(#arms)*
                }
            }
        }
    }

    /// `fn handle_async`: runs any handler in a future that owns the node and gives it back.
    fn handle_async_fn(&self) -> TokenStream {
        let Generator { private, message, msg, this, .. } = self;
        let ident = self.node.ident;
        let ctx = self.ctx_param(|_| true);
        let signature = quote! {
            fn handle_async(
                self: #private::Box<Self>,
                #ctx: #private::Context<'static, Self>,
                #msg: #message,
            ) -> #private::NodeFuture<Self>
        };
        if self.node.handlers.is_empty() {
            return quote!(#signature { match #msg {} });
        }
        let arms = self.node.handlers.iter().map(|handler| {
            let (method, variant, cfgs) = (handler.ident(), handler.variant(), handler.cfgs());
            let fields: Vec<_> = handler.args().map(|(arg, _)| arg).collect();
            let pass_ctx = handler.takes_ctx().then(|| quote!(&mut #ctx,));
            let wait = handler.func.sig.asyncness.map(|_| quote!(.await));
            quote! {
                #(#cfgs)*
                #message::#variant { #(#fields),* } => #ident::#method(&mut *#this, #pass_ctx #(#fields),*) #wait,
            }
        });
        let mut_ctx = self.node.handlers.iter().any(Method::takes_ctx).then(|| quote!(let mut #ctx = #ctx;));
        quote! {
            #signature {
                #private::Box::pin(async move {
                    let mut #this = self;
                    #mut_ctx
                    match #msg {
                        #(#arms)*
                    }
                    #this
                })
            }
        }
    }

    /// `fn started` or `fn stopping`, calling the marked method; nothing if there is none.
    fn hook_fn(&self, hooks: &[Method<'_>], name: TokenStream) -> Option<TokenStream> {
        let hook = hooks.first()?;
        let Generator { private, ctx, .. } = self;
        let (ident, method) = (self.node.ident, hook.ident());
        let (param, arg) = if hook.takes_ctx() { (quote!(#ctx), Some(quote!(#ctx))) } else { (quote!(_), None) };
        Some(quote! {
            fn #name(&mut self, #param: &mut #private::Context<'_, Self>) {
                #ident::#method(self, #arg)
            }
        })
    }

    /// The compile-time check that each argument's type is `Send`, spanned on the type, so that
    /// rustc's error sits under the user's argument. (Whether it is serde-serialisable is
    /// checked by the fields' `serialize_with`/`deserialize_with`.)
    fn arg_checks(&self) -> TokenStream {
        let private = &self.private;
        self.node
            .handlers
            .iter()
            .flat_map(|handler| handler.args().map(move |(_, ty)| (handler, ty)))
            .map(|(handler, ty)| {
                let cfgs = handler.cfgs();
                let owned = self.owned_ty(ty);
                quote_spanned! {ty.span()=>
                    #(#cfgs)*
                    const _: () = #private::assert_send_arg::<#owned>();
                }
            })
            .collect()
    }

    /// The pattern of the context parameter of a dispatch method: the hygienic `ctx` if one of
    /// the handlers that `calls` picks takes it, `_` otherwise (no unused-variable warning).
    fn ctx_param(&self, calls: impl Fn(&Method<'_>) -> bool) -> TokenStream {
        let used = self.node.handlers.iter().any(|handler| calls(handler) && handler.takes_ctx());
        if used {
            self.ctx.to_token_stream()
        } else {
            quote!(_)
        }
    }

    /// A handler's doc comments, or `fallback` if it has none (and `fallback` is not empty).
    fn docs(&self, handler: &Method<'a>, fallback: String) -> Vec<TokenStream> {
        let docs: Vec<_> = handler.docs().map(ToTokens::to_token_stream).collect();
        if docs.is_empty() && !fallback.is_empty() {
            return vec![quote!(#[doc = #fallback])];
        }
        docs
    }

    /// `Ponger::ping`, for docs.
    fn handler_path(&self, handler: &Method<'_>) -> String {
        format!("{}::{}", self.node.ident, handler.ident())
    }

    /// An argument's type as the generated items spell it: `Self` means the node there, but
    /// would mean the enum or the handle type in the generated items, so it is replaced by the
    /// node's name (spanned on the `Self` it replaces).
    fn owned_ty(&self, ty: &Type) -> TokenStream {
        replace_self(ty.to_token_stream(), self.node.ident)
    }
}

/// Whether an argument of type `ty` travels inline in a `Parcel`: a primitive number, `bool` or
/// `char`, named plainly (a path of one segment; what it names must implement dz-core's `Word`,
/// as the primitives do).
fn is_word_type(ty: &Type) -> bool {
    const WORDS: &[&str] =
        &["u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "bool", "char", "f32", "f64"];
    match ty {
        Type::Path(TypePath { qself: None, path }) => {
            path.leading_colon.is_none()
                && path.segments.len() == 1
                && path.segments[0].arguments.is_none()
                && WORDS.iter().any(|word| path.segments[0].ident == word)
        }
        Type::Paren(inner) => is_word_type(&inner.elem),
        _ => false,
    }
}

/// Whether `tokens` contain `$crate`, which a `macro_rules!` macro leaves in, at any depth.
fn contains_dollar_crate(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "$crate",
        TokenTree::Group(group) => contains_dollar_crate(&group.stream()),
        _ => false,
    })
}

/// `tokens` with every `Self` replaced by `ident`, at any depth, keeping the spans.
fn replace_self(tokens: TokenStream, ident: &Ident) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Ident(found) if found == "Self" => {
                let mut replaced = ident.clone();
                replaced.set_span(found.span());
                TokenTree::Ident(replaced)
            }
            TokenTree::Group(group) => {
                let mut replaced = Group::new(group.delimiter(), replace_self(group.stream(), ident));
                replaced.set_span(group.span());
                TokenTree::Group(replaced)
            }
            other => other,
        })
        .collect()
}

impl ToTokens for Generator<'_> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let cfgs = &self.cfgs;
        let message_enum = self.message_enum();
        let api_struct = self.api_struct();
        let api_methods = self.api_methods();
        let message_impl = self.message_impl();
        let message_debug = self.message_debug();
        let api_impls = self.api_impls();
        let node_impl = self.node_impl();
        let arg_checks = self.arg_checks();
        tokens.extend(quote! {
            #message_enum
            #api_struct
            #api_methods
            #(#cfgs)*
            const _: () = {
                #message_impl
                #message_debug
                #api_impls
                #node_impl
                #arg_checks
            };
        });
    }
}
