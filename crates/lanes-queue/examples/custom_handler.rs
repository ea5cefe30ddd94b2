//! Registering your own task kind: a worker that resizes "thumbnails" (pretend), plus a producer.
//!
//! Run a Redis, then: `cargo run -p lanes-queue --example custom_handler`

use std::time::Duration;

use lanes_queue::{
    Config, KindConfig, Lanes, NewTask, TaskContext, TaskError, Worker, WorkerConfig,
};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Deserialize)]
struct Thumbnail {
    url: String,
    width: u32,
}

/// A handler is any async fn from `TaskContext` to `Result<Value, TaskError>`.
async fn thumbnail(ctx: TaskContext) -> lanes_queue::TaskResult {
    let job: Thumbnail = ctx.payload_as()?; // a payload that does not fit fails permanently
    if job.width == 0 {
        return Err(TaskError::permanent("width must be positive"));
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        why = ctx.cancelled() => return Err(TaskError::retry(format!("interrupted: {why:?}"))),
    }
    Ok(json!({ "url": job.url, "width": job.width, "attempt": ctx.attempt }))
}

#[tokio::main]
async fn main() -> anyhow_like::Result {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let lanes = Lanes::connect(
        &url,
        Config {
            prefix: "example".into(),
            ..Config::default()
        },
    )
    .await?;

    let id = lanes
        .enqueue(
            "images",
            NewTask::new("thumbnail", json!({"url": "a.jpg", "width": 128})),
        )
        .await?;

    let kind = KindConfig::default()
        .max_retries(5)
        .hard_limit(Duration::from_secs(30));
    let worker = Worker::new(
        lanes.clone(),
        WorkerConfig {
            queues: vec!["images".into()],
            ..WorkerConfig::default()
        },
    )
    .register("thumbnail", kind, thumbnail);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));

    loop {
        let info = lanes.task(&id).await?.ok_or("task vanished")?;
        if info.state.is_final() {
            println!("{}", serde_json::to_string_pretty(&info)?);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await??;
    Ok(())
}

/// The example avoids an anyhow dependency; any error prints and exits non-zero.
mod anyhow_like {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;
}
