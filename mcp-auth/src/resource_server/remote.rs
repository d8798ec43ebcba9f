//! A document fetched from the authorization server and kept: metadata or
//! JWKS. Readers never wait while it is fresh; refreshes are single-flight
//! (one fetch however many requests need it) and rate-limited; a failed
//! refresh keeps the last good copy.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::error::UpstreamError;

#[derive(Debug)]
pub(crate) struct Remote<T> {
    what: &'static str,
    state: RwLock<State<T>>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State<T> {
    value: Option<Arc<T>>,
    fresh_until: SystemTime,
    last_attempt: Option<SystemTime>,
    last_error: Option<UpstreamError>,
    generation: u64,
}

/// What a reader saw.
#[derive(Debug)]
pub(crate) struct Snapshot<T> {
    pub(crate) value: Option<Arc<T>>,
    pub(crate) fresh: bool,
    pub(crate) generation: u64,
}

impl<T> Remote<T> {
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            state: RwLock::new(State {
                value: None,
                fresh_until: SystemTime::UNIX_EPOCH,
                last_attempt: None,
                last_error: None,
                generation: 0,
            }),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn snapshot(&self, now: SystemTime) -> Snapshot<T> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Snapshot { value: state.value.clone(), fresh: now < state.fresh_until, generation: state.generation }
    }

    /// Fetches a new copy, unless another task already did since the caller
    /// saw `seen_generation` (then that copy is returned), or the last attempt
    /// is less than `min_interval` old (then the current copy, or the last
    /// failure as [`UpstreamError::Backoff`]). `fetch` yields the document and
    /// how long it stays fresh.
    pub(crate) async fn refresh<F, Fut>(
        &self,
        seen_generation: u64,
        clock: &dyn Clock,
        min_interval: Duration,
        fetch: F,
    ) -> Result<(Arc<T>, u64), UpstreamError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, Duration), UpstreamError>>,
    {
        let _single_flight = self.refresh.lock().await;
        let now = clock.now();
        {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            if state.generation != seen_generation
                && let Some(value) = &state.value
            {
                return Ok((value.clone(), state.generation));
            }
            if let Some(last) = state.last_attempt {
                let next = last + min_interval;
                if now < next {
                    return match (&state.last_error, &state.value) {
                        (None, Some(value)) => Ok((value.clone(), state.generation)),
                        (last_error, _) => Err(UpstreamError::Backoff {
                            what: self.what,
                            last: last_error
                                .as_ref()
                                .map_or_else(|| "no answer yet".to_owned(), ToString::to_string),
                            retry_in_secs: next.duration_since(now).unwrap_or_default().as_secs().max(1),
                        }),
                    };
                }
            }
        }
        let outcome = fetch().await;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.last_attempt = Some(now);
        match outcome {
            Ok((value, ttl)) => {
                let value = Arc::new(value);
                state.value = Some(value.clone());
                state.fresh_until = now + ttl;
                state.last_error = None;
                state.generation += 1;
                Ok((value, state.generation))
            }
            Err(error) => {
                let kept =
                    if state.value.is_some() { "the last good copy stays in use" } else { "nothing cached" };
                tracing::warn!(
                    what = self.what,
                    %error,
                    "mcp-auth: fetching the {} failed ({kept}); bearer tokens that need it get 401 until it recovers",
                    self.what,
                );
                state.last_error = Some(error.clone());
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Manual(Mutex<SystemTime>);
    impl Clock for Manual {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }
    impl Manual {
        fn advance(&self, secs: u64) {
            *self.0.lock().unwrap() += Duration::from_secs(secs);
        }
    }

    fn clock() -> Manual {
        Manual(Mutex::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)))
    }

    #[tokio::test]
    async fn fresh_until_ttl_then_stale() {
        let clock = clock();
        let remote = Remote::<u32>::new("thing");
        let (v, _) = remote
            .refresh(0, &clock, Duration::ZERO, || async { Ok((7, Duration::from_secs(10))) })
            .await
            .unwrap();
        assert_eq!(*v, 7);
        assert!(remote.snapshot(clock.now()).fresh);
        clock.advance(10);
        let snap = remote.snapshot(clock.now());
        assert!(!snap.fresh);
        assert_eq!(snap.value.as_deref(), Some(&7));
    }

    #[tokio::test]
    async fn failure_keeps_last_copy_and_backs_off() {
        let clock = clock();
        let remote = Remote::<u32>::new("thing");
        remote.refresh(0, &clock, Duration::ZERO, || async { Ok((1, Duration::ZERO)) }).await.unwrap();
        let err = remote
            .refresh(1, &clock, Duration::from_secs(5), || async {
                Err(UpstreamError::Status { url: "u".into(), status: 503 })
            })
            .await;
        // The success just before is within the interval: no fetch happened.
        assert_eq!(*err.unwrap().0, 1);
        clock.advance(6);
        let err = remote
            .refresh(1, &clock, Duration::from_secs(5), || async {
                Err(UpstreamError::Status { url: "u".into(), status: 503 })
            })
            .await;
        assert!(matches!(err, Err(UpstreamError::Status { status: 503, .. })));
        assert_eq!(remote.snapshot(clock.now()).value.as_deref(), Some(&1));
        let calls = AtomicUsize::new(0);
        let backoff = remote
            .refresh(1, &clock, Duration::from_secs(5), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok((2, Duration::ZERO))
            })
            .await;
        assert!(matches!(backoff, Err(UpstreamError::Backoff { .. })), "{backoff:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_newer_generation_is_reused_without_fetching() {
        let clock = clock();
        let remote = Remote::<u32>::new("thing");
        remote.refresh(0, &clock, Duration::ZERO, || async { Ok((1, Duration::ZERO)) }).await.unwrap();
        let (v, generation) =
            remote.refresh(0, &clock, Duration::ZERO, || async { panic!("must not fetch") }).await.unwrap();
        assert_eq!((*v, generation), (1, 1));
    }
}
