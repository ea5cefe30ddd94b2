//! The deposit store: one Redis hash per account, keyed by the bank's transaction id, so storing
//! the same deposits twice (a second run, a retry after a crash) adds nothing.

use lanes_redis::Conn;
use serde::{Deserialize, Serialize};

use crate::keys::BankKeys;
use crate::{Result, validate_account};

/// One deposit as the bank lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    /// The bank's transaction id (the idempotency key).
    pub id: String,
    /// Booking date, `YYYY-MM-DD`.
    pub date: String,
    pub description: String,
    /// Amount in cents (deposits are positive).
    pub amount_cents: i64,
    pub currency: String,
}

/// What one [`DepositStore::store`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// Deposits not seen before.
    pub new: u64,
    /// Deposits stored for the account now.
    pub total: u64,
}

/// Per-account deposits in Redis.
#[derive(Clone)]
pub struct DepositStore {
    conn: Conn,
    keys: BankKeys,
}

impl std::fmt::Debug for DepositStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DepositStore")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl DepositStore {
    /// A store on `conn` under the engine prefix `prefix`.
    pub fn new(conn: impl Into<Conn>, prefix: &str) -> Self {
        Self {
            conn: conn.into(),
            keys: BankKeys::new(prefix),
        }
    }

    /// The store of the engine client's connection and prefix.
    pub fn for_lanes(lanes: &lanes_queue::Lanes) -> Self {
        Self::new(lanes.connection(), lanes.keys().prefix())
    }

    /// Stores deposits not stored yet (by transaction id), in one round trip.
    pub async fn store(&self, account: &str, deposits: &[Deposit]) -> Result<Stored> {
        validate_account(account)?;
        let key = self.keys.deposits(account);
        let mut pipe = redis::pipe();
        for d in deposits {
            pipe.hset_nx(&key, &d.id, serde_json::to_string(d)?);
        }
        pipe.hlen(&key);
        let mut replies: Vec<u64> = pipe.query_async(&mut self.conn.clone()).await?;
        let total = replies.pop().unwrap_or(0);
        Ok(Stored {
            new: replies.iter().sum(),
            total,
        })
    }

    /// Every stored deposit of an account, newest first (by date, then id).
    pub async fn list(&self, account: &str) -> Result<Vec<Deposit>> {
        validate_account(account)?;
        let raw: Vec<String> = redis::cmd("HVALS")
            .arg(self.keys.deposits(account))
            .query_async(&mut self.conn.clone())
            .await?;
        let mut out = raw
            .iter()
            .map(|s| serde_json::from_str(s))
            .collect::<std::result::Result<Vec<Deposit>, _>>()?;
        out.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| b.id.cmp(&a.id)));
        Ok(out)
    }

    /// How many deposits an account has stored.
    pub async fn count(&self, account: &str) -> Result<u64> {
        validate_account(account)?;
        Ok(redis::cmd("HLEN")
            .arg(self.keys.deposits(account))
            .query_async(&mut self.conn.clone())
            .await?)
    }
}
