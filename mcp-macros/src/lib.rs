//! Procedural macros for `mcp-server`. Use them through `mcp_server`, which
//! re-exports them: `use mcp_server::{tool, prompt, resource, router};`.
//!
//! - `#[tool]` turns an async function into a tool;
//! - `#[prompt]` into a prompt;
//! - `#[resource(uri = "...")]` or `#[resource(uri_template = "...")]` into a resource;
//! - `#[router]` on an `impl` block collects the methods marked with the three
//!   attributes above into routes for `Server::routes`.
//!
//! Each attribute is documented, with examples, in `mcp_server`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::{ImplItem, ItemFn, ItemImpl, parse_macro_input};

mod options;
mod params;
mod routes;

use options::{PromptOptions, ResourceOptions, ToolOptions, doc_text, parse_inner};
use params::{check_signature, return_type, take_params};
use routes::{Handler, prompt_route, resource_route, tool_route};

/// Declares a tool from an async function.
///
/// Options: `name = "..."`, `title = "..."`, `description = "..."` (default:
/// the doc comment), `annotations(read_only_hint = true, destructive_hint =
/// false, idempotent_hint = true, open_world_hint = false, title = "...")`,
/// `icons = ["https://..."]`, `scopes = ["..."]`.
///
/// Parameters are tool arguments, except extractors (`Context`, `State<T>`,
/// `Identity`, `Option<Identity>`, `CancellationToken`, or any parameter marked
/// `#[extract]`). Describe an argument with `#[arg(description = "...")]` and
/// rename its JSON property with `#[arg(rename = "...")]`. `#[arg(header =
/// "Region")]` marks a string, integer or boolean argument as `x-mcp-header`:
/// modern clients mirror it in an `Mcp-Param-Region` header, which the HTTP
/// transport checks against the body.
///
/// The function becomes a unit struct of the same name (pass it to
/// `Server::tool`), and its body stays callable as `name::call(...)`. As with
/// any unit struct, a `let name = ...` in the same scope is read as a pattern
/// naming the struct, so pick another variable name.
#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = ToolOptions::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    parse_macro_input!(attr with parser);
    let function = parse_macro_input!(item as ItemFn);
    expand_free(function, "tool", |h| tool_route(h, &options))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares a prompt from an async function whose parameters are its
/// (string) arguments; `Option<_>` arguments are optional.
///
/// Options: `name`, `title`, `description`, `icons`, `scopes`.
#[proc_macro_attribute]
pub fn prompt(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = PromptOptions::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    parse_macro_input!(attr with parser);
    let function = parse_macro_input!(item as ItemFn);
    expand_free(function, "prompt", |h| prompt_route(h, &options))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares a resource (`uri = "..."`) or a resource template
/// (`uri_template = "..."`, whose variables are the function's parameters).
///
/// Options: `mime_type`, `name`, `title`, `description`, `icons`, `scopes`.
#[proc_macro_attribute]
pub fn resource(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = ResourceOptions::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    parse_macro_input!(attr with parser);
    let function = parse_macro_input!(item as ItemFn);
    expand_free(function, "resource", |h| resource_route(h, &options))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The runtime trait a free function's marker type implements, per kind.
fn route_trait(kind: &str) -> (TokenStream2, TokenStream2, TokenStream2, TokenStream2) {
    match kind {
        "tool" => (
            quote!(::mcp_server::__private::IntoToolRoute),
            quote!(into_tool_route),
            quote!(::mcp_server::__private::ToolRoute),
            quote!(tools),
        ),
        "prompt" => (
            quote!(::mcp_server::__private::IntoPromptRoute),
            quote!(into_prompt_route),
            quote!(::mcp_server::__private::PromptRoute),
            quote!(prompts),
        ),
        _ => (
            quote!(::mcp_server::__private::IntoResourceRoute),
            quote!(into_resource_route),
            quote!(::mcp_server::__private::ResourceRoute),
            quote!(resources),
        ),
    }
}

/// A free function becomes a unit struct of the same name that implements the
/// route trait; the body stays callable as `name::call(...)`.
fn expand_free<F>(mut function: ItemFn, kind: &str, build: F) -> syn::Result<TokenStream2>
where
    F: FnOnce(&Handler<'_>) -> syn::Result<(String, TokenStream2)>,
{
    check_signature(&function.sig, kind)?;
    let params = take_params(&mut function.sig)?;
    if params.has_receiver {
        return Err(syn::Error::new_spanned(
            function.sig.receiver(),
            format!("a #[{kind}] method needs #[mcp_server::router] on its impl block"),
        ));
    }
    let name = function.sig.ident.clone();
    let vis = function.vis.clone();
    let doc = doc_text(&function.attrs);
    let docs: Vec<_> = function.attrs.iter().filter(|a| a.path().is_ident("doc")).cloned().collect();
    let handler = Handler {
        fn_name: &name,
        params: &params,
        ret: return_type(&function.sig)?,
        doc,
        callee: quote!(#name::call),
        capture: TokenStream2::new(),
    };
    let (_, route) = build(&handler)?;
    let (route_trait, method, route_type, field) = route_trait(kind);
    function.sig.ident = format_ident!("call");
    let attrs = &function.attrs;
    let sig = &function.sig;
    let block = &function.block;
    Ok(quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;

        impl #name {
            #(#attrs)*
            #vis #sig #block
        }

        impl #route_trait for #name {
            fn #method(self) -> #route_type {
                #route
            }
        }

        impl ::mcp_server::IntoRoutes for #name {
            fn into_routes(self) -> ::mcp_server::Routes {
                ::mcp_server::Routes {
                    #field: ::std::vec![#route_trait::#method(self)],
                    ..::std::default::Default::default()
                }
            }
        }
    })
}

