//! Scope strings (RFC 6749 §3.3): space-delimited, case-sensitive tokens.

/// The tokens of a scope string, without duplicates, in order.
pub(crate) fn parse(scope: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        if !out.contains(&token) {
            out.push(token);
        }
    }
    out
}

/// Whether every token of `requested` is in `allowed`.
pub(crate) fn is_subset(requested: &[&str], allowed: &str) -> bool {
    let allowed = parse(allowed);
    requested.iter().all(|r| allowed.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_compare() {
        assert_eq!(parse(" a  b a "), ["a", "b"]);
        assert!(is_subset(&["a"], "a b"));
        assert!(!is_subset(&["a", "c"], "a b"));
    }
}
