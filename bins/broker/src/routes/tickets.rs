//! The ticket executor's routes (seed 001): queue a ticket for execution, cancel it while queued,
//! stop it while executing, a project's queue status (`Queued (#3)`, `Executing`, `Done`), and the
//! executor's status. Tickets of one project run one after another; projects run in parallel.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lanes_tickets::{QUEUE, TicketInfo, TicketStatus, Tickets};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::AppError;
use crate::model::ErrorBody;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue_execution))
        .routes(routes!(cancel_queue))
        .routes(routes!(stop))
        .routes(routes!(queue_status))
        .routes(routes!(executor_status))
}

/// A ticket as the ticket list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub ticket_id: String,
    pub task_id: String,
    /// `queued`, `executing` or `done`.
    pub status: String,
    /// While queued: 1 runs next in its project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// When done: succeeded, failed, dead or cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The UI label: `Queued (#3)`, `Executing`, `Done`.
    pub label: String,
}

impl From<&TicketInfo> for TicketView {
    fn from(t: &TicketInfo) -> Self {
        let (status, position, state) = match &t.status {
            TicketStatus::Queued { position } => ("queued", Some(*position), None),
            TicketStatus::Executing => ("executing", None, None),
            TicketStatus::Done { state } => ("done", None, Some(state.to_string())),
        };
        Self {
            ticket_id: t.ticket_id.clone(),
            task_id: t.task_id.to_string(),
            status: status.into(),
            position,
            state,
            label: t.label(),
        }
    }
}

/// What queueing a ticket answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedTicket {
    pub task_id: String,
    /// 1 runs next in its project.
    pub position: u64,
    pub label: String,
}

/// A project's tickets: queued (in order), executing, and done in the last week.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStatus {
    pub project_id: String,
    pub tickets: Vec<TicketView>,
}

/// The executor across all projects.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutorStatus {
    /// Tickets waiting across all projects.
    pub queue_length: u64,
    /// Projects with a ticket executing now.
    pub executing_projects: Vec<String>,
    /// Worker processes consuming the tickets queue.
    pub workers: Vec<ExecutorWorker>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutorWorker {
    pub id: String,
    pub host: String,
    pub executing: usize,
    pub concurrency: usize,
}

/// `{"ok": true}`-style acknowledgement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    pub ticket_id: String,
    pub task_id: String,
}

fn ids(path: Result<Path<(String, String)>, PathRejection>) -> Result<(String, String), AppError> {
    path.map(|Path(p)| p)
        .map_err(|e| AppError::BadRequest(format!("bad path: {}", e.body_text())))
}

async fn tickets(state: &AppState) -> Result<Tickets, AppError> {
    Ok(Tickets::new(state.lanes().await?.clone()))
}

/// Queue a ticket for execution behind the project's earlier tickets.
#[utoipa::path(
    post,
    path = "/api/projects/{project_id}/tickets/{ticket_id}/queue-execution",
    tag = "tickets",
    params(("project_id" = String, Path), ("ticket_id" = String, Path)),
    responses(
        (status = 202, description = "Queued, with its position in the project", body = QueuedTicket),
        (status = 400, description = "A bad project or ticket id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 409, description = "The ticket is already queued or executing", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn queue_execution(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(StatusCode, Json<QueuedTicket>), AppError> {
    let (project, ticket) = ids(path)?;
    let t = tickets(&state).await?;
    if let Some(live) = t.find(&project, &ticket).await? {
        return Err(AppError::Conflict(format!(
            "ticket {ticket} is already {}",
            live.label().to_lowercase()
        )));
    }
    let queued = t
        .dispatch(&project, std::slice::from_ref(&ticket), None)
        .await?;
    let q = queued
        .first()
        .ok_or_else(|| AppError::Conflict(format!("ticket {ticket} could not be queued")))?;
    let position = match q.status {
        TicketStatus::Queued { position } => position,
        _ => 0,
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(QueuedTicket {
            task_id: q.task_id.to_string(),
            position,
            label: q.label(),
        }),
    ))
}

/// Remove a queued ticket from its project's queue; the ones behind it move up.
#[utoipa::path(
    post,
    path = "/api/projects/{project_id}/tickets/{ticket_id}/cancel-queue",
    tag = "tickets",
    params(("project_id" = String, Path), ("ticket_id" = String, Path)),
    responses(
        (status = 200, description = "Removed from the queue", body = Done),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 409, description = "The ticket is not queued (executing, done, or unknown)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn cancel_queue(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Done>, AppError> {
    let (project, ticket) = ids(path)?;
    let t = tickets(&state).await?;
    let live = t.find(&project, &ticket).await?;
    match live {
        Some(i) if t.remove(&i).await? => Ok(Json(Done {
            ticket_id: ticket,
            task_id: i.task_id.to_string(),
        })),
        Some(i) => Err(AppError::Conflict(format!(
            "ticket {ticket} is {}, not queued",
            i.label().to_lowercase()
        ))),
        None => Err(AppError::Conflict(format!(
            "ticket {ticket} is not queued in project {project}"
        ))),
    }
}

/// Stop an executing ticket (told through Redis; its command is killed within a second or two).
#[utoipa::path(
    post,
    path = "/api/projects/{project_id}/tickets/{ticket_id}/stop",
    tag = "tickets",
    params(("project_id" = String, Path), ("ticket_id" = String, Path)),
    responses(
        (status = 202, description = "Its worker was told to stop it", body = Done),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 409, description = "The ticket is not executing", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn stop(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(StatusCode, Json<Done>), AppError> {
    let (project, ticket) = ids(path)?;
    let t = tickets(&state).await?;
    let live = t.find(&project, &ticket).await?;
    match live {
        Some(i) if t.stop_found(&i).await? => Ok((
            StatusCode::ACCEPTED,
            Json(Done {
                ticket_id: ticket,
                task_id: i.task_id.to_string(),
            }),
        )),
        _ => Err(AppError::Conflict(format!(
            "ticket {ticket} is not executing in project {project}"
        ))),
    }
}

/// A project's tickets: queued with their positions, executing, or done.
#[utoipa::path(
    get,
    path = "/api/projects/{project_id}/tickets/queue-status",
    tag = "tickets",
    params(("project_id" = String, Path)),
    responses(
        (status = 200, description = "The project's tickets", body = QueueStatus),
        (status = 400, description = "A bad project id", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn queue_status(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<QueueStatus>, AppError> {
    let project = path
        .map(|Path(p)| p)
        .map_err(|e| AppError::BadRequest(format!("bad path: {}", e.body_text())))?;
    let list = tickets(&state).await?.queue_status(&project).await?;
    Ok(Json(QueueStatus {
        project_id: project,
        tickets: list.iter().map(TicketView::from).collect(),
    }))
}

/// Queue length, executing projects, and the workers consuming the tickets queue.
#[utoipa::path(
    get,
    path = "/api/executor/status",
    tag = "tickets",
    responses(
        (status = 200, description = "The executor", body = ExecutorStatus),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn executor_status(State(state): State<AppState>) -> Result<Json<ExecutorStatus>, AppError> {
    let lanes = state.lanes().await?;
    let t = Tickets::new(lanes.clone());
    let workers = lanes
        .workers()
        .await?
        .into_iter()
        .filter(|w| w.queues.iter().any(|q| q == QUEUE))
        .map(|w| ExecutorWorker {
            executing: w.active.len(),
            concurrency: w.concurrency,
            host: w.host,
            id: w.id,
        })
        .collect();
    Ok(Json(ExecutorStatus {
        queue_length: t.queue_length().await?,
        executing_projects: t.executing_projects().await?,
        workers,
    }))
}
