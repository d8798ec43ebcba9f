//! Function parameters: arguments (from the client) versus extractors (from
//! the request context).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, LitStr, Pat, PathArguments, Signature, Type};

use crate::options::doc_text;

/// Types taken from the request context rather than from the arguments. A
/// parameter can also be marked `#[extract]` explicitly.
const EXTRACTORS: [&str; 5] = ["Context", "State", "Identity", "CancellationToken", "Extension"];

pub(crate) enum Param {
    Argument { ident: Ident, ty: Type, doc: Option<String>, rename: Option<LitStr>, header: Option<LitStr> },
    Extractor { ty: Type },
}

pub(crate) struct Params {
    pub(crate) has_receiver: bool,
    pub(crate) list: Vec<Param>,
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

/// `Option<T>` gives `T`.
pub(crate) fn option_inner(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "Option" {
        return None;
    }
    match &segment.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

fn is_extractor_type(ty: &Type) -> bool {
    let ty = option_inner(ty).unwrap_or(ty);
    last_segment(ty).is_some_and(|s| EXTRACTORS.iter().any(|e| s.ident == e))
}

/// Reads the parameters and strips the attributes only the macros understand.
pub(crate) fn take_params(sig: &mut Signature) -> syn::Result<Params> {
    let mut has_receiver = false;
    let mut list = Vec::new();
    for input in &mut sig.inputs {
        let typed = match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() || r.mutability.is_some() {
                    return Err(syn::Error::new_spanned(r, "handlers take `&self`"));
                }
                has_receiver = true;
                continue;
            }
            FnArg::Typed(t) => t,
        };
        let doc = doc_text(&typed.attrs);
        let mut rename = None;
        let mut header = None;
        let mut description = None;
        let mut forced_extractor = false;
        for attr in &typed.attrs {
            if attr.path().is_ident("extract") {
                forced_extractor = true;
            } else if attr.path().is_ident("arg") {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("description") {
                        description = Some(meta.value()?.parse::<LitStr>()?.value());
                    } else if meta.path.is_ident("rename") {
                        rename = Some(meta.value()?.parse::<LitStr>()?);
                    } else if meta.path.is_ident("header") {
                        let name = meta.value()?.parse::<LitStr>()?;
                        let valid = !name.value().is_empty()
                            && name
                                .value()
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                        if !valid {
                            return Err(syn::Error::new_spanned(
                                name,
                                "a header name must be an RFC 9110 token",
                            ));
                        }
                        header = Some(name);
                    } else {
                        return Err(
                            meta.error("unknown #[arg] option; expected description, rename or header")
                        );
                    }
                    Ok(())
                })?;
            }
        }
        typed.attrs.retain(|a| {
            !(a.path().is_ident("doc") || a.path().is_ident("arg") || a.path().is_ident("extract"))
        });
        let ty = (*typed.ty).clone();
        if forced_extractor || is_extractor_type(&ty) {
            list.push(Param::Extractor { ty });
            continue;
        }
        let Pat::Ident(pat) = &*typed.pat else {
            return Err(syn::Error::new_spanned(
                &typed.pat,
                "tool arguments need a plain name; it names the JSON property",
            ));
        };
        list.push(Param::Argument { ident: pat.ident.clone(), ty, doc: description.or(doc), rename, header });
    }
    Ok(Params { has_receiver, list })
}

impl Params {
    pub(crate) fn arguments(
        &self,
    ) -> impl Iterator<Item = (&Ident, &Type, &Option<String>, &Option<LitStr>)> {
        self.list.iter().filter_map(|p| match p {
            Param::Argument { ident, ty, doc, rename, .. } => Some((ident, ty, doc, rename)),
            Param::Extractor { .. } => None,
        })
    }

    fn header_of(&self, ident: &Ident) -> Option<&LitStr> {
        self.list.iter().find_map(|p| match p {
            Param::Argument { ident: i, header, .. } if i == ident => header.as_ref(),
            _ => None,
        })
    }

