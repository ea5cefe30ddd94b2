//! `ServerTime`: an instant on the Redis server's clock, the one clock every machine shares.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant read from Redis `TIME`, in microseconds since the Unix epoch.
///
/// Every decision in this crate is taken on this clock, never on the caller's, so machines with
/// skewed clocks still share one limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerTime {
    micros: u64,
}

impl ServerTime {
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: ServerTime) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.micros)
    }

    /// From a script reply value (integer microseconds, never negative in practice).
    pub(crate) fn from_reply(micros: i64) -> Self {
        Self::from_micros(u64::try_from(micros).unwrap_or(0))
    }
}

impl From<ServerTime> for SystemTime {
    fn from(t: ServerTime) -> Self {
        t.to_system_time()
    }
}
