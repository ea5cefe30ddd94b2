//! The collector's Redis key schema: the only place its key names are built. Everything lives
//! under the engine's prefix `P`, and all keys of one channel share the hash tag
//! `{collector:<channel>}`, so each checkpoint script touches a single Redis Cluster slot.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `P:{collector:<ch>}:checkpoint` | hash | `last_id`, `bytes` (length of `messages.jsonl` at that id), `messages`, `images`, `total` (the channel's count when last seen), `fence` (highest fencing token that claimed it), `updated_ms` | never: it is where the next collection resumes (one small hash per channel ever collected) |
//! | `P:{collector:<ch>}:base:<task id>` | string | `messages,images` the channel held when that task's first attempt began (so a job's counts stay exact across retries) | with the result TTL |
//!
//! The channel lock is a `lanes-lock` lock named [`lock_name`] (that crate builds its keys:
//! `P:{lock:collector:<ch>}:*`).

/// Builds the collector's key names under one prefix (the engine's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The channel's checkpoint hash.
    pub fn checkpoint(&self, channel: &str) -> String {
        format!("{}:{{collector:{channel}}}:checkpoint", self.prefix)
    }

    /// What the channel held when `task` first began collecting it.
    pub fn base(&self, channel: &str, task: &str) -> String {
        format!("{}:{{collector:{channel}}}:base:{task}", self.prefix)
    }
}

/// The name of the lock that keeps one channel to one collection at a time.
pub fn lock_name(channel: &str) -> String {
    format!("collector:{channel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channels_keys_share_one_hash_tag_under_the_prefix() {
        let k = Keys::new("lanes");
        let ck = k.checkpoint("rust_daily");
        let base = k.base("rust_daily", "channels.0190");
        assert_eq!(ck, "lanes:{collector:rust_daily}:checkpoint");
        for key in [&ck, &base] {
            assert!(key.starts_with("lanes:"));
            assert!(key.contains("{collector:rust_daily}"));
        }
    }
}
