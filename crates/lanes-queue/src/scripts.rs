//! The engine's Lua scripts, each prefixed with `lua/common.lua`, loaded once per process.

use std::sync::LazyLock;

use redis::Script;

pub(crate) struct Scripts {
    pub enqueue: Script,
    pub fetch: Script,
    pub ack: Script,
    pub fail: Script,
    pub renew: Script,
    pub reap: Script,
    pub release: Script,
    pub cancel: Script,
    pub requeue_dead: Script,
    pub progress: Script,
    pub batch_create: Script,
    pub batch_progress: Script,
    pub batch_cancel: Script,
    pub batch_result: Script,
}

const COMMON: &str = include_str!("../lua/common.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: script(include_str!("../lua/enqueue.lua")),
    fetch: script(include_str!("../lua/fetch.lua")),
    ack: script(include_str!("../lua/ack.lua")),
    fail: script(include_str!("../lua/fail.lua")),
    renew: script(include_str!("../lua/renew.lua")),
    reap: script(include_str!("../lua/reap.lua")),
    release: script(include_str!("../lua/release.lua")),
    cancel: script(include_str!("../lua/cancel.lua")),
    requeue_dead: script(include_str!("../lua/requeue_dead.lua")),
    progress: script(include_str!("../lua/progress.lua")),
    batch_create: script(include_str!("../lua/batch_create.lua")),
    batch_progress: script(include_str!("../lua/batch_progress.lua")),
    batch_cancel: script(include_str!("../lua/batch_cancel.lua")),
    batch_result: script(include_str!("../lua/batch_result.lua")),
});
