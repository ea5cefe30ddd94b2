//! The Lua scripts under `lua/`, compiled into the binary and invoked by SHA (`EVALSHA`, loaded on
//! first use and again after a Redis restart).

use std::sync::LazyLock;

use redis::Script;

/// GCRA decision (and reservation) for one limiter.
pub(crate) static GCRA: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/gcra.lua")));
/// Read-only snapshot of one limiter.
pub(crate) static LIMITER_STATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/limiter_state.lua")));
/// Pause one limiter until a point on the Redis clock.
pub(crate) static PAUSE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/pause.lua")));
/// Take a semaphore slot (or report the earliest lease expiry).
pub(crate) static SEM_ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/sem_acquire.lua")));
/// Renew one holder's lease.
pub(crate) static SEM_RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/sem_renew.lua")));
/// Read-only snapshot of a semaphore's live holders.
pub(crate) static SEM_STATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/sem_state.lua")));
