//! The clock behind every expiry decision, swappable so tests can move time.

use std::fmt::Debug;
use std::time::SystemTime;

/// A source of the current time.
///
/// Token lifetimes (`exp`, `nbf`, `iat`) and every cache use it. The default
/// is [`SystemClock`]; tests install their own with
/// [`ResourceServerBuilder::clock`](crate::ResourceServerBuilder::clock).
pub trait Clock: Send + Sync + Debug + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Seconds since the Unix epoch, as JWT `NumericDate`s count (RFC 7519 §2).
pub(crate) fn unix_secs(time: SystemTime) -> f64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The instant a `NumericDate` names, when representable.
pub(crate) fn from_unix_secs(secs: f64) -> Option<SystemTime> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::try_from_secs_f64(secs).ok()?)
}
