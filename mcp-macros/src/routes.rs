//! The expressions that build a tool, prompt or resource route.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, LitStr, Type};

use crate::options::{PromptOptions, ResourceOptions, ToolOptions, check_tool_name};
use crate::params::{Params, option_inner};

/// How the generated handler reaches the user's function.
pub(crate) struct Handler<'a> {
    pub(crate) fn_name: &'a Ident,
    pub(crate) params: &'a Params,
    pub(crate) ret: Type,
    pub(crate) doc: Option<String>,
    /// The function to call, e.g. `add::call`, `__this.list` or `Self::list`.
    pub(crate) callee: TokenStream,
    /// Runs at the top of the handler closure (clones captured state).
    pub(crate) capture: TokenStream,
}

impl Handler<'_> {
    fn call(&self) -> TokenStream {
        let callee = &self.callee;
        let args = self.params.call_args();
        quote!(#callee(#(#args),*).await)
    }
}

/// The registered name: the `name` option, else the function's name.
fn route_name(name: &Option<LitStr>, fn_name: &Ident) -> LitStr {
    name.clone().unwrap_or_else(|| LitStr::new(&fn_name.to_string(), fn_name.span()))
}

pub(crate) fn tool_route(h: &Handler<'_>, options: &ToolOptions) -> syn::Result<(String, TokenStream)> {
    let name = route_name(&options.common.name, h.fn_name);
    check_tool_name(&name.value(), name.span())?;
    let args_struct = h.params.args_struct(true);
    let destructure = h.params.destructure(quote! {
        match __call.parse_arguments::<__McpArgs>() {
            ::std::result::Result::Ok(v) => v,
            ::std::result::Result::Err(output) => return output,
        }
    });
    let on_error =
        quote!(::mcp_server::__private::ToolOutput::Failed(::std::string::ToString::to_string(&__e)));
    let extract = h.params.extract(quote!(__call.context()), &on_error);
    let ret = &h.ret;
    let call = h.call();
    let capture = &h.capture;
    let builder = options.common.builder_calls(h.doc.clone());
    let annotations = (!options.annotations.is_empty()).then(|| {
        let fields = options.annotations.iter().map(|(k, v)| quote!(#k: #v));
        quote! {
            .annotations(::mcp_server::core::types::ToolAnnotations {
                #(#fields,)* ..::std::default::Default::default()
            })
        }
    });
    let expr = quote! {{
        #args_struct
        #[allow(unused_imports)]
        use ::mcp_server::__private::{ContentOutput as _, FallibleStructuredOutput as _, StructuredOutput as _};
        let __output_schema = (&&&&::mcp_server::__private::OutputKind::<#ret>::new()).output_type_schema();
        ::mcp_server::__private::ToolRoute::from_output_fn(
            #name,
            ::mcp_server::__private::ToolRoute::input_schema_for::<__McpArgs>(),
            move |__call: ::mcp_server::__private::ToolCall| {
                #capture
                ::std::boxed::Box::pin(async move {
                    #destructure
                    #extract
                    let __out: #ret = #call;
                    (&&&&::mcp_server::__private::OutputKind::<#ret>::new()).tool_output(__out)
                })
            },
        )
        #builder
        .output_schema(__output_schema)
        #annotations
    }};
    Ok((name.value(), expr))
}

pub(crate) fn prompt_route(h: &Handler<'_>, options: &PromptOptions) -> syn::Result<(String, TokenStream)> {
    let name = route_name(&options.common.name, h.fn_name);
    let args_struct = h.params.args_struct(false);
    let destructure = h.params.destructure(quote! {
        match __call.parse_arguments::<__McpArgs>() {
            ::std::result::Result::Ok(v) => v,
            ::std::result::Result::Err(e) => return ::std::result::Result::Err(e),
        }
    });
    let extract = h.params.extract(quote!(__call.context()), &quote!(::std::result::Result::Err(__e)));
    let call = h.call();
    let capture = &h.capture;
    let builder = options.common.builder_calls(h.doc.clone());
    let arguments = h.params.arguments().map(|(ident, ty, doc, rename)| {
        let arg_name = rename.as_ref().map_or_else(|| ident.to_string(), LitStr::value);
        let required = option_inner(ty).is_none();
        let doc = match doc {
            Some(d) => quote!(::std::option::Option::Some(#d)),
            None => quote!(::std::option::Option::None),
        };
        quote!(.argument(#arg_name, #doc, #required))
    });
    let expr = quote! {{
        #args_struct
        ::mcp_server::__private::PromptRoute::new(#name, move |__call: ::mcp_server::__private::PromptCall| {
            #capture
            async move {
                #destructure
                #extract
                let __out = #call;
                ::mcp_server::__private::IntoGetPromptResult::into_get_prompt_result(__out)
            }
        })
        #builder
        #(#arguments)*
    }};
    Ok((name.value(), expr))
}

/// The variable names of a URI template (`{id}`, `{+path}`).
fn template_variables(template: &LitStr) -> syn::Result<Vec<String>> {
    let text = template.value();
    let mut names = Vec::new();
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| syn::Error::new(template.span(), "unclosed '{' in URI template"))?
            + open;
        let name = rest[open + 1..close].trim_start_matches('+');
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(syn::Error::new(template.span(), format!("invalid template variable {name:?}")));
        }
        names.push(name.to_owned());
        rest = &rest[close + 1..];
    }
    Ok(names)
}

pub(crate) fn resource_route(
    h: &Handler<'_>,
    options: &ResourceOptions,
) -> syn::Result<(String, TokenStream)> {
    let name = route_name(&options.common.name, h.fn_name);
    let (key, constructor) = match (&options.uri, &options.uri_template) {
        (Some(uri), None) => {
            if let Some((ident, ..)) = h.params.arguments().next() {
                return Err(syn::Error::new_spanned(
                    ident,
                    "a resource with a fixed `uri` takes no arguments; use `uri_template` for variables",
                ));
            }
            (uri.clone(), quote!(::mcp_server::__private::ResourceRoute::fixed(#uri, #name, __handler)))
        }
        (None, Some(template)) => {
            let variables = template_variables(template)?;
            for (ident, ..) in h.params.arguments() {
                if !variables.contains(&ident.to_string()) {
                    return Err(syn::Error::new_spanned(
                        ident,
                        format!("`{ident}` is not a variable of the URI template {:?}", template.value()),
                    ));
                }
            }
            let constructor = quote! {
                match ::mcp_server::__private::ResourceRoute::templated(#template, #name, __handler) {
                    ::std::result::Result::Ok(route) => route,
                    ::std::result::Result::Err(e) => ::std::panic!("{}", e),
                }
            };
            (template.clone(), constructor)
        }
        _ => {
            return Err(syn::Error::new(
                h.fn_name.span(),
                "a #[resource] needs exactly one of `uri = \"...\"` or `uri_template = \"...\"`",
            ));
        }
    };
    let variables = h.params.arguments().map(|(ident, ty, ..)| {
        let local = format_ident!("__arg_{}", ident);
        let var = ident.to_string();
        quote! {
            let #local: #ty = match __call.variable::<#ty>(#var) {
                ::std::result::Result::Ok(v) => v,
                ::std::result::Result::Err(e) => return ::std::result::Result::Err(e),
            };
        }
    });
    let extract = h.params.extract(quote!(__call.context()), &quote!(::std::result::Result::Err(__e)));
    let call = h.call();
    let capture = &h.capture;
    let builder = options.common.builder_calls(h.doc.clone());
    let mime = options.mime_type.as_ref().map(|m| quote!(.mime_type(#m)));
    let expr = quote! {{
        let __handler = move |__call: ::mcp_server::__private::ResourceCall| {
            #capture
            async move {
                #(#variables)*
                #extract
                let __out = #call;
                ::std::result::Result::<_, ::mcp_server::McpError>::Ok(__out)
            }
        };
        #constructor
        #builder
        #mime
    }};
    Ok((key.value(), expr))
}
