//! One listener's feed of the server's changes, for the transports that
//! forward them to clients as notifications.

use tokio::sync::broadcast::{self, error::RecvError};

use crate::server::Change;

/// Every list a client may be told changed.
pub(crate) const EVERY_LIST: [Change; 3] = [Change::Tools, Change::Prompts, Change::Resources];

/// What a [`ChangeFeed`] delivers.
#[derive(Debug)]
pub(crate) enum Changed {
    /// This change.
    One(Change),
    /// The listener fell behind and missed changes: anything may have changed.
    Missed,
}

impl Changed {
    /// The changes to announce: after a miss, every list.
    pub(crate) fn changes(self) -> Vec<Change> {
        match self {
            Self::One(change) => vec![change],
            Self::Missed => EVERY_LIST.to_vec(),
        }
    }
}

/// The server's changes as they happen, for one listener.
#[derive(Debug)]
pub(crate) struct ChangeFeed(broadcast::Receiver<Change>);

impl ChangeFeed {
    pub(crate) fn new(changes: broadcast::Receiver<Change>) -> Self {
        Self(changes)
    }

    /// The next change; `None` once the server is gone.
    pub(crate) async fn next(&mut self) -> Option<Changed> {
        match self.0.recv().await {
            Ok(change) => Some(Changed::One(change)),
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "a change listener fell behind");
                Some(Changed::Missed)
            }
            Err(RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn changes_then_a_miss_then_the_end() {
        let (tx, rx) = broadcast::channel(2);
        let mut feed = ChangeFeed::new(rx);
        tx.send(Change::Tools).unwrap();
        assert_eq!(feed.next().await.unwrap().changes(), [Change::Tools]);
        for _ in 0..3 {
            tx.send(Change::Prompts).unwrap();
        }
        assert_eq!(feed.next().await.unwrap().changes(), EVERY_LIST, "one change was dropped");
        drop(tx);
        let rest: Vec<_> =
            std::iter::from_fn(|| futures_util::FutureExt::now_or_never(feed.next()).flatten()).collect();
        assert_eq!(rest.len(), 2, "the two changes still queued");
        assert!(feed.next().await.is_none());
    }
}
