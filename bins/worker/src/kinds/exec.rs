//! `exec`: runs a program with arguments, environment, working directory and timeout; records
//! its exit code and the tail of its output. A non-zero exit fails the attempt.
//!
//! Only programs on the worker's allow-list run (`--exec-allow`), so a queue's producers cannot
//! run arbitrary commands on every worker. The program sees `LANES_TASK_ID` and `LANES_ATTEMPT`.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanes_queue::{TaskContext, TaskError, TaskResult};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Bytes of stdout and of stderr kept (the end of each).
const TAIL: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecPayload {
    /// Program to run (a path, or a name looked up on PATH).
    pub cmd: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill the program after this many seconds (the attempt fails).
    #[serde(default)]
    pub timeout_s: Option<f64>,
}

/// Which programs may run.
#[derive(Debug, Clone, Default)]
pub struct ExecPolicy {
    /// Program names or paths allowed; `*` allows any. Empty: exec is disabled.
    pub allow: Vec<String>,
}

impl ExecPolicy {
    fn permits(&self, cmd: &str) -> bool {
        self.allow.iter().any(|a| a == "*" || a == cmd)
    }
}

/// Builds the `exec` handler under a policy.
pub fn handler(
    policy: ExecPolicy,
) -> impl Fn(TaskContext) -> futures_box::Fut + Send + Sync + 'static {
    let policy = Arc::new(policy);
    move |ctx| Box::pin(run(ctx, policy.clone()))
}

/// Boxed future type of the handler (keeps the signature nameable).
pub mod futures_box {
    pub type Fut =
        std::pin::Pin<Box<dyn std::future::Future<Output = lanes_queue::TaskResult> + Send>>;
}

async fn run(ctx: TaskContext, policy: Arc<ExecPolicy>) -> TaskResult {
    let p: ExecPayload = ctx.payload_as()?;
    run_program(&ctx, p, &policy).await
}

/// Runs one program for a task under a policy (shared by `exec` and the ticket executor).
pub async fn run_program(ctx: &TaskContext, p: ExecPayload, policy: &ExecPolicy) -> TaskResult {
    if p.cmd.is_empty() {
        return Err(TaskError::permanent("exec: cmd is empty"));
    }
    if !policy.permits(&p.cmd) {
        return Err(TaskError::permanent(format!(
            "exec: program {:?} is not allowed on this worker (start it with --exec-allow {:?}, or * for any)",
            p.cmd, p.cmd
        )));
    }
    let timeout = p
        .timeout_s
        .map(Duration::try_from_secs_f64)
        .transpose()
        .map_err(|e| TaskError::permanent(format!("exec: timeout_s: {e}")))?;
    let mut cmd = Command::new(&p.cmd);
    cmd.args(&p.args)
        .envs(&p.env)
        .env("LANES_TASK_ID", ctx.id.as_str())
        .env("LANES_ATTEMPT", ctx.attempt.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = &p.cwd {
        cmd.current_dir(dir);
    }
    die_with_worker(&mut cmd);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            TaskError::permanent(format!("exec: cannot run {:?}: {e}", p.cmd))
        }
        _ => TaskError::retry(format!("exec: cannot run {:?}: {e}", p.cmd)),
    })?;
    let out = tokio::spawn(tail(child.stdout.take()));
    let err = tokio::spawn(tail(child.stderr.take()));
    let far = Duration::from_secs(100 * 365 * 24 * 3600);
    let status = tokio::select! {
        s = child.wait() => s.map_err(|e| TaskError::retry(format!("exec: wait for {:?}: {e}", p.cmd)))?,
        _ = tokio::time::sleep(timeout.unwrap_or(far)) => {
            let _ = child.kill().await;
            return Err(TaskError::retry(format!("exec: {:?} timed out after {:?}", p.cmd, timeout.unwrap_or_default())));
        }
        why = ctx.cancelled() => {
            let _ = child.kill().await;
            return Err(TaskError::retry(format!("exec: {:?} killed: {why:?}", p.cmd)));
        }
    };
    let stdout = out.await.unwrap_or_default();
    let stderr = err.await.unwrap_or_default();
    let code = status.code();
    let result = json!({
        "exit_code": code,
        "stdout_tail": stdout,
        "stderr_tail": stderr,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    if status.success() {
        Ok(result)
    } else {
        let why = code.map_or_else(
            || "killed by a signal".to_owned(),
            |c| format!("exited with {c}"),
        );
        let last = stderr
            .lines()
            .last()
            .or_else(|| stdout.lines().last())
            .unwrap_or("")
            .trim();
        let tail = if last.is_empty() {
            String::new()
        } else {
            format!(": {last}")
        };
        Err(TaskError::retry(format!("exec: {:?} {why}{tail}", p.cmd)))
    }
}

/// The program is killed if the worker dies (SIGKILL, OOM): otherwise it would run on, orphaned,
/// while the task's next attempt starts elsewhere.
#[allow(unsafe_code)]
fn die_with_worker(cmd: &mut Command) {
    // SAFETY: runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Reads a stream to its end, keeping the last `TAIL` bytes as text.
async fn tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut s) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * TAIL {
            kept.drain(..kept.len() - TAIL);
        }
    }
    if kept.len() > TAIL {
        kept.drain(..kept.len() - TAIL);
    }
    String::from_utf8_lossy(&kept).into_owned()
}
