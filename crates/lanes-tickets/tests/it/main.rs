//! The ticket executor's operations against a real Redis.

use lanes_queue::{Config, Lanes, TaskState};
use lanes_testkit::Prefix;
use lanes_tickets::{QUEUE, TicketStatus, Tickets};

async fn tickets(p: &Prefix) -> (Lanes, Tickets) {
    let lanes = Lanes::connect(
        p.url(),
        Config {
            prefix: p.name().to_owned(),
            ..Config::default()
        },
    )
    .await
    .expect("connect");
    (lanes.clone(), Tickets::new(lanes))
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn tickets_queue_in_order_report_positions_and_finish_as_done() {
    let p = Prefix::new();
    let (lanes, t) = tickets(&p).await;
    let queued = t
        .dispatch("7", &names(&["T1", "T2", "T3"]), Some("100"))
        .await
        .expect("dispatch");
    let labels: Vec<_> = queued
        .iter()
        .map(|q| (q.ticket_id.as_str(), q.label()))
        .collect();
    assert_eq!(
        labels,
        vec![
            ("T1", "Queued (#1)".into()),
            ("T2", "Queued (#2)".into()),
            ("T3", "Queued (#3)".into())
        ]
    );
    assert_eq!(t.queue_length().await.expect("length"), 3);

    // Queuing a ticket again returns its current entry instead of a second task.
    let again = t
        .dispatch("7", &names(&["T2"]), None)
        .await
        .expect("dispatch");
    assert_eq!(again[0].task_id, queued[1].task_id);
    assert_eq!(t.queue_length().await.expect("length"), 3);

    // A worker takes T1: it executes, the others keep their places.
    let batch = lanes.fetch(QUEUE, "w", 10).await.expect("fetch");
    assert_eq!(batch.tasks.len(), 1, "one ticket of a project at a time");
    assert_eq!(
        t.executing_projects().await.expect("executing"),
        vec!["7".to_owned()]
    );
    let info = t.project_queue_info("7").await.expect("info");
    assert_eq!(
        info.iter().map(|i| i.label()).collect::<Vec<_>>(),
        vec!["Executing", "Queued (#1)", "Queued (#2)"]
    );

    // Removing T2 moves T3 up; stopping T1 is told through Redis.
    assert!(t.remove_from_queue("7", "T2").await.expect("remove"));
    assert!(!t.remove_from_queue("7", "T2").await.expect("remove twice"));
    assert!(
        !t.remove_from_queue("7", "T1")
            .await
            .expect("executing is not removable")
    );
    let info = t.project_queue_info("7").await.expect("info");
    assert_eq!(
        info.iter()
            .map(|i| (i.ticket_id.as_str(), i.label()))
            .collect::<Vec<_>>(),
        vec![("T1", "Executing".into()), ("T3", "Queued (#1)".into())]
    );
    assert!(t.stop("7", "T1").await.expect("stop"));

    // T1 finishes: the status page shows it done, T2 cancelled, T3 next.
    lanes
        .ack(&batch.tasks[0].lease, &serde_json::Value::Null)
        .await
        .expect("ack");
    let status = t.queue_status("7").await.expect("status");
    let find = |id: &str| {
        status
            .iter()
            .find(|s| s.ticket_id == id)
            .map(|s| s.status.clone())
    };
    assert_eq!(
        find("T1"),
        Some(TicketStatus::Done {
            state: TaskState::Succeeded
        })
    );
    assert_eq!(
        find("T2"),
        Some(TicketStatus::Done {
            state: TaskState::Cancelled
        })
    );
    assert_eq!(find("T3"), Some(TicketStatus::Queued { position: 1 }));
}

#[tokio::test]
async fn projects_are_independent() {
    let p = Prefix::new();
    let (lanes, t) = tickets(&p).await;
    t.dispatch("a", &names(&["A1", "A2"]), None)
        .await
        .expect("dispatch");
    t.dispatch("b", &names(&["B1"]), None)
        .await
        .expect("dispatch");
    let batch = lanes.fetch(QUEUE, "w", 10).await.expect("fetch");
    assert_eq!(batch.tasks.len(), 2, "the first ticket of each project");
    let mut executing = t.executing_projects().await.expect("executing");
    executing.sort();
    assert_eq!(executing, vec!["a".to_owned(), "b".to_owned()]);
}
