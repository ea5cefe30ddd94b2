//! Every Redis key this crate touches, built here and nowhere else, from one configurable prefix.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `P:{lock:KEY}:holder` | hash | `owner` (random token), `fence` (its fencing token) | with the lock's TTL (renewed while held) |
//! | `P:{lock:KEY}:fence` | string | last fencing token handed out for `KEY` (`INCR`) | never: tokens must keep rising |
//! | `P:{lock:KEY}:signal` | list | release wake-ups for blocked waiters (at most 16) | 10 s after the last release |
//! | `P:{fenced:NAME}` | hash | `fence` (highest accepted token), `value` | never (caller's data) |
//!
//! `P` is the prefix. The `{lock:KEY}` hash tag puts every key one lock script touches in one
//! Redis Cluster slot; a fenced resource is a single key. The fence counter is the only
//! per-lock key that outlives the lock (a few dozen bytes per lock key ever used): deleting it
//! would let fencing tokens start again from 1 and let a stale holder's writes through.

use crate::error::{Error, Result};

/// Longest lock key (or fenced resource name), in bytes.
pub const MAX_KEY_LEN: usize = 512;
const MAX_PREFIX_LEN: usize = 200;

/// Builds the key names under one prefix (for example `lanes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

/// The keys of one lock (one hash tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockKeys {
    pub holder: String,
    pub fence: String,
    pub signal: String,
}

impl Keys {
    /// Keys under `prefix`; refused when the prefix is empty, longer than 200 bytes, or holds
    /// braces, whitespace or control characters.
    pub fn new(prefix: &str) -> Result<Self> {
        let refuse = |reason: &str| {
            Err(Error::InvalidConfig {
                what: "key prefix",
                reason: format!("{prefix:?} {reason}"),
            })
        };
        if prefix.is_empty() {
            return refuse("must not be empty");
        }
        if prefix.len() > MAX_PREFIX_LEN {
            return refuse("must be at most 200 bytes");
        }
        if prefix.contains(['{', '}']) {
            return refuse("must not contain braces");
        }
        if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse("must not contain whitespace or control characters");
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The keys of lock `key`, or [`Error::InvalidKey`].
    pub fn lock(&self, key: &str) -> Result<LockKeys> {
        check_key(key)?;
        let base = format!("{}:{{lock:{key}}}", self.prefix);
        Ok(LockKeys {
            holder: format!("{base}:holder"),
            fence: format!("{base}:fence"),
            signal: format!("{base}:signal"),
        })
    }

    /// The key of the fenced resource `name`, or [`Error::InvalidKey`].
    pub fn fenced(&self, name: &str) -> Result<String> {
        check_key(name)?;
        Ok(format!("{}:{{fenced:{name}}}", self.prefix))
    }
}

/// A lock key (or resource name) must be non-empty, at most 512 bytes, and free of braces (which
/// would break the cluster hash tag).
fn check_key(key: &str) -> Result<()> {
    let refuse = |reason| {
        Err(Error::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return refuse("must not be empty");
    }
    if key.len() > MAX_KEY_LEN {
        return refuse("must be at most 512 bytes");
    }
    if key.contains(['{', '}']) {
        return refuse("must not contain braces (they would break the cluster hash tag)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_share_one_hash_tag() {
        let keys = Keys::new("lanes").expect("valid prefix");
        let k = keys.lock("bank:acct-42").expect("valid key");
        assert_eq!(k.holder, "lanes:{lock:bank:acct-42}:holder");
        assert_eq!(k.fence, "lanes:{lock:bank:acct-42}:fence");
        assert_eq!(k.signal, "lanes:{lock:bank:acct-42}:signal");
        assert_eq!(
            keys.fenced("balance:42").expect("valid name"),
            "lanes:{fenced:balance:42}"
        );
    }

    #[test]
    fn refuses_keys_that_break_the_hash_tag() {
        let keys = Keys::new("p").expect("valid prefix");
        let long = "x".repeat(MAX_KEY_LEN + 1);
        for bad in ["", "a{b", "a}b", "{}", long.as_str()] {
            assert!(
                matches!(keys.lock(bad), Err(Error::InvalidKey { .. })),
                "{bad:?} should be refused"
            );
            assert!(matches!(keys.fenced(bad), Err(Error::InvalidKey { .. })));
        }
        assert!(keys.lock(&"x".repeat(MAX_KEY_LEN)).is_ok());
        assert!(keys.lock("account 42 / ünïcode").is_ok());
    }

    #[test]
    fn refuses_bad_prefixes() {
        for bad in ["", "a{b", "two words", &"p".repeat(201)] {
            assert!(
                matches!(Keys::new(bad), Err(Error::InvalidConfig { .. })),
                "{bad:?} should be refused"
            );
        }
    }
}
