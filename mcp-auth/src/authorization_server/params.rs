//! Request parameters from a query string or an
//! `application/x-www-form-urlencoded` body.

use std::collections::HashMap;

/// Most parameters one request may carry, and the longest value.
const MAX_PARAMS: usize = 64;
const MAX_VALUE_LEN: usize = 8 * 1024;

/// Parameters by name, each present at most once.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, String>,
    /// A parameter that appeared twice, or another defect.
    defect: Option<String>,
}

impl Params {
    /// Parses `input`. RFC 6749 §3.1: parameters MUST NOT be included more
    /// than once; an empty value counts as absent.
    pub(crate) fn parse(input: &[u8]) -> Self {
        let mut params = Self::default();
        for (name, value) in form_urlencoded::parse(input) {
            if params.values.len() >= MAX_PARAMS || value.len() > MAX_VALUE_LEN {
                params.defect.get_or_insert_with(|| "too many or too long parameters".into());
                break;
            }
            if value.is_empty() {
                continue;
            }
            if params.values.insert(name.to_string(), value.into_owned()).is_some() {
                params.defect.get_or_insert_with(|| format!("parameter `{name}` repeated"));
            }
        }
        params
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The first defect found while parsing.
    pub(crate) fn defect(&self) -> Option<&str> {
        self.defect.as_deref()
    }

    /// Whether `name` was among the repeated parameters (checked by re-parsing
    /// only when there is a defect).
    pub(crate) fn repeated(input: &[u8], name: &str) -> bool {
        form_urlencoded::parse(input).filter(|(n, v)| n == name && !v.is_empty()).count() > 1
    }

    /// Every parameter, for handing to a login step.
    pub(crate) fn all(&self) -> &HashMap<String, String> {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_a_defect() {
        let p = Params::parse(b"a=1&b=2&a=3");
        assert_eq!(p.defect(), Some("parameter `a` repeated"));
        assert!(Params::repeated(b"a=1&b=2&a=3", "a"));
        assert!(!Params::repeated(b"a=1&b=2&a=3", "b"));
        let p = Params::parse(b"x=%20y&empty=");
        assert_eq!((p.get("x"), p.get("empty"), p.defect()), (Some(" y"), None, None));
    }
}
