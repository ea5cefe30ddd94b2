//! Generic routes that work with any queue: enqueue (one or many), read, cancel or stop, and
//! re-queue tasks; queue stats and dead letters; live workers; rate limiters and semaphores.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lanes_queue::task::validate_queue;
use lanes_queue::{CancelOutcome, TaskId};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, accepted, from_value, path_param};
use crate::error::AppError;
use crate::fleet::{self, now_ms};
use crate::model::{
    CancelResponse, DeadLetters, EnqueueRequest, EnqueueResponse, EnqueueTask, Enqueued,
    EnqueuedMany, ErrorBody, LimiterList, QueueList, QueueView, RequeueResponse, TaskView,
    WorkerList, WorkerView,
};
use crate::state::AppState;

/// Most tasks one request may enqueue.
pub const MAX_BULK: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enqueue))
        .routes(routes!(get_task, cancel_task))
        .routes(routes!(requeue_task))
        .routes(routes!(list_queues))
        .routes(routes!(get_queue))
        .routes(routes!(dead_letters))
        .routes(routes!(list_workers))
        .routes(routes!(list_limiters))
}

/// Enqueue one task, or a list of tasks in one round trip.
#[utoipa::path(
    post,
    path = "/api/queues/{queue}/tasks",
    tag = "tasks",
    params(("queue" = String, Path, description = "Queue name: 1 to 64 of A-Z a-z 0-9 _ -")),
    request_body(
        content = EnqueueRequest,
        description = "One task object, or a list of at most 10000 (enqueued in one round trip)"
    ),
    responses(
        (status = 202, description = "Enqueued: `{task_id}` for one, `{task_ids}` for a list", body = EnqueueResponse),
        (status = 400, description = "Malformed JSON, a bad field or a bad queue name", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 409, description = "A `reject` key already has a task queued or running (nothing was enqueued)", body = ErrorBody),
        (status = 413, description = "Body or payload too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn enqueue(
    State(state): State<AppState>,
    queue: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, AppError> {
    let queue = path_param(queue)?;
    validate_queue(&queue)?;
    let (tasks, many) = match body {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(AppError::BadRequest("the list of tasks is empty".into()));
            }
            if items.len() > MAX_BULK {
                return Err(AppError::BadRequest(format!(
                    "{} tasks in one request; send at most {MAX_BULK}",
                    items.len()
                )));
            }
            let specs: Vec<EnqueueTask> = from_value(Value::Array(items))?;
            let tasks = specs
                .into_iter()
                .enumerate()
                .map(|(i, t)| t.into_new_task(&format!("[{i}].")))
                .collect::<Result<Vec<_>, _>>()?;
            (tasks, true)
        }
        Value::Object(_) => (
            vec![from_value::<EnqueueTask>(body)?.into_new_task("")?],
            false,
        ),
        _ => {
            return Err(AppError::BadRequest(
                "expected a task object or a list of task objects".into(),
            ));
        }
    };
    let done = state.lanes().await?.enqueue_detailed(&queue, tasks).await?;
    tracing::info!(queue = %queue, count = done.len(), "enqueued");
    if many {
        let existing = done
            .iter()
            .filter(|e| e.existing)
            .map(|e| e.id.to_string())
            .collect();
        let task_ids = done.into_iter().map(|e| String::from(e.id)).collect();
        let body = EnqueuedMany { task_ids, existing };
        Ok((StatusCode::ACCEPTED, Json(body)).into_response())
    } else {
        let Some(e) = done.into_iter().next() else {
            return Err(AppError::internal(anyhow::anyhow!(
                "enqueue answered no id for one task"
            )));
        };
        let task_id = String::from(e.id);
        let location = format!("/api/tasks/{task_id}");
        let body = Enqueued {
            task_id,
            existing: e.existing,
        };
        Ok(accepted(location, body))
    }
}

fn task_id(raw: Result<Path<String>, PathRejection>) -> Result<TaskId, AppError> {
    Ok(path_param(raw)?.parse()?)
}

fn no_task(id: &TaskId) -> AppError {
    AppError::NotFound(format!(
        "no task {id} (it never existed, or it finished and expired)"
    ))
}

/// A task's state, attempts, result or last error.
#[utoipa::path(
    get,
    path = "/api/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id: `<queue>.<32 hex>`")),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 400, description = "Not a task id", body = ErrorBody),
        (status = 404, description = "No such task (or it expired)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn get_task(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TaskView>, AppError> {
    let id = task_id(id)?;
    match state.lanes().await?.task(&id).await? {
        Some(info) => Ok(Json(info.into())),
        None => Err(no_task(&id)),
    }
}

/// Cancel a waiting task for good, or ask its worker to stop a running one.
#[utoipa::path(
    delete,
    path = "/api/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "It was waiting and is gone (`outcome: cancelled`)", body = CancelResponse),
        (status = 202, description = "It is running; its worker was told to stop it (`outcome: stopping`)", body = CancelResponse),
        (status = 400, description = "Not a task id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "It already finished", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn cancel_task(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let id = task_id(id)?;
    let outcome = state.lanes().await?.cancel(&id).await?;
    tracing::info!(task_id = %id, ?outcome, "cancel requested");
    let (status, outcome) = match outcome {
        CancelOutcome::Cancelled => (StatusCode::OK, "cancelled"),
        CancelOutcome::Stopping => (StatusCode::ACCEPTED, "stopping"),
        CancelOutcome::Finished(s) => {
            return Err(AppError::Conflict(format!(
                "task {id} already finished: {s}"
            )));
        }
        CancelOutcome::NotFound => return Err(no_task(&id)),
    };
    let body = CancelResponse {
        task_id: id.to_string(),
        outcome: outcome.into(),
    };
    Ok((status, Json(body)).into_response())
}

