//! Every Redis key this crate touches, built here and nowhere else, from one configurable prefix.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `P:{rl:NAME}:tat` | string | GCRA theoretical arrival time, µs on the Redis clock | when it falls into the past |
//! | `P:{rl:NAME}:pause` | string | pause-until, µs on the Redis clock | when the pause ends |
//! | `P:{sem:NAME}:holders` | zset | holder id → lease expiry, ms on the Redis clock | when the last lease expires |
//! | `P:rl:index` | hash | limiter name → rate (`"8/s"`) | never (one field per name) |
//! | `P:sem:index` | hash | semaphore name → capacity | never (one field per name) |
//!
//! `P` is the prefix. The `{rl:NAME}` / `{sem:NAME}` hash tag puts every key one script touches in
//! one Redis Cluster slot; the index hashes are written by plain single-key commands.

use crate::error::{Error, Result};

const MAX_NAME_LEN: usize = 200;

/// Builds the key names under one prefix (for example `lanes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

/// The keys of one rate limiter (one hash tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimiterKeys {
    pub tat: String,
    pub pause: String,
}

impl Keys {
    /// Keys under `prefix`; refused when the prefix is empty or holds braces or whitespace.
    pub fn new(prefix: &str) -> Result<Self> {
        check_name(prefix)?;
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn limiter(&self, name: &str) -> LimiterKeys {
        let base = format!("{}:{{rl:{name}}}", self.prefix);
        LimiterKeys {
            tat: format!("{base}:tat"),
            pause: format!("{base}:pause"),
        }
    }

    pub fn limiter_index(&self) -> String {
        format!("{}:rl:index", self.prefix)
    }

    pub fn semaphore_holders(&self, name: &str) -> String {
        format!("{}:{{sem:{name}}}:holders", self.prefix)
    }

    pub fn semaphore_index(&self) -> String {
        format!("{}:sem:index", self.prefix)
    }
}

/// A limiter, semaphore or prefix name must be usable inside a key and a hash tag.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let refuse = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("must not be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return refuse("must be at most 200 bytes");
    }
    if name.contains(['{', '}']) {
        return refuse("must not contain braces (they would break the cluster hash tag)");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("must not contain whitespace or control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_keys_share_one_hash_tag() {
        let keys = Keys::new("lanes").expect("valid prefix");
        let k = keys.limiter("sp_api");
        assert_eq!(k.tat, "lanes:{rl:sp_api}:tat");
        assert_eq!(k.pause, "lanes:{rl:sp_api}:pause");
        assert_eq!(
            keys.semaphore_holders("chromium"),
            "lanes:{sem:chromium}:holders"
        );
        assert_eq!(keys.limiter_index(), "lanes:rl:index");
        assert_eq!(keys.semaphore_index(), "lanes:sem:index");
    }

    #[test]
    fn refuses_names_that_break_keys() {
        for bad in ["", "a{b", "a}b", "two words", "tab\there", &"x".repeat(201)] {
            assert!(
                matches!(Keys::new(bad), Err(Error::InvalidName { .. })),
                "{bad:?} should be refused"
            );
            assert!(check_name(bad).is_err());
        }
        assert!(check_name("gemini:flash-2.0").is_ok());
    }
}
