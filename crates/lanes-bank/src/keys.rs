//! Redis key names of the bank bot's records. Only this module builds them.
//!
//! Under the engine prefix `P`, per account `a` (hash tag `{bank:a}`, so one account's keys share
//! a Redis Cluster slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{bank:a}:deposits` | hash | transaction id → deposit JSON (idempotent: `HSETNX`) |
//! | `P:{bank:a}:last` | string | id of the account's latest bot task (expires with results) |

/// Builds the bank bot's key names under one prefix.
#[derive(Debug, Clone)]
pub struct BankKeys {
    prefix: String,
}

impl BankKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// Deposits of one account.
    pub fn deposits(&self, account: &str) -> String {
        format!("{}:{{bank:{account}}}:deposits", self.prefix)
    }

    /// The account's latest bot task id.
    pub fn last_task(&self, account: &str) -> String {
        format!("{}:{{bank:{account}}}:last", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_account_share_a_hash_tag() {
        let k = BankKeys::new("lanes");
        assert_eq!(k.deposits("acct-1"), "lanes:{bank:acct-1}:deposits");
        assert_eq!(k.last_task("acct-1"), "lanes:{bank:acct-1}:last");
    }
}
