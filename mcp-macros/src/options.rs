//! The options each attribute accepts.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprArray, Lit, LitBool, LitStr, Meta};

/// Reads `key = ["a", "b"]`.
fn string_list(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<LitStr>> {
    let array: ExprArray = meta.value()?.parse()?;
    array
        .elems
        .into_iter()
        .map(|e| match e {
            Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Ok(s),
            other => Err(syn::Error::new_spanned(other, "expected a string literal")),
        })
        .collect()
}

/// Options shared by `#[tool]`, `#[prompt]` and `#[resource]`.
#[derive(Default)]
pub(crate) struct Common {
    pub(crate) name: Option<LitStr>,
    pub(crate) title: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) scopes: Vec<LitStr>,
    pub(crate) icons: Vec<LitStr>,
}

impl Common {
    fn parse(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<bool> {
        if meta.path.is_ident("name") {
            self.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("title") {
            self.title = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("description") {
            self.description = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("scopes") {
            self.scopes = string_list(meta)?;
        } else if meta.path.is_ident("icons") {
            self.icons = string_list(meta)?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// Builder calls shared by every route type.
    pub(crate) fn builder_calls(&self, doc: Option<String>) -> TokenStream {
        let mut calls = TokenStream::new();
        let description = self.description.as_ref().map(LitStr::value).or(doc);
        if let Some(d) = description {
            calls.extend(quote!(.description(#d)));
        }
        if let Some(t) = &self.title {
            calls.extend(quote!(.title(#t)));
        }
        if !self.scopes.is_empty() {
            let scopes = &self.scopes;
            calls.extend(quote!(.scopes([#(#scopes),*])));
        }
        if !self.icons.is_empty() {
            let icons = &self.icons;
            calls.extend(quote!(.icons(::std::vec![#(
                ::mcp_server::core::types::Icon { src: ::std::string::String::from(#icons), ..::std::default::Default::default() }
            ),*])));
        }
        calls
    }
}

/// `#[tool(...)]` options.
#[derive(Default)]
pub(crate) struct ToolOptions {
    pub(crate) common: Common,
    pub(crate) annotations: Vec<(syn::Ident, TokenStream)>,
}

const ANNOTATION_FLAGS: [&str; 4] =
    ["read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"];

impl ToolOptions {
    pub(crate) fn parse(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        if self.common.parse(&meta)? {
            return Ok(());
        }
        if meta.path.is_ident("annotations") {
            return meta.parse_nested_meta(|inner| {
                let Some(ident) = inner.path.get_ident().cloned() else {
                    return Err(inner.error("expected an annotation name"));
                };
                let key = ident.to_string();
                if ANNOTATION_FLAGS.contains(&key.as_str()) {
                    let value: LitBool = inner.value()?.parse()?;
                    self.annotations.push((ident, quote!(::std::option::Option::Some(#value))));
                } else if key == "title" {
                    let value: LitStr = inner.value()?.parse()?;
                    self.annotations.push((
                        ident,
                        quote!(::std::option::Option::Some(::std::string::String::from(#value))),
                    ));
                } else {
                    return Err(inner.error(format!(
                        "unknown annotation `{key}`; expected one of title, {}",
                        ANNOTATION_FLAGS.join(", ")
                    )));
                }
                Ok(())
            });
        }
        Err(meta
            .error("unknown #[tool] option; expected name, title, description, annotations, icons or scopes"))
    }
}

/// `#[prompt(...)]` options.
#[derive(Default)]
pub(crate) struct PromptOptions {
    pub(crate) common: Common,
}

impl PromptOptions {
    pub(crate) fn parse(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        if self.common.parse(&meta)? {
            return Ok(());
        }
        Err(meta.error("unknown #[prompt] option; expected name, title, description, icons or scopes"))
    }
}

/// `#[resource(...)]` options.
#[derive(Default)]
pub(crate) struct ResourceOptions {
    pub(crate) common: Common,
    pub(crate) uri: Option<LitStr>,
    pub(crate) uri_template: Option<LitStr>,
    pub(crate) mime_type: Option<LitStr>,
}

impl ResourceOptions {
    pub(crate) fn parse(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        if self.common.parse(&meta)? {
            return Ok(());
        }
        if meta.path.is_ident("uri") {
            self.uri = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("uri_template") {
            self.uri_template = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("mime_type") {
            self.mime_type = Some(meta.value()?.parse()?);
        } else {
            return Err(meta.error(
                "unknown #[resource] option; expected uri, uri_template, mime_type, name, title, description, icons or scopes",
            ));
        }
        Ok(())
    }
}

/// Parses the options of an attribute found inside an `impl` block.
pub(crate) fn parse_inner<F>(attr: &Attribute, parse: F) -> syn::Result<()>
where
    F: FnMut(ParseNestedMeta<'_>) -> syn::Result<()>,
{
    match &attr.meta {
        Meta::Path(_) => Ok(()),
        Meta::List(_) => attr.parse_nested_meta(parse),
        Meta::NameValue(nv) => Err(syn::Error::new_spanned(nv, "expected #[attr] or #[attr(...)]")),
    }
}

/// The text of `///` doc comments, trimmed, or `None`.
pub(crate) fn doc_text(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').unwrap_or(&line).trim_end().to_owned())
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// SPEC §6.1: tool names are 1–128 characters of `[A-Za-z0-9_.-]`.
pub(crate) fn check_tool_name(name: &str, span: Span) -> syn::Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let problem = if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        format!("invalid tool name {name:?}: {c:?} is not allowed")
    } else if name.is_empty() {
        "invalid tool name: it is empty".to_owned()
    } else if name.len() > 128 {
        // Only ASCII is allowed, so bytes are characters.
        format!("invalid tool name: it is {} characters long, more than 128", name.len())
    } else {
        return Ok(());
    };
    Err(syn::Error::new(
        span,
        format!("{problem}; use 1 to 128 characters from A-Z, a-z, 0-9, '_', '-' and '.'"),
    ))
}
