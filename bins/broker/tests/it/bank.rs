//! The bank bot's routes (seed 000): start, 409 while running, status, deposits.

use axum::http::StatusCode;
use lanes_bank::{Deposit, DepositStore};

use crate::support::{Ctx, get, post, succeed_next};

#[tokio::test]
async fn a_second_start_is_409_until_the_bot_finishes() {
    let ctx = Ctx::new();
    let idle = ctx.send(get("/api/bank-accounts/acct-9/bot/status")).await;
    assert_eq!(idle.status, StatusCode::OK, "{}", idle.text());
    assert_eq!(idle.json()["state"], "idle");

    let first = ctx.send(post("/api/bank-accounts/acct-9/bot/start")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    let task_id = first.json()["task_id"]
        .as_str()
        .expect("task_id")
        .to_owned();

    let again = ctx.send(post("/api/bank-accounts/acct-9/bot/start")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    assert_eq!(again.message(), "Bot is already running for this account");
    let other = ctx.send(post("/api/bank-accounts/acct-10/bot/start")).await;
    assert_eq!(
        other.status,
        StatusCode::ACCEPTED,
        "another account runs in parallel"
    );

    let status = ctx.send(get("/api/bank-accounts/acct-9/bot/status")).await;
    assert_eq!(status.json()["state"], "queued");
    assert_eq!(status.json()["task"]["id"], task_id.as_str());

    // The bot finishes (a test worker acks it): a new start works.
    let lanes = ctx.lanes().await;
    succeed_next(&lanes, lanes_bank::QUEUE).await;
    succeed_next(&lanes, lanes_bank::QUEUE).await;
    let status = ctx.send(get("/api/bank-accounts/acct-9/bot/status")).await;
    assert_eq!(status.json()["state"], "succeeded", "{}", status.text());
    let next = ctx.send(post("/api/bank-accounts/acct-9/bot/start")).await;
    assert_eq!(next.status, StatusCode::ACCEPTED, "{}", next.text());
}

#[tokio::test]
async fn deposits_are_listed_and_bad_ids_refused() {
    let ctx = Ctx::new();
    let lanes = ctx.lanes().await;
    let d = Deposit {
        id: "TX-1".into(),
        date: "2025-03-01".into(),
        description: "Salary".into(),
        amount_cents: 12_345,
        currency: "EUR".into(),
    };
    let stored = DepositStore::for_lanes(&lanes)
        .store("acct-1", &[d.clone(), d])
        .await
        .expect("store");
    assert_eq!((stored.new, stored.total), (1, 1));
    let r = ctx.send(get("/api/bank-accounts/acct-1/deposits")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["count"], 1);
    assert_eq!(r.json()["deposits"][0]["amount_cents"], 12_345);
    let bad = ctx.send(post("/api/bank-accounts/a%20b/bot/start")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
}