/// Collects the `#[tool]`, `#[prompt]` and `#[resource]` methods of an `impl`
/// block into `mcp_server::Routes`, so `Server::routes(value)` serves them all.
/// Methods taking `&self` run on a shared `Arc` of the value.
#[proc_macro_attribute]
pub fn router(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = TokenStream2::from(attr);
        return syn::Error::new_spanned(attr, "#[router] takes no options").into_compile_error().into();
    }
    let block = parse_macro_input!(item as ItemImpl);
    expand_router(block).unwrap_or_else(syn::Error::into_compile_error).into()
}

fn marker_kind(attr: &syn::Attribute) -> Option<&'static str> {
    let last = attr.path().segments.last()?.ident.to_string();
    ["tool", "prompt", "resource"].into_iter().find(|k| *k == last)
}

fn expand_router(mut block: ItemImpl) -> syn::Result<TokenStream2> {
    let mut tools = Vec::new();
    let mut prompts = Vec::new();
    let mut resources = Vec::new();
    let mut seen: Vec<(&'static str, String)> = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let Some(position) = method.attrs.iter().position(|a| marker_kind(a).is_some()) else { continue };
        let attr = method.attrs.remove(position);
        let kind = marker_kind(&attr).unwrap_or("tool");
        check_signature(&method.sig, kind)?;
        let params = take_params(&mut method.sig)?;
        let name = method.sig.ident.clone();
        let callee = if params.has_receiver { quote!(__this.#name) } else { quote!(Self::#name) };
        let handler = Handler {
            fn_name: &name,
            params: &params,
            ret: return_type(&method.sig)?,
            doc: doc_text(&method.attrs),
            callee,
            capture: quote!(let __this = ::std::clone::Clone::clone(&__this);),
        };
        let (key, route) = match kind {
            "tool" => {
                let mut options = ToolOptions::default();
                parse_inner(&attr, |m| options.parse(m))?;
                let built = tool_route(&handler, &options)?;
                tools.push(built.1.clone());
                built
            }
            "prompt" => {
                let mut options = PromptOptions::default();
                parse_inner(&attr, |m| options.parse(m))?;
                let built = prompt_route(&handler, &options)?;
                prompts.push(built.1.clone());
                built
            }
            _ => {
                let mut options = ResourceOptions::default();
                parse_inner(&attr, |m| options.parse(m))?;
                let built = resource_route(&handler, &options)?;
                resources.push(built.1.clone());
                built
            }
        };
        drop(route);
        if seen.iter().any(|(k, n)| *k == kind && *n == key) {
            return Err(syn::Error::new_spanned(&method.sig.ident, format!("duplicate {kind} name {key:?}")));
        }
        seen.push((kind, key));
    }
    let self_ty = &block.self_ty;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    Ok(quote! {
        #block

        impl #impl_generics ::mcp_server::IntoRoutes for #self_ty #where_clause {
            #[allow(unused_variables)]
            fn into_routes(self) -> ::mcp_server::Routes {
                let __this = ::std::sync::Arc::new(self);
                ::mcp_server::Routes {
                    // Each route's `move` closure takes its own handle on the value.
                    tools: ::std::vec![#({ let __this = ::std::clone::Clone::clone(&__this); #tools }),*],
                    prompts: ::std::vec![#({ let __this = ::std::clone::Clone::clone(&__this); #prompts }),*],
                    resources: ::std::vec![#({ let __this = ::std::clone::Clone::clone(&__this); #resources }),*],
                }
            }
        }
    })
}
