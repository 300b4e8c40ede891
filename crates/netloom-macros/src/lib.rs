//! `#[handler]`: implements `netloom_channel::Handler::interest` from the callbacks an
//! `impl Handler for ...` block writes, so an overridden callback can never be left out of
//! the interest set (the pipeline passes events by handlers that do not list them, and a
//! callback left out would silently never run). Use it through `netloom_channel::handler`;
//! its documentation has the examples.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{ImplItem, ItemImpl, parse_macro_input};

/// The interest bit of each callback that takes routed events; the others (`handler_added`,
/// `timer_expired`, `resumed`, `take_buffered`) are called whatever the interest set.
const CALLBACKS: [(&str, &str); 12] = [
    ("channel_registered", "REGISTERED"),
    ("channel_unregistered", "UNREGISTERED"),
    ("channel_active", "ACTIVE"),
    ("channel_inactive", "INACTIVE"),
    ("channel_read", "READ"),
    ("channel_read_complete", "READ_COMPLETE"),
    ("channel_writability_changed", "WRITABILITY"),
    ("user_event", "USER_EVENT"),
    ("exception_caught", "EXCEPTION"),
    ("write", "WRITE"),
    ("flush", "FLUSH"),
    ("close", "CLOSE"),
];

/// Adds `fn interest` to an `impl Handler for T` block: the union of the interest bits of
/// the callbacks written in it. Writing `fn interest` in the block too is an error.
#[proc_macro_attribute]
pub fn handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new_spanned(attr, "#[handler] takes no arguments")
            .to_compile_error()
            .into();
    }
    let mut block = parse_macro_input!(item as ItemImpl);
    let is_handler = block
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|last| last.ident == "Handler");
    if !is_handler {
        return syn::Error::new_spanned(
            &block.self_ty,
            "#[handler] goes on an `impl Handler for ...` block",
        )
        .to_compile_error()
        .into();
    }
    let mut bits = Vec::new();
    for item in &block.items {
        let ImplItem::Fn(method) = item else { continue };
        let name = method.sig.ident.to_string();
        if name == "interest" {
            return syn::Error::new_spanned(
                &method.sig.ident,
                "#[handler] computes interest() from the callbacks written: remove this one",
            )
            .to_compile_error()
            .into();
        }
        if let Some((_, bit)) = CALLBACKS.iter().find(|(callback, _)| *callback == name) {
            let bit = format_ident!("{bit}");
            bits.push(quote!(.union(::netloom_channel::Interest::#bit)));
        }
    }
    block.items.push(syn::parse_quote! {
        fn interest(&self) -> ::netloom_channel::Interest {
            ::netloom_channel::Interest::NONE #(#bits)*
        }
    });
    quote!(#block).into()
}
