//! Checkpoints: where each channel's collection stands, in Redis, updated after every durable
//! write. A checkpoint names the last message written and the length of the channel's
//! `messages.jsonl` at that message, so a restarted collection cuts off anything written after
//! it (a crash between the write and the checkpoint) and goes on from there: no duplicates, no
//! gaps. Writes are fenced by the channel lock's fencing token: once a newer holder claimed the
//! channel, an older one can no longer move its checkpoint.

use std::sync::LazyLock;
use std::time::Duration;

use lanes_redis::Conn;
use redis::{Script, Value};
use serde::{Deserialize, Serialize};

use crate::keys::Keys;

static BEGIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/begin.lua")));
static SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/save.lua")));

/// Where a channel's collection stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last message written (0: none yet).
    pub last_id: u64,
    /// Length of `messages.jsonl` right after that message.
    pub bytes: u64,
    /// Messages written so far.
    pub messages: u64,
    /// Photos saved so far.
    pub images: u64,
    /// The channel's message count when last seen.
    pub total: u64,
}

/// What a channel held when a task's first attempt began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Base {
    pub messages: u64,
    pub images: u64,
}

impl Base {
    fn parse(s: &str) -> Option<Self> {
        let (m, i) = s.split_once(',')?;
        Some(Self {
            messages: m.parse().ok()?,
            images: i.parse().ok()?,
        })
    }

    fn encode(self) -> String {
        format!("{},{}", self.messages, self.images)
    }
}

/// A claimed checkpoint, from [`Checkpoints::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begun {
    pub checkpoint: Checkpoint,
    pub base: Base,
}

/// A channel's checkpoint and, for one task, what this task has added to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Standing {
    pub checkpoint: Checkpoint,
    /// `None` until the task began.
    pub base: Option<Base>,
}

impl Standing {
    /// Messages and photos the task has added (zero before it began).
    pub fn added(&self) -> (u64, u64) {
        match self.base {
            Some(b) => (
                self.checkpoint.messages.saturating_sub(b.messages),
                self.checkpoint.images.saturating_sub(b.images),
            ),
            None => (0, 0),
        }
    }
}

/// The checkpoint store.
#[derive(Clone)]
pub struct Checkpoints {
    conn: Conn,
    keys: Keys,
    base_ttl: Duration,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl Checkpoints {
    /// Checkpoints under `prefix` (the engine's); a task's base expires after `base_ttl` (the
    /// result TTL).
    pub fn new(conn: impl Into<Conn>, prefix: &str, base_ttl: Duration) -> Self {
        Self {
            conn: conn.into(),
            keys: Keys::new(prefix),
            base_ttl,
        }
    }

    fn ttl_ms(&self) -> u64 {
        self.base_ttl.as_millis().max(1) as u64
    }

    /// Claims the channel's checkpoint for `fence` and returns it with what the channel held
    /// when `task` first began. `Ok(None)`: a newer holder claimed it.
    pub async fn begin(
        &self,
        channel: &str,
        fence: u64,
        task: &str,
    ) -> redis::RedisResult<Option<Begun>> {
        let reply: Vec<Value> = BEGIN
            .key(self.keys.checkpoint(channel))
            .key(self.keys.base(channel, task))
            .arg(fence)
            .arg(self.ttl_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        let n = |i: usize| reply.get(i).and_then(int).unwrap_or(0);
        if n(0) != 1 {
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            last_id: n(1),
            bytes: n(2),
            messages: n(3),
            images: n(4),
            total: n(5),
        };
        let base = reply
            .get(6)
            .and_then(text)
            .and_then(|s| Base::parse(&s))
            .unwrap_or(Base {
                messages: checkpoint.messages,
                images: checkpoint.images,
            });
        Ok(Some(Begun { checkpoint, base }))
    }

    /// Records `cp` for `fence`; with `rebase`, also resets the task's base. `Ok(false)`: the
    /// token is stale (a newer holder claimed the channel), nothing was written.
    pub async fn save(
        &self,
        channel: &str,
        fence: u64,
        task: &str,
        cp: &Checkpoint,
        rebase: Option<Base>,
    ) -> redis::RedisResult<bool> {
        let written: i64 = SAVE
            .key(self.keys.checkpoint(channel))
            .key(self.keys.base(channel, task))
            .arg(fence)
            .arg(cp.last_id)
            .arg(cp.bytes)
            .arg(cp.messages)
            .arg(cp.images)
            .arg(cp.total)
            .arg(rebase.map(Base::encode).unwrap_or_default())
            .arg(self.ttl_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(written == 1)
    }

    /// The checkpoints of many channels, each with what one task added: `(channel, task)` pairs,
    /// one round trip.
    pub async fn standings(&self, of: &[(String, String)]) -> redis::RedisResult<Vec<Standing>> {
        if of.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (channel, task) in of {
            pipe.cmd("HMGET")
                .arg(self.keys.checkpoint(channel))
                .arg(&["last_id", "bytes", "messages", "images", "total"]);
            pipe.cmd("GET").arg(self.keys.base(channel, task));
        }
        let replies: Vec<Value> = pipe.query_async(&mut self.conn.clone()).await?;
        let mut out = Vec::with_capacity(of.len());
        for pair in replies.chunks(2) {
            let fields = match pair.first() {
                Some(Value::Array(f)) => f.as_slice(),
                _ => &[],
            };
            let n = |i: usize| fields.get(i).and_then(int).unwrap_or(0);
            out.push(Standing {
                checkpoint: Checkpoint {
                    last_id: n(0),
                    bytes: n(1),
                    messages: n(2),
                    images: n(3),
                    total: n(4),
                },
                base: pair.get(1).and_then(text).and_then(|s| Base::parse(&s)),
            });
        }
        Ok(out)
    }
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_round_trip_and_count_what_a_task_added() {
        let b = Base {
            messages: 120,
            images: 7,
        };
        assert_eq!(Base::parse(&b.encode()), Some(b));
        assert_eq!(Base::parse("x,1"), None);
        let s = Standing {
            checkpoint: Checkpoint {
                messages: 300,
                images: 10,
                ..Checkpoint::default()
            },
            base: Some(b),
        };
        assert_eq!(s.added(), (180, 3));
        assert_eq!(Standing::default().added(), (0, 0));
    }
}