    /// A struct holding the arguments, deserializable and with a JSON Schema.
    pub(crate) fn args_struct(&self, with_schema: bool) -> TokenStream {
        let fields = self.arguments().map(|(ident, ty, doc, rename)| {
            let doc = doc.as_ref().map(|d| quote!(#[doc = #d]));
            let rename = rename.as_ref().map(|r| quote!(#[serde(rename = #r)]));
            let default = crate::params::option_inner(ty).map(|_| quote!(#[serde(default)]));
            // `x-mcp-header`: clients mirror the argument in `Mcp-Param-<name>` (2026-07-28).
            let header = with_schema
                .then(|| self.header_of(ident))
                .flatten()
                .map(|h| quote!(#[schemars(extend("x-mcp-header" = #h))]));
            quote_spanned!(ty.span()=> #doc #rename #default #header #ident: #ty)
        });
        let schema_derive = with_schema.then(|| quote!(::mcp_server::__private::schemars::JsonSchema,));
        let schema_crate =
            with_schema.then(|| quote!(#[schemars(crate = "::mcp_server::__private::schemars")]));
        quote! {
            #[derive(::mcp_server::__private::serde::Deserialize, #schema_derive)]
            #[serde(crate = "::mcp_server::__private::serde")]
            #schema_crate
            #[allow(non_camel_case_types, dead_code)]
            struct __McpArgs { #(#fields),* }
        }
    }

    /// `let __McpArgs { a: __arg_a, .. } = value;`
    pub(crate) fn destructure(&self, value: TokenStream) -> TokenStream {
        let fields = self.arguments().map(|(ident, ..)| {
            let local = format_ident!("__arg_{}", ident);
            quote!(#ident: #local)
        });
        quote!(let __McpArgs { #(#fields),* } = #value;)
    }

    /// `let <pat>: <ty> = <extract>(ctx)?;` for each extractor; `on_error`
    /// turns an `McpError` named `__e` into the handler's early return.
    pub(crate) fn extract(&self, context: TokenStream, on_error: &TokenStream) -> TokenStream {
        let lets = self.list.iter().enumerate().filter_map(|(i, p)| match p {
            Param::Extractor { ty, .. } => {
                let local = format_ident!("__ext_{}", i);
                Some(quote_spanned! {ty.span()=>
                    let #local: #ty = match <#ty as ::mcp_server::__private::FromContext>::from_context(#context) {
                        ::std::result::Result::Ok(v) => v,
                        ::std::result::Result::Err(__e) => return #on_error,
                    };
                })
            }
            Param::Argument { .. } => None,
        });
        quote!(#(#lets)*)
    }

    /// The call's arguments in the original order.
    pub(crate) fn call_args(&self) -> Vec<TokenStream> {
        self.list
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Param::Argument { ident, .. } => {
                    let local = format_ident!("__arg_{}", ident);
                    quote!(#local)
                }
                Param::Extractor { .. } => {
                    let local = format_ident!("__ext_{}", i);
                    quote!(#local)
                }
            })
            .collect()
    }
}

/// The return type, `()` when none is written.
pub(crate) fn return_type(sig: &Signature) -> syn::Result<Type> {
    match &sig.output {
        syn::ReturnType::Default => Ok(syn::parse_quote!(())),
        syn::ReturnType::Type(_, ty) => {
            if matches!(**ty, Type::ImplTrait(_)) {
                return Err(syn::Error::new_spanned(
                    ty,
                    "name the return type; `impl Trait` cannot be inspected",
                ));
            }
            Ok((**ty).clone())
        }
    }
}

/// Handlers must be `async fn` without generics.
pub(crate) fn check_signature(sig: &Signature, what: &str) -> syn::Result<()> {
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(sig.fn_token, format!("a {what} must be an `async fn`")));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&sig.generics, format!("a {what} cannot be generic")));
    }
    Ok(())
}
