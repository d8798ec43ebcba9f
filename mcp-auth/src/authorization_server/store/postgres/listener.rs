//! The revocation feed of the PostgreSQL store: one connection of its own
//! (not from the pool, so store operations never wait for it) runs
//! `LISTEN` on the channel the records table's trigger notifies, and turns
//! each notification into a [`RevocationEvent`] on a broadcast channel.
//!
//! `Connected` is sent once `LISTEN` has succeeded, `Disconnected` as soon
//! as the connection fails; it then reconnects after a back-off doubling
//! from 100 ms to 5 s. TCP keepalives notice a connection that died
//! without a word within about 25 s. The task ends when the store (its
//! last clone) is dropped.

use std::future::{Future as _, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use super::rows::{ACCESS, GRANT};
use super::schema::REVOCATION_CHANNEL;
use crate::authorization_server::store::{RevocationEvent, RevocationFeed};

/// Events buffered per subscriber; one that falls further behind is told
/// it lagged, and clears its cache.
const CAPACITY: usize = 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LAST_BACKOFF: Duration = Duration::from_secs(5);
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;

/// The running listener; dropping it stops the task.
#[derive(Debug)]
pub(super) struct Listener {
    sender: broadcast::Sender<RevocationEvent>,
    connected: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Listener {
    /// Starts listening on the runtime `runtime`.
    pub(super) fn start(runtime: &tokio::runtime::Handle, mut config: tokio_postgres::Config) -> Self {
        // A connection that dies silently (no reset) is noticed by TCP
        // keepalives within about 25 s, well inside the cache's 60 s TTL.
        config
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES);
        let (sender, _) = broadcast::channel(CAPACITY);
        let connected = Arc::new(AtomicBool::new(false));
        let task = runtime.spawn(run(config, sender.clone(), connected.clone()));
        Self { sender, connected, task }
    }

    /// A new subscription.
    pub(super) fn subscribe(&self) -> RevocationFeed {
        RevocationFeed::new(self.sender.subscribe(), self.connected.clone())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Marks the feed disconnected when the listening task ends however it
/// ends (aborted, panicked, its runtime shut down), so that no subscriber
/// caches on the word of a listener that is gone.
struct DisconnectOnDrop {
    sender: broadcast::Sender<RevocationEvent>,
    connected: Arc<AtomicBool>,
}

impl Drop for DisconnectOnDrop {
    fn drop(&mut self) {
        if self.connected.swap(false, Ordering::SeqCst) {
            let _ = self.sender.send(RevocationEvent::Disconnected);
        }
    }
}

/// Listens, reconnecting with back-off, until aborted.
async fn run(
    config: tokio_postgres::Config,
    sender: broadcast::Sender<RevocationEvent>,
    connected: Arc<AtomicBool>,
) {
    let _gone = DisconnectOnDrop { sender: sender.clone(), connected: connected.clone() };
    let mut backoff = FIRST_BACKOFF;
    loop {
        let listened = listen(&config, &sender, &connected).await;
        if connected.swap(false, Ordering::SeqCst) {
            let _ = sender.send(RevocationEvent::Disconnected);
            tracing::warn!(
                "mcp-auth: revocation listener disconnected; revocation checks read the database until it is back"
            );
        }
        match listened {
            // It had been connected: try again soon.
            Ok(()) => backoff = FIRST_BACKOFF,
            Err(error) => tracing::debug!(%error, "mcp-auth: revocation listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(LAST_BACKOFF);
    }
}

/// One connection: `Err` if it never got to listen, `Ok` once it ends
/// after having listened.
async fn listen(
    config: &tokio_postgres::Config,
    sender: &broadcast::Sender<RevocationEvent>,
    connected: &AtomicBool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection must be driven while LISTEN runs; notifications cannot
    // arrive before it has succeeded.
    {
        let sql = format!("LISTEN {REVOCATION_CHANNEL}");
        let mut statement = pin!(client.batch_execute(&sql));
        let done = poll_fn(|cx| {
            if let Poll::Ready(result) = statement.as_mut().poll(cx) {
                return Poll::Ready(Some(result));
            }
            match connection.poll_message(cx) {
                Poll::Ready(Some(Ok(_))) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match done {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => return Ok(()),
        }
    }
    connected.store(true, Ordering::SeqCst);
    let _ = sender.send(RevocationEvent::Connected);
    tracing::debug!("mcp-auth: revocation listener connected");
    loop {
        match poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(n))) if n.channel() == REVOCATION_CHANNEL => {
                if let Some(event) = event(n.payload()) {
                    let _ = sender.send(event);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                tracing::debug!(%error, "mcp-auth: revocation listener connection failed");
                break;
            }
            None => break,
        }
    }
    drop(client);
    Ok(())
}

/// A trigger payload, `kind:key`.
fn event(payload: &str) -> Option<RevocationEvent> {
    match payload.split_once(':')? {
        (ACCESS, jti) => Some(RevocationEvent::AccessToken(jti.to_owned())),
        (GRANT, grant_id) => Some(RevocationEvent::Grant(grant_id.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_the_record() {
        assert_eq!(event("access_token:j:1"), Some(RevocationEvent::AccessToken("j:1".into())));
        assert_eq!(event("grant:g1"), Some(RevocationEvent::Grant("g1".into())));
        assert_eq!(event("client:c"), None);
        assert_eq!(event("nonsense"), None);
    }
}
