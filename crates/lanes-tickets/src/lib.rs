//! The ticket executor's operations (seed 001) on the Lanes engine: queue `tickets`, key =
//! project id, policy `serial`. Tickets of one project run one after another in queue order (also
//! across retries and worker deaths); projects run in parallel on every worker and machine.
//!
//! [`Tickets`] offers the seed's `dispatch`, `remove_from_queue`, `stop`, `queue_length`,
//! `executing_projects`, `project_queue_info` and `queue_status`. The `ticket` task kind itself
//! runs in the `worker` binary (`--ticket-command`). Modules: this file and `keys` (the one place
//! this crate builds a Redis key: a per-project ticket → task map, so a finished ticket still
//! reads as done).

mod keys;

use std::collections::HashMap;
use std::time::Duration;

use lanes_queue::{CancelOutcome, KeyPolicy, Lanes, NewTask, TaskId, TaskInfo, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The queue tickets run on.
pub const QUEUE: &str = "tickets";
/// The task kind of a ticket.
pub const KIND: &str = "ticket";
/// How long a project's ticket → task map outlives its last dispatch.
const MAP_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

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
    /// Finished: succeeded, failed, dead or cancelled (`state` says which).
    Done {
        state: TaskState,
    },
}

/// One ticket of a project.
#[derive(Debug, Clone, Serialize)]
pub struct TicketInfo {
    pub ticket_id: String,
    pub task_id: TaskId,
    #[serde(flatten)]
    pub status: TicketStatus,
}

