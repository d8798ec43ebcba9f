//! Matching URIs against RFC 6570 URI templates, for resource templates.
//!
//! Supported: simple expansion `{var}` (a variable matches a non-empty run
//! without `/`, `?` or `#`), reserved expansion `{+var}` (may contain `/`),
//! and lists of names in one expression are not supported.
//!
//! ```
//! use mcp_server::uri_template::UriTemplate;
//! let t = UriTemplate::parse("file:///{+path}").unwrap();
//! assert_eq!(t.matches("file:///a/b.txt").unwrap()["path"], "a/b.txt");
//! let t = UriTemplate::parse("test://template/{id}/data").unwrap();
//! assert_eq!(t.matches("test://template/123/data").unwrap()["id"], "123");
//! assert!(t.matches("test://template/1/2/data").is_none());
//! ```

use std::collections::BTreeMap;

/// A parsed URI template.
#[derive(Debug, Clone, PartialEq)]
pub struct UriTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Variable { name: String, reserved: bool },
}

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid URI template {template:?}: {reason}")]
pub struct UriTemplateError {
    template: String,
    reason: &'static str,
}

/// Longest URI matched against templates.
const MAX_URI_LEN: usize = 8 * 1024;

impl UriTemplate {
    /// Parses a template.
    pub fn parse(template: &str) -> Result<Self, UriTemplateError> {
        let fail = |reason| UriTemplateError { template: template.to_owned(), reason };
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or_else(|| fail("unclosed '{'"))? + open;
            let expr = &rest[open + 1..close];
            let (reserved, name) = match expr.strip_prefix('+') {
                Some(name) => (true, name),
                None => (false, expr),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(fail("variable names must be letters, digits or '_'"));
            }
            if matches!(parts.last(), Some(Part::Variable { .. })) {
                return Err(fail("two variables must be separated by a literal"));
            }
            parts.push(Part::Variable { name: name.to_owned(), reserved });
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(fail("unmatched '}'"));
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { source: template.to_owned(), parts })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The variable names, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable { name, .. } => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The variables' values when `uri` matches the template.
    pub fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        if uri.len() > MAX_URI_LEN {
            return None;
        }
        let mut values = BTreeMap::new();
        let mut rest = uri;
        let mut parts = self.parts.iter().peekable();
        while let Some(part) = parts.next() {
            match part {
                Part::Literal(lit) => rest = rest.strip_prefix(lit.as_str())?,
                Part::Variable { name, reserved } => {
                    // Variables are separated by literals, so the next literal
                    // (or the end) bounds this one.
                    let end = match parts.peek() {
                        Some(Part::Literal(lit)) if *reserved => rest.rfind(lit.as_str())?,
                        Some(Part::Literal(lit)) => rest.find(lit.as_str())?,
                        _ => rest.len(),
                    };
                    let value = &rest[..end];
                    let forbidden: &[char] = if *reserved { &['?', '#'] } else { &['/', '?', '#'] };
                    if value.is_empty() || value.contains(forbidden) {
                        return None;
                    }
                    values.insert(name.clone(), value.to_owned());
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_templates() {
        assert!(UriTemplate::parse("a/{id").is_err());
        assert!(UriTemplate::parse("a/{}").is_err());
        assert!(UriTemplate::parse("a/{x}{y}").is_err());
        assert!(UriTemplate::parse("a/{x y}").is_err());
    }

    #[test]
    fn literal_only_template_matches_exactly() {
        let t = UriTemplate::parse("test://static").unwrap();
        assert!(t.matches("test://static").is_some());
        assert!(t.matches("test://static2").is_none());
    }

    #[test]
    fn simple_variables_do_not_cross_slashes() {
        let t = UriTemplate::parse("users://{user}/notes/{note}").unwrap();
        let m = t.matches("users://ann/notes/42").unwrap();
        assert_eq!((m["user"].as_str(), m["note"].as_str()), ("ann", "42"));
        assert!(t.matches("users://ann/x/notes/42").is_none());
        assert!(t.matches("users:///notes/42").is_none());
    }
}
