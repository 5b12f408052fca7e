//! [`Errors`]: the mistakes found in one macro input, collected so that all are reported at once;
//! and [`tokens_to_string`], which shows the user's tokens in the messages as they wrote them.

use std::fmt::Display;
use std::thread;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Collects every mistake found in one macro input; each stage adds to it and none stops early.
///
/// It refuses to be dropped unchecked: the driver must turn it into compile errors with
/// [`Errors::into_compile_errors`], so that no error can be forgotten on the way.
pub(crate) struct Errors {
    combined: Option<syn::Error>,
    count: usize,
    checked: bool,
}

impl Errors {
    /// No mistakes yet.
    pub(crate) fn new() -> Self {
        Errors { combined: None, count: 0, checked: false }
    }

    /// Records `error`.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.count += 1;
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records the mistake `message`, shown under all of `tokens`.
    pub(crate) fn at(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records the mistake `message`, shown at `span`.
    pub(crate) fn at_span(&mut self, span: proc_macro2::Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// How many mistakes are recorded: a check compares the count before and after itself.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// One `compile_error!` per recorded mistake, each at its own span; empty if there are none.
    pub(crate) fn into_compile_errors(mut self) -> TokenStream {
        self.checked = true;
        self.combined.take().map(syn::Error::into_compile_error).unwrap_or_default()
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if !self.checked && !thread::panicking() {
            panic!("dz-macros bug: errors were dropped without being reported");
        }
    }
}

/// Tokens as a user would write them: `Vec<&str>`, not `Vec < & str >`. For messages only.
pub(crate) fn tokens_to_string(tokens: &impl quote::ToTokens) -> String {
    let mut out = String::new();
    write_tokens(&mut out, tokens.to_token_stream());
    out
}

fn write_tokens(out: &mut String, tokens: TokenStream) {
    use proc_macro2::{Delimiter, TokenTree};
    // Whether the last token written was a word (identifier, literal, lifetime) that a next word
    // must be kept apart from by a space.
    let mut after_word = false;
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Ident(ident) => {
                if after_word {
                    out.push(' ');
                }
                out.push_str(&ident.to_string());
                after_word = true;
            }
            TokenTree::Literal(literal) => {
                if after_word {
                    out.push(' ');
                }
                out.push_str(&literal.to_string());
                after_word = true;
            }
            TokenTree::Punct(punct) => {
                let ch = punct.as_char();
                let joint = punct.spacing() == proc_macro2::Spacing::Joint;
                match ch {
                    '\'' => {
                        if after_word {
                            out.push(' ');
                        }
                        out.push(ch);
                        // The lifetime's name follows, glued to the quote.
                        if let Some(TokenTree::Ident(name)) = tokens.next() {
                            out.push_str(&name.to_string());
                        }
                        after_word = true;
                        continue;
                    }
                    ',' | ';' => out.push_str(&format!("{ch} ")),
                    // A lone `:` (not one of `::`) as in `self: Box<Self>`.
                    ':' if !joint && !out.ends_with(':') => out.push_str(": "),
                    '+' | '=' => out.push_str(&format!(" {ch} ")),
                    '-' if joint => out.push_str(" -"),
                    '>' if out.ends_with(" -") => out.push_str("> "),
                    _ => out.push(ch),
                }
                after_word = false;
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(out, group.stream());
                out.push_str(close);
                after_word = false;
            }
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::tokens_to_string;

    #[test]
    fn types_print_as_written() {
        assert_eq!(tokens_to_string(&quote!(Vec<&str>)), "Vec<&str>");
        assert_eq!(tokens_to_string(&quote!(&'a mut Context<'_, Self>)), "&'a mut Context<'_, Self>");
        assert_eq!(tokens_to_string(&quote!(HashMap<String, Vec<u8>>)), "HashMap<String, Vec<u8>>");
        assert_eq!(tokens_to_string(&quote!(Box<dyn Fn(u8) -> u8 + Send>)), "Box<dyn Fn(u8) -> u8 + Send>");
        assert_eq!(tokens_to_string(&quote!([u8; 4])), "[u8; 4]");
        assert_eq!(tokens_to_string(&quote!(impl Iterator<Item = u8>)), "impl Iterator<Item = u8>");
        assert_eq!(tokens_to_string(&quote!(::dz_core::Context<Self>)), "::dz_core::Context<Self>");
        assert_eq!(tokens_to_string(&quote!(self: Box<Self>)), "self: Box<Self>");
        assert_eq!(tokens_to_string(&quote!(a::b)), "a::b");
    }
}