impl TicketInfo {
    /// The seed's UI label: `Queued (#3)`, `Executing`, `Done`.
    pub fn label(&self) -> String {
        match &self.status {
            TicketStatus::Queued { position } => format!("Queued (#{position})"),
            TicketStatus::Executing => "Executing".into(),
            TicketStatus::Done {
                state: TaskState::Succeeded,
            } => "Done".into(),
            TicketStatus::Done { state } => format!("Done ({state})"),
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

    /// Queues tickets of one project, in the given order, in one round trip. A ticket already
    /// queued or executing is not queued twice: its current entry is returned instead.
    pub async fn dispatch(
        &self,
        project_id: &str,
        ticket_ids: &[String],
        conversation_id: Option<&str>,
    ) -> lanes_queue::Result<Vec<TicketInfo>> {
        let live: HashMap<String, TicketInfo> = self
            .project_queue_info(project_id)
            .await?
            .into_iter()
            .map(|t| (t.ticket_id.clone(), t))
            .collect();
        let fresh: Vec<&String> = ticket_ids
            .iter()
            .filter(|t| !live.contains_key(*t))
            .collect();
        let tasks = fresh
            .iter()
            .map(|t| {
                let payload = TicketPayload {
                    project_id: project_id.to_owned(),
                    ticket_id: (*t).clone(),
                    conversation_id: conversation_id.map(str::to_owned),
                };
                NewTask::new(KIND, json!(payload)).key(project_id, KeyPolicy::Serial)
            })
            .collect();
        let ids = self.lanes.enqueue_bulk(QUEUE, tasks).await?;
        if !ids.is_empty() {
            let map = keys::ticket_map(self.lanes.keys().prefix(), project_id);
            let mut pipe = redis::pipe();
            for (ticket, id) in fresh.iter().zip(&ids) {
                pipe.hset(&map, ticket.as_str(), id.as_str()).ignore();
            }
            pipe.pexpire(&map, MAP_TTL.as_millis() as i64).ignore();
            let _: () = pipe.query_async(&mut self.lanes.connection()).await?;
        }
        let now = self.project_queue_info(project_id).await?;
        Ok(ticket_ids
            .iter()
            .filter_map(|t| {
                now.iter()
                    .find(|i| &i.ticket_id == t)
                    .cloned()
                    .or_else(|| live.get(t).cloned())
            })
            .collect())
    }

    /// The project's tickets that are queued or executing, in the order they run.
    pub async fn project_queue_info(
        &self,
        project_id: &str,
    ) -> lanes_queue::Result<Vec<TicketInfo>> {
        let tasks = self.lanes.key_tasks(QUEUE, project_id).await?;
        self.with_ticket_ids(tasks).await
    }

    /// Every ticket of the project dispatched in the last week: queued (with position),
    /// executing, or done.
    pub async fn queue_status(&self, project_id: &str) -> lanes_queue::Result<Vec<TicketInfo>> {
        let map_key = keys::ticket_map(self.lanes.keys().prefix(), project_id);
        let map: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&map_key)
            .query_async(&mut self.lanes.connection())
            .await?;
        let live = self.project_queue_info(project_id).await?;
        let mut out = live.clone();
        let done_ids: Vec<(String, TaskId)> = map
            .into_iter()
            .filter(|(ticket, _)| !live.iter().any(|l| &l.ticket_id == ticket))
            .filter_map(|(ticket, id)| id.parse().ok().map(|id| (ticket, id)))
            .collect();
        let ids: Vec<TaskId> = done_ids.iter().map(|(_, id)| id.clone()).collect();
        for t in self.lanes.tasks(&ids).await? {
            if let Some((ticket, _)) = done_ids.iter().find(|(_, id)| *id == t.id) {
                let status = if t.state.is_final() {
                    TicketStatus::Done { state: t.state }
                } else {
                    status_of(&t)
                };
                out.push(TicketInfo {
                    ticket_id: ticket.clone(),
                    task_id: t.id,
                    status,
                });
            }
        }
        Ok(out)
    }

    async fn with_ticket_ids(&self, tasks: Vec<TaskInfo>) -> lanes_queue::Result<Vec<TicketInfo>> {
        let ids: Vec<TaskId> = tasks.iter().map(|t| t.id.clone()).collect();
        let payloads = self.lanes.payloads(&ids).await?;
        Ok(tasks
            .into_iter()
            .zip(payloads)
            .filter_map(|(t, p)| {
                let ticket_id = p.and_then(|p| p["ticket_id"].as_str().map(str::to_owned))?;
                if t.state.is_final() {
                    return None;
                }
                Some(TicketInfo {
                    ticket_id,
                    status: status_of(&t),
                    task_id: t.id,
                })
            })
            .collect())
    }

    /// The project's ticket if it is queued or executing.
    pub async fn find(
        &self,
        project_id: &str,
        ticket_id: &str,
    ) -> lanes_queue::Result<Option<TicketInfo>> {
        let live = self.project_queue_info(project_id).await?;
        Ok(live.into_iter().find(|t| t.ticket_id == ticket_id))
    }

    /// Removes a queued ticket from its project's queue (the ones behind it move up). `Ok(false)`
    /// when the ticket is not queued (unknown, already executing, or done).
    pub async fn remove_from_queue(
        &self,
        project_id: &str,
        ticket_id: &str,
    ) -> lanes_queue::Result<bool> {
        match self.find(project_id, ticket_id).await? {
            Some(t) => self.remove(&t).await,
            None => Ok(false),
        }
    }

    /// Stops an executing ticket (told through Redis; its command is killed). `Ok(false)` when the
    /// ticket is not executing.
    pub async fn stop(&self, project_id: &str, ticket_id: &str) -> lanes_queue::Result<bool> {
        match self.find(project_id, ticket_id).await? {
            Some(t) => self.stop_found(&t).await,
            None => Ok(false),
        }
    }

    /// [`Tickets::remove_from_queue`] for a ticket already found.
    pub async fn remove(&self, t: &TicketInfo) -> lanes_queue::Result<bool> {
        if !matches!(t.status, TicketStatus::Queued { .. }) {
            return Ok(false);
        }
        Ok(self.lanes.cancel(&t.task_id).await? == CancelOutcome::Cancelled)
    }

    /// [`Tickets::stop`] for a ticket already found.
    pub async fn stop_found(&self, t: &TicketInfo) -> lanes_queue::Result<bool> {
        if t.status != TicketStatus::Executing {
            return Ok(false);
        }
        Ok(self.lanes.cancel(&t.task_id).await? == CancelOutcome::Stopping)
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

fn status_of(t: &TaskInfo) -> TicketStatus {
    match t.state {
        TaskState::Running => TicketStatus::Executing,
        s if s.is_final() => TicketStatus::Done { state: s },
        _ => TicketStatus::Queued {
            position: t.key_position.unwrap_or(1),
        },
    }
}
