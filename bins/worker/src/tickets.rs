//! The ticket executor's task kind (seed 001): `ticket` runs the configured command for one
//! ticket. The operations (dispatch, positions, removal, status) live in `lanes-tickets`, shared
//! with the broker, and are re-exported here.

use std::sync::Arc;

use lanes_queue::{TaskContext, TaskResult};
pub use lanes_tickets::{KIND, QUEUE, TicketInfo, TicketPayload, TicketStatus, Tickets};
use serde_json::{Value, json};

use crate::kinds::exec::{ExecPayload, ExecPolicy, run_program};

/// The `ticket` kind: runs `command PROJECT_ID TICKET_ID` (with `PROJECT_ID`, `TICKET_ID`,
/// `CONVERSATION_ID` in its environment) through the exec machinery: exit code and output tail
/// recorded, killed on stop or time limit, dies with the worker.
pub fn handler(
    command: String,
) -> impl Fn(TaskContext) -> crate::kinds::exec::futures_box::Fut + Send + Sync + 'static {
    let command = Arc::new(command);
    move |ctx| {
        let command = command.clone();
        Box::pin(async move { run_ticket(ctx, &command).await })
    }
}

async fn run_ticket(ctx: TaskContext, command: &str) -> TaskResult {
    let t: TicketPayload = ctx.payload_as()?;
    let mut env = std::collections::BTreeMap::new();
    env.insert("PROJECT_ID".to_owned(), t.project_id.clone());
    env.insert("TICKET_ID".to_owned(), t.ticket_id.clone());
    if let Some(c) = &t.conversation_id {
        env.insert("CONVERSATION_ID".to_owned(), c.clone());
    }
    let payload = ExecPayload {
        cmd: command.to_owned(),
        args: vec![t.project_id.clone(), t.ticket_id.clone()],
        env,
        cwd: None,
        timeout_s: None,
    };
    let policy = ExecPolicy {
        allow: vec![command.to_owned()],
    };
    let mut result = run_program(&ctx, payload, &policy).await?;
    if let Value::Object(map) = &mut result {
        map.insert("project_id".into(), json!(t.project_id));
        map.insert("ticket_id".into(), json!(t.ticket_id));
    }
    Ok(result)
}
