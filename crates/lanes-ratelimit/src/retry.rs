//! How a Redis call is retried when Redis is unreachable: the shared policy of `lanes-redis`,
//! with its failures mapped into this crate's [`Error`].

pub use lanes_redis::RetryPolicy;

use crate::error::Error;

impl From<lanes_redis::CallError> for Error {
    fn from(e: lanes_redis::CallError) -> Self {
        match e {
            lanes_redis::CallError::Unavailable { attempts, source } => {
                Error::Unavailable { attempts, source }
            }
            lanes_redis::CallError::Redis(e) => Error::Redis(e),
        }
    }
}

impl From<lanes_redis::InvalidPolicy> for Error {
    fn from(e: lanes_redis::InvalidPolicy) -> Self {
        Error::InvalidConfig {
            what: "retry policy",
            reason: e.0.into(),
        }
    }
}
