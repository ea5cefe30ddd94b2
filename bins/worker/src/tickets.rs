//! The ticket executor (seed 001) on the engine: queue `tickets`, key = project id, policy
//! `serial`. Tickets of one project run one after another in queue order (also across retries and
//! worker deaths); projects run in parallel on every worker process and machine.
//!
//! The seed's operations: [`Tickets::dispatch`], [`Tickets::remove_from_queue`],
//! [`Tickets::stop`], [`Tickets::queue_length`], [`Tickets::executing_projects`],
//! [`Tickets::project_queue_info`]. The `ticket` task kind runs the configured command.

use std::sync::Arc;

use lanes_queue::{
    CancelOutcome, KeyPolicy, Lanes, NewTask, TaskContext, TaskId, TaskResult, TaskState,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::kinds::exec::{ExecPayload, ExecPolicy, run_program};

/// The queue tickets run on.
pub const QUEUE: &str = "tickets";
/// The task kind of a ticket.
pub const KIND: &str = "ticket";

/// What a ticket task carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketPayload {
    pub project_id: String,
    pub ticket_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// Where a ticket stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TicketStatus {
    /// Waiting; `position` 1 runs next in its project.
    Queued {
        position: u64,
    },
    Executing,
}

/// One ticket of a project that is queued or executing.
#[derive(Debug, Clone, Serialize)]
pub struct TicketInfo {
    pub ticket_id: String,
    pub task_id: TaskId,
    #[serde(flatten)]
    pub status: TicketStatus,
}

impl TicketInfo {
    /// The seed's UI label: `Queued (#3)` or `Executing`.
    pub fn label(&self) -> String {
        match self.status {
            TicketStatus::Queued { position } => format!("Queued (#{position})"),
            TicketStatus::Executing => "Executing".into(),
        }
    }
}

/// The seed's dispatch utilities over one engine client.
#[derive(Debug, Clone)]
pub struct Tickets {
    lanes: Lanes,
}

impl Tickets {
    pub fn new(lanes: Lanes) -> Self {
        Self { lanes }
    }

    /// Queues tickets of one project, in the given order, in one round trip. Returns each
    /// ticket's task and its position within the project.
    pub async fn dispatch(
        &self,
        project_id: &str,
        ticket_ids: &[String],
        conversation_id: Option<&str>,
    ) -> lanes_queue::Result<Vec<TicketInfo>> {
        let tasks = ticket_ids
            .iter()
            .map(|t| {
                let payload = TicketPayload {
                    project_id: project_id.to_owned(),
                    ticket_id: t.clone(),
                    conversation_id: conversation_id.map(str::to_owned),
                };
                NewTask::new(KIND, json!(payload)).key(project_id, KeyPolicy::Serial)
            })
            .collect();
        let ids = self.lanes.enqueue_bulk(QUEUE, tasks).await?;
        let queued = self.project_queue_info(project_id).await?;
        Ok(ticket_ids
            .iter()
            .zip(ids)
            .map(|(ticket, id)| {
                let status = queued
                    .iter()
                    .find(|q| q.task_id == id)
                    .map_or(TicketStatus::Queued { position: 0 }, |q| q.status.clone());
                TicketInfo {
                    ticket_id: ticket.clone(),
                    task_id: id,
                    status,
                }
            })
            .collect())
    }

    /// The project's tickets that are queued or executing, in the order they run.
    pub async fn project_queue_info(
        &self,
        project_id: &str,
    ) -> lanes_queue::Result<Vec<TicketInfo>> {
        let tasks = self.lanes.key_tasks(QUEUE, project_id).await?;
        let ids: Vec<TaskId> = tasks.iter().map(|t| t.id.clone()).collect();
        let payloads = self.lanes.payloads(&ids).await?;
        Ok(tasks
            .into_iter()
            .zip(payloads)
            .filter_map(|(t, p)| {
                let ticket_id = p.and_then(|p| p["ticket_id"].as_str().map(str::to_owned))?;
                let status = match t.state {
                    TaskState::Running => TicketStatus::Executing,
                    s if s.is_final() => return None,
                    _ => TicketStatus::Queued {
                        position: t.key_position.unwrap_or(1),
                    },
                };
                Some(TicketInfo {
                    ticket_id,
                    task_id: t.id,
                    status,
                })
            })
            .collect())
    }

    /// Removes a queued ticket from its project's queue (the ones behind it move up). `Ok(false)`
    /// when the ticket is not queued (unknown, already executing, or done).
    pub async fn remove_from_queue(
        &self,
        project_id: &str,
        ticket_id: &str,
    ) -> lanes_queue::Result<bool> {
        for t in self.project_queue_info(project_id).await? {
            if t.ticket_id == ticket_id && matches!(t.status, TicketStatus::Queued { .. }) {
                return Ok(self.lanes.cancel(&t.task_id).await? == CancelOutcome::Cancelled);
            }
        }
        Ok(false)
    }

    /// Stops an executing ticket (told through Redis; the command is killed). `Ok(false)` when
    /// the ticket is not executing.
    pub async fn stop(&self, project_id: &str, ticket_id: &str) -> lanes_queue::Result<bool> {
        for t in self.project_queue_info(project_id).await? {
            if t.ticket_id == ticket_id && t.status == TicketStatus::Executing {
                return Ok(self.lanes.cancel(&t.task_id).await? == CancelOutcome::Stopping);
            }
        }
        Ok(false)
    }

    /// Tickets waiting across all projects.
    pub async fn queue_length(&self) -> lanes_queue::Result<u64> {
        Ok(self.lanes.queue_stats(QUEUE).await?.queued)
    }

    /// Projects with a ticket executing now.
    pub async fn executing_projects(&self) -> lanes_queue::Result<Vec<String>> {
        self.lanes.executing_keys(QUEUE).await
    }
}

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
