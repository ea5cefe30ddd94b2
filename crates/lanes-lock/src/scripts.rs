//! The Lua scripts under `lua/`, compiled into the binary and invoked by SHA (`EVALSHA`, loaded on
//! first use and again after a Redis restart).

use std::sync::LazyLock;

use redis::Script;

/// Take a free lock with a new fencing token.
pub(crate) static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/acquire.lua")));
/// Compare-and-PEXPIRE: extend a lock still held by its owner.
pub(crate) static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/renew.lua")));
/// Compare-and-delete: release a lock still held by its owner, wake a waiter.
pub(crate) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/release.lua")));
/// Operator override: delete a lock whoever holds it, wake a waiter.
pub(crate) static FORCE_RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/force_release.lua")));
/// Atomic snapshot of a lock's holder.
pub(crate) static HOLDER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/holder.lua")));
/// Write a value only with a fencing token at least as high as any accepted before.
pub(crate) static FENCED_SET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/fenced_set.lua")));
