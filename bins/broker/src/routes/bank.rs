//! The bank-account bot's routes (seed 000): start a bot for an account (refused with 409 while
//! one is queued or running for it), the account's latest bot task, and the deposits collected.
//! Credentials never pass through here: the task carries the account id, the bot resolves it.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lanes_bank::{ALREADY_RUNNING, DepositStore};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{accepted, path_param};
use crate::error::{AppError, is_outage};
use crate::model::{ErrorBody, TaskView};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_bot))
        .routes(routes!(bot_status))
        .routes(routes!(deposits))
}

impl From<lanes_bank::Error> for AppError {
    fn from(e: lanes_bank::Error) -> Self {
        use lanes_bank::Error as E;
        match e {
            E::AlreadyRunning { .. } => Self::Conflict(ALREADY_RUNNING.into()),
            E::InvalidAccount { .. } => Self::BadRequest(e.to_string()),
            E::Engine(e) => e.into(),
            E::Redis(r) if is_outage(&r) => Self::unavailable(r),
            other => Self::internal(other),
        }
    }
}

/// A started bot.
#[derive(Debug, Serialize, ToSchema)]
pub struct BotStarted {
    #[schema(example = "bank-bot.0190f3c2a4b07d2e8f1a2b3c4d5e6f70")]
    pub task_id: String,
}

/// An account's latest bot run.
#[derive(Debug, Serialize, ToSchema)]
pub struct BotStatus {
    pub account_id: String,
    /// `idle` (no run recorded), or the latest run's state: queued, running, retrying,
    /// succeeded, failed, dead, cancelled.
    pub state: String,
    /// The latest run (its result holds new and total deposits, pages, duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskView>,
}

/// One collected deposit.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepositView {
    pub id: String,
    pub date: String,
    pub description: String,
    pub amount_cents: i64,
    pub currency: String,
}

/// An account's deposits, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepositList {
    pub account_id: String,
    pub count: usize,
    pub deposits: Vec<DepositView>,
}

/// Start the bank bot for an account; refused while a bot for it is queued or running.
#[utoipa::path(
    post,
    path = "/api/bank-accounts/{id}/bot/start",
    tag = "bank",
    params(("id" = String, Path, description = "Bank account id: 1 to 64 of A-Z a-z 0-9 _ -")),
    responses(
        (status = 202, description = "Started", body = BotStarted),
        (status = 400, description = "A bad account id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 409, description = "Bot is already running for this account", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn start_bot(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let account = path_param(id)?;
    let task = lanes_bank::start_bot(state.lanes().await?, &account).await?;
    tracing::info!(account = %account, task_id = %task, "bank bot started");
    let body = BotStarted {
        task_id: task.to_string(),
    };
    Ok(accepted(format!("/api/tasks/{task}"), body))
}

/// The account's latest bot run: its state, progress (pages) and result.
#[utoipa::path(
    get,
    path = "/api/bank-accounts/{id}/bot/status",
    tag = "bank",
    params(("id" = String, Path, description = "Bank account id")),
    responses(
        (status = 200, description = "The latest run, or `idle`", body = BotStatus),
        (status = 400, description = "A bad account id", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn bot_status(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<BotStatus>, AppError> {
    let account = path_param(id)?;
    let task = lanes_bank::bot_status(state.lanes().await?, &account).await?;
    Ok(Json(BotStatus {
        account_id: account,
        state: task
            .as_ref()
            .map_or_else(|| "idle".to_owned(), |t| t.state.to_string()),
        task: task.map(TaskView::from),
    }))
}

/// The deposits the bot collected for an account (each once, by the bank's transaction id).
#[utoipa::path(
    get,
    path = "/api/bank-accounts/{id}/deposits",
    tag = "bank",
    params(("id" = String, Path, description = "Bank account id")),
    responses(
        (status = 200, description = "Deposits, newest first", body = DepositList),
        (status = 400, description = "A bad account id", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn deposits(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<DepositList>, AppError> {
    let account = path_param(id)?;
    let list = DepositStore::for_lanes(state.lanes().await?)
        .list(&account)
        .await?;
    let deposits: Vec<DepositView> = list
        .into_iter()
        .map(|d| DepositView {
            id: d.id,
            date: d.date,
            description: d.description,
            amount_cents: d.amount_cents,
            currency: d.currency,
        })
        .collect();
    Ok(Json(DepositList {
        account_id: account,
        count: deposits.len(),
        deposits,
    }))
}
