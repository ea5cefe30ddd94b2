//! The ticket scenario (seed 001): 120 projects × 3 tickets across 3 worker processes. Tickets of
//! a project run one after another in queue order; projects run in parallel. Prints the seed's
//! status labels (`Queued (#N)`, `Executing`, `Done`) as it goes, then checks order and overlap
//! from the task records (Redis clock).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use lanes_queue::{TaskId, TaskState};
use worker::tickets::{QUEUE, Tickets};

use crate::stack::Stack;
use crate::summary::Row;

const PROJECTS: usize = 120;
const PER_PROJECT: usize = 3;
/// MAX_CONCURRENT_PROJECTS of each executor process.
const KEY_CAP: usize = 20;

pub async fn run(stack: &mut Stack, workers: usize, rows: &mut Vec<Row>) -> Result<bool> {
    println!(
        "\n== tickets: {PROJECTS} projects × {PER_PROJECT} tickets on queue `{QUEUE}` across {workers} worker processes =="
    );
    let command = ticket_command();
    for i in 0..workers {
        let name = format!("ticket-executor-{i}");
        stack.spawn(
            &name,
            "worker",
            &[
                "--queues",
                QUEUE,
                "--concurrency",
                "32",
                "--max-concurrent-keys",
                &KEY_CAP.to_string(),
                "--ticket-command",
                &command,
                "--name",
                &name,
            ],
        )?;
    }
    let tickets = Tickets::new(stack.lanes.clone());
    let mut ids: Vec<(String, Vec<TaskId>)> = Vec::new();
    for p in 0..PROJECTS {
        let project = format!("proj-{p:03}");
        let names: Vec<String> = (1..=PER_PROJECT)
            .map(|t| format!("T{}", p * PER_PROJECT + t))
            .collect();
        let queued = tickets.dispatch(&project, &names, None).await?;
        ids.push((project, queued.into_iter().map(|q| q.task_id).collect()));
    }
    println!(
        "  dispatched {} tickets; queue length {}",
        PROJECTS * PER_PROJECT,
        tickets.queue_length().await?
    );

    let all: Vec<TaskId> = ids.iter().flat_map(|(_, t)| t.clone()).collect();
    let started = Instant::now();
    let mut max_executing = 0;
    loop {
        let infos = stack.lanes.tasks(&all).await?;
        let by_id: HashMap<_, _> = infos.iter().map(|t| (t.id.clone(), t)).collect();
        let done = infos.iter().filter(|t| t.state.is_final()).count();
        let executing = tickets.executing_projects().await?.len();
        max_executing = max_executing.max(executing);
        let mut sample = String::new();
        for (project, tids) in ids.iter().take(3) {
            let info = tickets.project_queue_info(project).await?;
            let labels: Vec<String> = tids
                .iter()
                .enumerate()
                .map(|(n, id)| {
                    let label = match by_id.get(id).map(|t| t.state) {
                        Some(TaskState::Succeeded) => "Done".to_owned(),
                        Some(s) if s.is_final() => s.to_string(),
                        _ => info
                            .iter()
                            .find(|i| &i.task_id == id)
                            .map_or("-".into(), |i| i.label()),
                    };
                    format!("T{}: {label}", n + 1)
                })
                .collect();
            sample.push_str(&format!(" | {project} {}", labels.join(", ")));
        }
        println!(
            "  [{:>4.1}s] done {done:>3}/{} · executing projects {executing:>3}{sample}",
            started.elapsed().as_secs_f64(),
            all.len()
        );
        if done == all.len() || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    let infos = stack.lanes.tasks(&all).await?;
    let by_id: HashMap<_, _> = infos.iter().map(|t| (t.id.clone(), t)).collect();
    let succeeded = infos
        .iter()
        .filter(|t| t.state == TaskState::Succeeded)
        .count();
    let mut violations = 0;
    for (_, tids) in &ids {
        for pair in tids.windows(2) {
            let (a, b) = (by_id.get(&pair[0]), by_id.get(&pair[1]));
            let ok = matches!((a, b), (Some(a), Some(b)) if a.finished_at_ms.unwrap_or(u64::MAX) <= b.started_at_ms.unwrap_or(0));
            violations += usize::from(!ok);
        }
    }
    rows.push(Row {
        scenario: "tickets",
        what: format!("{} tickets executed", all.len()),
        expected: format!("{} ok", all.len()),
        got: format!("{succeeded} ok"),
        detail: format!("{PROJECTS} projects in parallel on {workers} processes"),
        ok: succeeded == all.len(),
    });
    rows.push(Row {
        scenario: "tickets",
        what: "in order within each project".into(),
        expected: "0 violations".into(),
        got: format!("{violations} violations"),
        detail: "each ticket started after the previous one finished".into(),
        ok: violations == 0,
    });
    rows.push(Row {
        scenario: "tickets",
        what: "projects executing at once (peak)".into(),
        expected: format!("2..={}", KEY_CAP * workers),
        got: max_executing.to_string(),
        detail: format!("parallel; MAX_CONCURRENT_PROJECTS={KEY_CAP} per process"),
        ok: (2..=KEY_CAP * workers).contains(&max_executing),
    });
    let left = tickets.queue_length().await?;
    rows.push(Row {
        scenario: "tickets",
        what: "queue drained".into(),
        expected: "0".into(),
        got: left.to_string(),
        detail: String::new(),
        ok: left == 0,
    });
    Ok(true)
}

/// `scripts/execute-ticket.sh` of this checkout, as an absolute path.
fn ticket_command() -> String {
    let from_cwd = std::path::Path::new("scripts/execute-ticket.sh");
    let path = if from_cwd.exists() {
        from_cwd.to_path_buf()
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/execute-ticket.sh")
    };
    std::fs::canonicalize(&path)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
