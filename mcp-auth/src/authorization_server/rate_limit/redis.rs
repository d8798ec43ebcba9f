//! Fixed windows counted in Redis, shared by every instance that uses the
//! same Redis and key prefix. One request is one script call (one round
//! trip): `INCR` of the key `<prefix>:rl:<endpoint>:<client>`, `PEXPIRE` on
//! the window's first hit, and the count and time left back.
//!
//! The connection is made on first use and again after a failure. A call
//! that fails or takes longer than [`TIMEOUT`] leaves the request to the
//! in-memory windows, and so does every request for [`RETRY_AFTER`] after
//! that (Redis is not asked again before then, so an outage costs at most
//! one timeout per [`RETRY_AFTER`]); an error answer of Redis leaves only
//! its own request to them. A warning says so at most once per
//! [`WARN_EVERY`].

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, Script};

use super::client::ClientKey;
use super::{Bucket, Limit};
use crate::error::ConfigError;

/// Longest wait for a connection, and for the answer to one count.
const TIMEOUT: Duration = Duration::from_millis(250);

/// How long after a failure requests are counted in memory without asking Redis.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Least time between two warnings that Redis does not answer.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// `KEYS[1]`: the window's counter; `ARGV[1]`: the window in milliseconds.
/// Returns the count including this request and the window's milliseconds
/// left. A counter without expiry (only a foreign write could leave one)
/// gets one, so that no client is refused forever.
const COUNT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
";

/// Why Redis gave no count.
#[derive(Debug, thiserror::Error)]
enum CountError {
    /// Connecting, or the call, failed.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// No connection, or no answer, within [`TIMEOUT`].
    #[error("no answer within {} ms", TIMEOUT.as_millis())]
    Timeout,
    /// An earlier failure is recent: Redis is not asked before [`RETRY_AFTER`].
    #[error("waiting before the next attempt")]
    Waiting,
}

impl CountError {
    /// Whether the connection is to be given up: for anything but an error
    /// answer (such as a counter that a foreign write made a string), which
    /// came over a working connection and concerns one key.
    fn breaks_connection(&self) -> bool {
        !matches!(self, Self::Redis(e) if matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::UnexpectedReturnType))
    }
}

/// The connection to Redis, as far as this instance knows.
enum Link {
    /// None yet, or the last one failed long enough ago: connect.
    Idle,
    /// Connected (a multiplexed connection: clones share it).
    Up(MultiplexedConnection),
    /// Failed; counted in memory until then.
    Down { until: Instant },
}

/// The windows of every endpoint, in Redis.
pub(crate) struct RedisWindows {
    client: Client,
    prefix: String,
    script: Script,
    /// Held while connecting, so that concurrent requests make one connection.
    link: tokio::sync::Mutex<Link>,
    /// What has been logged about failures.
    health: Mutex<Health>,
}

/// Failures since Redis last answered, as logged.
#[derive(Debug, Default)]
struct Health {
    /// A failure happened since the last connection was made.
    down: bool,
    /// When the last warning was logged.
    last_warning: Option<Instant>,
    /// Failures since then, not logged.
    unreported: u64,
}

/// Shows the prefix only: the URL may hold a password.
impl fmt::Debug for RedisWindows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisWindows").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisWindows {
    /// Windows in the Redis at `url` (`redis://[:password@]host[:port][/db]`),
    /// under keys starting with `prefix`. Checks the URL; connects only
    /// when first used.
    pub(crate) fn open(url: &str, prefix: &str) -> Result<Self, ConfigError> {
        // redis-rs never repeats the URL, which may hold a password, in these errors.
        let client = Client::open(url).map_err(|e| ConfigError::Invalid {
            key: "redis.url",
            message: format!("is not a usable Redis URL: {e}"),
        })?;
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            script: Script::new(COUNT_SCRIPT),
            link: tokio::sync::Mutex::new(Link::Idle),
            health: Mutex::new(Health::default()),
        })
    }

    /// Counts a request of `client` against `limit` (whose `max` is not 0):
    /// `Some(Err(time to wait))` when over it, `None` when Redis gave no
    /// count (and the caller counts in memory).
    pub(super) async fn count(
        &self,
        bucket: Bucket,
        client: ClientKey,
        limit: Limit,
    ) -> Option<Result<(), Duration>> {
        let key = format!("{}:rl:{}:{client}", self.prefix, bucket.name());
        let window = Duration::from_secs(limit.window_secs.max(1));
        match self.try_count(&key, window).await {
            Ok((count, left)) if count > u64::from(limit.max) => Some(Err(left)),
            Ok(_) => Some(Ok(())),
            Err(CountError::Waiting) => None,
            Err(error) => {
                self.failed(&error).await;
                None
            }
        }
    }

    async fn try_count(&self, key: &str, window: Duration) -> Result<(u64, Duration), CountError> {
        let mut connection = self.connection().await?;
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let mut invocation = self.script.prepare_invoke();
        invocation.key(key).arg(window_ms);
        let call = invocation.invoke_async::<(u64, i64)>(&mut connection);
        let (count, left_ms) =
            tokio::time::timeout(TIMEOUT, call).await.map_err(|_| CountError::Timeout)??;
        Ok((count, Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))))
    }

    /// The connection, made now if there is none and no failure is recent.
    async fn connection(&self) -> Result<MultiplexedConnection, CountError> {
        let mut link = self.link.lock().await;
        match &*link {
            Link::Up(connection) => return Ok(connection.clone()),
            Link::Down { until } if Instant::now() < *until => return Err(CountError::Waiting),
            Link::Down { .. } | Link::Idle => {}
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let connect = self.client.get_multiplexed_async_connection_with_config(&config);
        let connected = match tokio::time::timeout(TIMEOUT, connect).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(down(&mut link, error.into())),
            Err(_) => return Err(down(&mut link, CountError::Timeout)),
        };
        *link = Link::Up(connected.clone());
        drop(link);
        let mut health = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if std::mem::take(&mut health.down) {
            tracing::info!("mcp-auth: Redis answers again: rate limits are shared again");
        }
        Ok(connected)
    }

    /// After a failure: unless Redis answered, counts in memory for
    /// [`RETRY_AFTER`] (a call times out long before that, so a late failure
    /// cannot drop a connection made after it); warns unless a warning is
    /// recent.
    async fn failed(&self, error: &CountError) {
        if error.breaks_connection() {
            let mut link = self.link.lock().await;
            if !matches!(*link, Link::Down { .. }) {
                *link = Link::Down { until: Instant::now() + RETRY_AFTER };
            }
        }
        let now = Instant::now();
        let mut health = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        health.down = true;
        if health.last_warning.is_some_and(|at| now.saturating_duration_since(at) < WARN_EVERY) {
            health.unreported += 1;
            return;
        }
        tracing::warn!(
            %error,
            unreported_failures = health.unreported,
            "mcp-auth: Redis does not answer: rate limits are counted by this instance alone until it does"
        );
        health.last_warning = Some(now);
        health.unreported = 0;
    }
}

/// Marks the link down for [`RETRY_AFTER`]; returns `error`.
fn down(link: &mut Link, error: CountError) -> CountError {
    *link = Link::Down { until: Instant::now() + RETRY_AFTER };
    error
}
