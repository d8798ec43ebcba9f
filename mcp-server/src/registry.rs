//! Ordered catalogs of tools, prompts and resources, with stable cursors.
//!
//! Every entry gets a sequence number when first added; lists are in that
//! order, and a cursor is an opaque encoding of "after sequence N". Cursors
//! stay valid while entries are added or removed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_core::McpError;

/// One catalog, keyed by name (or URI).
#[derive(Debug)]
pub(crate) struct Catalog<T> {
    by_seq: BTreeMap<u64, Arc<T>>,
    seq_of: HashMap<String, u64>,
    next_seq: u64,
}

impl<T> Default for Catalog<T> {
    fn default() -> Self {
        Self { by_seq: BTreeMap::new(), seq_of: HashMap::new(), next_seq: 0 }
    }
}

/// One page of a list.
#[derive(Debug)]
pub(crate) struct Page<T> {
    pub(crate) items: Vec<Arc<T>>,
    pub(crate) next_cursor: Option<String>,
}

const CURSOR_PREFIX: &str = "c1:";

fn encode_cursor(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{seq}"))
}

fn decode_cursor(cursor: &str) -> Result<u64, McpError> {
    let invalid = || McpError::invalid_params("invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    text.strip_prefix(CURSOR_PREFIX).and_then(|n| n.parse().ok()).ok_or_else(invalid)
}

impl<T> Catalog<T> {
    /// Adds or replaces an entry. A replaced entry keeps its place in the order.
    pub(crate) fn insert(&mut self, key: String, item: T) -> bool {
        let item = Arc::new(item);
        if let Some(seq) = self.seq_of.get(&key) {
            self.by_seq.insert(*seq, item);
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seq_of.insert(key, seq);
        self.by_seq.insert(seq, item);
        true
    }

    pub(crate) fn remove(&mut self, key: &str) -> bool {
        match self.seq_of.remove(key) {
            Some(seq) => self.by_seq.remove(&seq).is_some(),
            None => false,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Arc<T>> {
        self.seq_of.get(key).and_then(|seq| self.by_seq.get(seq))
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.seq_of.contains_key(key)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<T>> {
        self.by_seq.values()
    }

    /// Up to `size` visible entries after `cursor`.
    pub(crate) fn page(
        &self,
        cursor: Option<&str>,
        size: usize,
        visible: impl Fn(&T) -> bool,
    ) -> Result<Page<T>, McpError> {
        let start = match cursor {
            Some(c) => decode_cursor(c)?.saturating_add(1),
            None => 0,
        };
        let mut items = Vec::new();
        let mut last_seq = None;
        let mut more = false;
        for (seq, item) in self.by_seq.range(start..).filter(|(_, item)| visible(item)) {
            if items.len() == size {
                more = true;
                break;
            }
            items.push(item.clone());
            last_seq = Some(*seq);
        }
        let next_cursor = if more { last_seq.map(encode_cursor) } else { None };
        Ok(Page { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(n: usize) -> Catalog<usize> {
        let mut c = Catalog::default();
        for i in 0..n {
            c.insert(format!("k{i}"), i);
        }
        c
    }

    fn all_pages(c: &Catalog<usize>, size: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = c.page(cursor.as_deref(), size, |_| true).unwrap();
            out.extend(page.items.iter().map(|i| **i));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return out,
            }
        }
    }

    #[test]
    fn pages_cover_everything_once_in_order() {
        let c = catalog(7);
        assert_eq!(all_pages(&c, 3), (0..7).collect::<Vec<_>>());
        assert_eq!(all_pages(&c, 7), (0..7).collect::<Vec<_>>());
        assert!(c.page(None, 7, |_| true).unwrap().next_cursor.is_none());
    }

    #[test]
    fn cursors_survive_removal() {
        let mut c = catalog(6);
        let first = c.page(None, 2, |_| true).unwrap();
        c.remove("k1");
        c.remove("k2");
        let rest = c.page(first.next_cursor.as_deref(), 10, |_| true).unwrap();
        assert_eq!(rest.items.iter().map(|i| **i).collect::<Vec<_>>(), [3, 4, 5]);
    }

    #[test]
    fn garbage_cursor_is_invalid_params() {
        let c = catalog(1);
        assert!(matches!(c.page(Some("garbage!!"), 5, |_| true), Err(McpError::InvalidParams(_))));
        assert!(matches!(c.page(Some("Zm9v"), 5, |_| true), Err(McpError::InvalidParams(_))));
    }
}