/// Put a dead-lettered (dead or failed) task back on its queue with a fresh retry budget.
#[utoipa::path(
    post,
    path = "/api/tasks/{id}/requeue",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 202, description = "Back on its queue", body = RequeueResponse),
        (status = 400, description = "Not a task id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "It is not in the dead-letter set", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn requeue_task(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let id = task_id(id)?;
    let lanes = state.lanes().await?;
    if lanes.requeue_dead(&id).await? {
        tracing::info!(task_id = %id, "re-queued from the dead-letter set");
        let body = RequeueResponse {
            task_id: id.to_string(),
            state: "queued".into(),
        };
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    match lanes.task(&id).await? {
        None => Err(no_task(&id)),
        Some(t) => Err(AppError::Conflict(format!(
            "task {id} is {}, not in the dead-letter set",
            t.state
        ))),
    }
}

/// Every queue with its depths and fleet-wide counters.
#[utoipa::path(
    get,
    path = "/api/queues",
    tag = "queues",
    responses(
        (status = 200, description = "Every queue that has seen a task, by name", body = QueueList),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn list_queues(State(state): State<AppState>) -> Result<Json<QueueList>, AppError> {
    let lanes = state.lanes().await?;
    let names = lanes.queues().await?;
    let queues = lanes.queue_stats_many(&names).await?;
    Ok(Json(QueueList {
        queues: queues.into_iter().map(QueueView::from).collect(),
    }))
}

async fn known_queue(
    state: &AppState,
    raw: Result<Path<String>, PathRejection>,
) -> Result<String, AppError> {
    let queue = path_param(raw)?;
    if state.lanes().await?.queue_exists(&queue).await? {
        Ok(queue)
    } else {
        Err(AppError::NotFound(format!(
            "no queue {queue:?} (no task was ever enqueued to it)"
        )))
    }
}

/// One queue's depths and counters.
#[utoipa::path(
    get,
    path = "/api/queues/{queue}",
    tag = "queues",
    params(("queue" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "The queue", body = QueueView),
        (status = 400, description = "Bad queue name", body = ErrorBody),
        (status = 404, description = "Unknown queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn get_queue(
    State(state): State<AppState>,
    queue: Result<Path<String>, PathRejection>,
) -> Result<Json<QueueView>, AppError> {
    let queue = known_queue(&state, queue).await?;
    let stats = state.lanes().await?.queue_stats(&queue).await?;
    Ok(Json(stats.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeadQuery {
    /// Most tasks returned, newest first (default 100, at most 1000).
    limit: Option<usize>,
}

/// A queue's dead letters (dead and permanently failed tasks), newest first.
#[utoipa::path(
    get,
    path = "/api/queues/{queue}/dead",
    tag = "queues",
    params(("queue" = String, Path, description = "Queue name"), DeadQuery),
    responses(
        (status = 200, description = "Dead letters, newest first", body = DeadLetters),
        (status = 400, description = "Bad queue name or limit", body = ErrorBody),
        (status = 404, description = "Unknown queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn dead_letters(
    State(state): State<AppState>,
    queue: Result<Path<String>, PathRejection>,
    query: Result<Query<DeadQuery>, QueryRejection>,
) -> Result<Json<DeadLetters>, AppError> {
    let Query(q) = query.map_err(|r| AppError::BadRequest(r.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let queue = known_queue(&state, queue).await?;
    let tasks = state.lanes().await?.dead_letters(&queue, limit).await?;
    Ok(Json(DeadLetters {
        queue,
        tasks: tasks.into_iter().map(TaskView::from).collect(),
    }))
}

/// Every live worker process: its queues, slots, running and reserved tasks, counters.
#[utoipa::path(
    get,
    path = "/api/workers",
    tag = "fleet",
    responses(
        (status = 200, description = "Live workers, newest heartbeat first", body = WorkerList),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn list_workers(State(state): State<AppState>) -> Result<Json<WorkerList>, AppError> {
    let workers = state.lanes().await?.workers().await?;
    let now = now_ms();
    Ok(Json(WorkerList {
        workers: workers
            .into_iter()
            .map(|w| WorkerView::new(w, now))
            .collect(),
    }))
}

/// Every distributed rate limiter and semaphore the fleet has used, with its state now.
#[utoipa::path(
    get,
    path = "/api/limiters",
    tag = "fleet",
    responses(
        (status = 200, description = "Limiters and semaphores, by name", body = LimiterList),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn list_limiters(State(state): State<AppState>) -> Result<Json<LimiterList>, AppError> {
    let (limiters, semaphores) = fleet::limiters(&state.limits().await?).await?;
    Ok(Json(LimiterList {
        limiters,
        semaphores,
    }))
}
