//! Blocking waits for a lock's release signal: `BLPOP` on dedicated connections.
//!
//! A blocked `BLPOP` holds up every later command on its connection, so it never runs on the
//! caller's shared connection; waiters borrow a connection from a small pool made from the
//! endpoint given to [`Locks::with_wait_client`](crate::Locks::with_wait_client).
//! A connection whose `BLPOP` was abandoned (cancelled waiter) is dropped, not pooled, since its
//! reply is still outstanding.

use std::sync::Mutex;
use std::time::Duration;

use lanes_redis::{Conn, Endpoint};
use redis::{RedisError, RedisResult};

/// Idle blocking connections kept for later waits.
const MAX_IDLE: usize = 8;
/// How long to set up a blocking connection before falling back to a timed sleep.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Slack given to the server's own `BLPOP` timeout before the client gives up on the reply.
const REPLY_GRACE: Duration = Duration::from_secs(2);

/// A pool of connections for `BLPOP`, made from one client.
pub(crate) struct SignalWaiter {
    endpoint: Endpoint,
    idle: Mutex<Vec<Conn>>,
}

impl SignalWaiter {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Blocks until a release signal arrives on `signal` (`Ok(true)`) or `timeout` passes
    /// (`Ok(false)`). An error means no blocking wait was possible; the caller sleeps instead.
    pub(crate) async fn wait(&self, signal: &str, timeout: Duration) -> RedisResult<bool> {
        let mut conn = match self.take() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        // BLPOP takes seconds with millisecond precision; 0 would mean "forever".
        let millis = timeout.as_millis().clamp(1, u128::from(u32::MAX));
        let secs = format!("{}.{:03}", millis / 1000, millis % 1000);
        let mut blpop = redis::cmd("BLPOP");
        blpop.arg(signal).arg(secs);
        let pop = blpop.query_async::<Option<(String, String)>>(&mut conn);
        let popped = match tokio::time::timeout(timeout.saturating_add(REPLY_GRACE), pop).await {
            Ok(popped) => popped?,
            Err(_elapsed) => return Err(timed_out("blocking wait got no reply")),
        };
        self.put_back(conn);
        Ok(popped.is_some())
    }

    fn take(&self) -> Option<Conn> {
        self.idle.lock().ok()?.pop()
    }

    fn put_back(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> RedisResult<Conn> {
        match tokio::time::timeout(
            CONNECT_TIMEOUT + REPLY_GRACE,
            self.endpoint.dedicated(CONNECT_TIMEOUT),
        )
        .await
        {
            Ok(conn) => conn,
            Err(_elapsed) => Err(timed_out("blocking connection timed out")),
        }
    }
}

fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}
