//! Whole jobs in process: skewed channels with a 404 and one failing part-way, flood waits
//! honoured across two workers, a crash between a write and its checkpoint, bad names.

use std::time::Duration;

use collector::checkpoint::Checkpoints;
use lanes_fakes::channels::{ChannelSpec, ChannelsConfig};
use lanes_queue::{BatchState, TaskState};
use lanes_testkit::Prefix;

use crate::support::{
    FakeApi, assert_collected, collector_cfg, fast, lanes, output, spawn_worker, wait_finished,
};

/// Six skewed channels, one the API does not know, one that fails from message 150 on.
fn skewed() -> Vec<ChannelSpec> {
    vec![
        ChannelSpec::new("big_channel", 900).photos(120),
        ChannelSpec::new("mid_channel", 260),
        ChannelSpec::new("small_channel", 120).photos(500),
        ChannelSpec::new("smaller_one", 45),
        ChannelSpec::new("tiny_one", 7),
        ChannelSpec::new("empty_one", 0),
        ChannelSpec::new("flaky_one", 400).fail_after(150),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_channels_complete_and_failures_stay_their_own() {
    let api = FakeApi::start(skewed(), fast()).await;
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, Duration::from_secs(15)).await;
    let data = tempfile::tempdir().expect("tempdir");
    let (stop, worker) = spawn_worker(
        &lanes,
        collector_cfg(&api, data.path(), "5000/s,burst=100"),
        4,
    );
    let channels = [
        "@big_channel",
        "mid_channel",
        "https://t.me/small_channel",
        "deleted_channel",
        "smaller_one",
        "flaky_one",
        "tiny_one",
        "EMPTY_ONE",
    ];
    let job = collector::dispatch_job(&lanes, channels.iter().map(|c| (*c).to_owned()).collect())
        .await
        .expect("dispatch");
    let status = wait_finished(&lanes, &job, Duration::from_secs(40)).await;
    stop.cancel();
    worker.await.expect("worker stops");

    assert_eq!(status.state, BatchState::Completed);
    assert_eq!(status.channels_total, 8);
    assert_eq!(status.channels_succeeded, 6, "{status:#?}");
    assert_eq!(status.channels_failed, 2);
    for name in [
        "big_channel",
        "mid_channel",
        "small_channel",
        "smaller_one",
        "tiny_one",
        "empty_one",
    ] {
        assert_collected(&api, data.path(), name, None);
        let c = status
            .channels
            .iter()
            .find(|c| c.channel == name)
            .expect("listed");
        assert_eq!(c.state, TaskState::Succeeded);
        assert_eq!(
            c.messages as usize,
            api.dir.channel(name).map_or(0, |c| c.ids().len())
        );
        assert_eq!(c.messages, c.total_messages);
    }
    let missing = status
        .channels
        .iter()
        .find(|c| c.channel == "deleted_channel")
        .expect("listed");
    assert_eq!(
        missing.state,
        TaskState::Failed,
        "a 404 is bad input: no retry"
    );
    assert_eq!(missing.attempts, 1);
    let msg = missing.error.clone().unwrap_or_default();
    assert!(
        msg.contains("@deleted_channel not found") && msg.contains("404"),
        "{msg}"
    );

    let flaky = status
        .channels
        .iter()
        .find(|c| c.channel == "flaky_one")
        .expect("listed");
    assert_eq!(flaky.state, TaskState::Dead, "retried, then given up");
    assert_eq!(flaky.attempts, 3);
    let msg = flaky.error.clone().unwrap_or_default();
    assert!(
        msg.contains("HTTP 500") && msg.contains("HISTORY_GET_FAILED"),
        "{msg}"
    );
    // What it collected before the failure is kept, exactly, and resumable.
    let kept = output(data.path(), "flaky_one").len();
    assert!((100..400).contains(&kept), "{kept} messages kept");
    assert_collected(&api, data.path(), "flaky_one", Some(kept));
    assert_eq!(flaky.stored_messages as usize, kept);

    let expected: u64 = status.channels.iter().map(|c| c.messages).sum();
    assert_eq!(
        status.messages, expected,
        "batch progress = the channels' counts"
    );
    let result = status.result.expect("the finalize step ran");
    assert_eq!(result["succeeded"], 6);
    assert_eq!(result["failed"].as_array().map(Vec::len), Some(2));
    assert!(
        !data
            .path()
            .join("deleted_channel")
            .join("messages.jsonl")
            .exists()
            || output(data.path(), "deleted_channel").is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_waits_are_honoured_by_every_worker() {
    // The API allows 40 calls/s per client; the collectors are told 400/s, so they run into
    // flood waits and must sit them out together.
    let cfg = ChannelsConfig {
        rate_per_sec: 40.0,
        burst: 10,
        flood_wait_secs: 1,
        history_latency: Duration::from_millis(2),
        file_latency: Duration::from_millis(1),
        ..ChannelsConfig::default()
    };
    let specs = vec![
        ChannelSpec::new("flood_alpha", 150).photos(300),
        ChannelSpec::new("flood_beta", 120).photos(300),
        ChannelSpec::new("flood_gamma", 90).photos(300),
    ];
    let api = FakeApi::start(specs, cfg).await;
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, Duration::from_secs(15)).await;
    let data = tempfile::tempdir().expect("tempdir");
    let a = spawn_worker(
        &lanes,
        collector_cfg(&api, data.path(), "400/s,burst=20"),
        2,
    );
    let b = spawn_worker(
        &lanes,
        collector_cfg(&api, data.path(), "400/s,burst=20"),
        2,
    );
    let job = collector::dispatch_job(
        &lanes,
        vec![
            "flood_alpha".into(),
            "flood_beta".into(),
            "flood_gamma".into(),
        ],
    )
    .await
    .expect("dispatch");
    let status = wait_finished(&lanes, &job, Duration::from_secs(50)).await;
    for (stop, handle) in [a, b] {
        stop.cancel();
        handle.await.expect("worker stops");
    }
    assert_eq!(status.channels_succeeded, 3, "{status:#?}");
    for name in ["flood_alpha", "flood_beta", "flood_gamma"] {
        assert_collected(&api, data.path(), name, None);
    }
    let stats = api.stats().await;
    assert!(
        stats["flood_waits"].as_u64().unwrap_or(0) >= 1,
        "no flood wait was provoked: {stats}"
    );
    eprintln!("fake stats: {stats}");
    assert_eq!(
        stats["violations"], 0,
        "a call came in during a flood wait: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_write_and_checkpoint_leaves_no_duplicate() {
    let api = FakeApi::start(
        vec![ChannelSpec::new("crashy_one", 350).photos(200)],
        fast(),
    )
    .await;
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, Duration::from_secs(15)).await;
    let data = tempfile::tempdir().expect("tempdir");
    let cfg = collector_cfg(&api, data.path(), "5000/s,burst=100");
    let c = collector::collector(&lanes, &cfg).expect("collector");
    let stop = tokio_util::sync::CancellationToken::new();
    // A first run up to message 200, as a collector that then died would leave it: its
    // checkpoint, plus a page it wrote but never checkpointed.
    let first = c
        .collect("crashy_one", 1, "task-1", &(), &stop)
        .await
        .expect("collects");
    assert_eq!(first.new_messages, 350);
    let checkpoints = Checkpoints::new(lanes.connection(), prefix.name(), Duration::from_secs(60));
    let ids = api
        .dir
        .channel("crashy_one")
        .map(|c| c.ids().to_vec())
        .unwrap_or_default();
    let lines = output(data.path(), "crashy_one");
    let keep = 200;
    let bytes: usize = lines[..keep].iter().map(|m| m.to_string().len() + 1).sum();
    let mut cp = collector::checkpoint::Checkpoint {
        last_id: ids[keep - 1],
        bytes: bytes as u64,
        messages: keep as u64,
        images: 0,
        total: 350,
    };
    cp.images = lines[..keep]
        .iter()
        .filter(|m| m.get("photo").is_some())
        .count() as u64;
    assert!(
        checkpoints
            .save("crashy_one", 2, "task-2", &cp, None)
            .await
            .expect("save")
    );
    // A stale holder (an older fencing token) can no longer move the checkpoint.
    assert!(
        !checkpoints
            .save("crashy_one", 1, "task-1", &cp, None)
            .await
            .expect("save")
    );

    let again = c
        .collect("crashy_one", 3, "task-3", &(), &stop)
        .await
        .expect("resumes");
    assert_eq!(again.resumed_after, ids[keep - 1]);
    assert_eq!(again.new_messages, 150);
    assert_collected(&api, data.path(), "crashy_one", None);

    // Nothing new: a third run adds nothing and changes nothing.
    let before = crate::support::tree(data.path());
    let third = c
        .collect("crashy_one", 4, "task-4", &(), &stop)
        .await
        .expect("runs");
    assert_eq!(third.new_messages, 0);
    assert_eq!(crate::support::tree(data.path()), before);
    // A token older than the newest claim is refused at the start.
    let stale = c.collect("crashy_one", 2, "task-5", &(), &stop).await;
    assert!(
        matches!(
            stale,
            Err(collector::collect::CollectError::Superseded { .. })
        ),
        "{stale:?}"
    );
}

#[tokio::test]
async fn bad_channel_lists_are_refused_at_dispatch() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, Duration::from_secs(15)).await;
    for (list, says) in [
        (vec![], "empty"),
        (
            vec!["ok_name".to_owned(), "no spaces please".to_owned()],
            "not a channel name",
        ),
        (vec!["@ab".to_owned()], "4 to 32"),
    ] {
        let err = collector::dispatch_job(&lanes, list)
            .await
            .expect_err("refused");
        assert!(err.to_string().contains(says), "{err}");
    }
    assert_eq!(prefix.key_count(), 0, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_on_one_channel_never_collect_it_at_once() {
    let cfg = ChannelsConfig {
        history_latency: Duration::from_millis(5),
        ..fast()
    };
    let api = FakeApi::start(vec![ChannelSpec::new("shared_one", 600)], cfg).await;
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, Duration::from_secs(15)).await;
    let data = tempfile::tempdir().expect("tempdir");
    let (stop, worker) = spawn_worker(
        &lanes,
        collector_cfg(&api, data.path(), "5000/s,burst=100"),
        4,
    );
    let a = collector::dispatch_job(&lanes, vec!["shared_one".into()])
        .await
        .expect("dispatch");
    let b = collector::dispatch_job(&lanes, vec!["@shared_one".into()])
        .await
        .expect("dispatch");
    let sa = wait_finished(&lanes, &a, Duration::from_secs(30)).await;
    let sb = wait_finished(&lanes, &b, Duration::from_secs(30)).await;
    stop.cancel();
    worker.await.expect("worker stops");
    assert_eq!((sa.channels_succeeded, sb.channels_succeeded), (1, 1));
    // One of them collected the channel; the other waited for the lock and found it done.
    let mut added = [sa.messages, sb.messages];
    added.sort_unstable();
    assert_eq!(added, [0, 600], "{sa:#?} {sb:#?}");
    assert_collected(&api, data.path(), "shared_one", None);
}
