//! The bank-account bot's contract, shared by the bot (`browser-bot`), the broker's bank routes
//! and the demo, without any browser dependency:
//!
//! - [`task`]: the queue (`bank-bot`), the task kind, its payload (an account id, never
//!   credentials) and result, and [`task::start_bot`] (one bot per account: a second start while
//!   one is queued or running is refused with [`Error::AlreadyRunning`]).
//! - [`deposits`]: the per-account deposit store in Redis, idempotent by transaction id.
//! - [`keys`]: the Redis key names of both (the only place they are built).

pub mod deposits;
pub mod keys;
pub mod task;

pub use deposits::{Deposit, DepositStore, Stored};
pub use keys::BankKeys;
pub use task::{
    ALREADY_RUNNING, BotPayload, BotResult, KIND, QUEUE, bot_status, start_bot, start_task,
    validate_account,
};

/// What can go wrong with the bank bot's records.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bot for this account is queued or running; wait for it to finish.
    #[error("Bot is already running for this account")]
    AlreadyRunning { account: String, task: String },
    /// An account id outside `[A-Za-z0-9_-]{1,64}`.
    #[error("invalid bank account id {account:?}: use 1 to 64 of A-Z a-z 0-9 _ -")]
    InvalidAccount { account: String },
    /// The engine refused or could not be reached.
    #[error(transparent)]
    Engine(#[from] lanes_queue::Error),
    /// Redis could not be reached or refused a command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored record that does not decode.
    #[error("stored record does not decode: {0}")]
    Decode(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
