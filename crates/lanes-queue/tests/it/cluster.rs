//! On a Redis Cluster of its own (whatever Redis the rest of the suite uses): a queue's keys
//! live in one slot, different queues spread over the shards, and plain, keyed, batch and
//! rate-limited work all run through the cluster client.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use lanes_queue::limits::Rate;
use lanes_queue::{BatchSpec, Config, KeyPolicy, Lanes, NewTask, TaskState, Worker};
use lanes_testkit::RedisCluster;
use serde_json::{Value, json};

use crate::support::{start, wait_final, worker_cfg};

const QUEUES: usize = 6;

/// The node (port) holding each key of `prefix`, from a SCAN of every node.
fn keys_by_node(cluster: &RedisCluster, prefix: &str) -> HashMap<String, u16> {
    let mut out = HashMap::new();
    for node in cluster.nodes() {
        let client = redis::Client::open(node.url()).expect("node url");
        let mut conn = client.get_connection().expect("connect to a node");
        let keys: Vec<String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter::<String>(&mut conn)
            .expect("scan a node")
            .filter_map(Result::ok)
            .collect();
        for key in keys {
            out.insert(key, node.port());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_runs_on_a_cluster_and_queues_spread_over_its_shards() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .expect("join")
        .expect("start a local 3-master cluster");
    let prefix = "clustered";
    let lanes = Lanes::connect(
        cluster.url(),
        Config {
            prefix: prefix.into(),
            lease: Duration::from_secs(2),
            ..Config::default()
        },
    )
    .await
    .expect("connect to the cluster");
    assert!(lanes.endpoint().is_cluster());

    let queues: Vec<String> = (0..QUEUES).map(|i| format!("q{i}")).collect();
    let mut ids = Vec::new();
    for q in &queues {
        let plain = (0..20).map(|i| NewTask::new("echo", json!({ "n": i })));
        ids.extend(
            lanes
                .enqueue_bulk(q, plain.collect())
                .await
                .expect("enqueue"),
        );
        let keyed =
            (0..5).map(|i| NewTask::new("echo", json!({ "k": i })).key("acct", KeyPolicy::Serial));
        ids.extend(
            lanes
                .enqueue_bulk(q, keyed.collect())
                .await
                .expect("enqueue keyed"),
        );
    }
    let batch = lanes
        .create_batch(
            &queues[0],
            BatchSpec::new(
                (0..4)
                    .map(|i| NewTask::new("echo", json!({ "c": i })))
                    .collect(),
            )
            .finalize(NewTask::new("echo", json!({ "final": true }))),
        )
        .await
        .expect("create a batch");

    let qrefs: Vec<&str> = queues.iter().map(String::as_str).collect();
    let mut cfg = worker_cfg(&qrefs, 8);
    cfg.rate_limits
        .insert(queues[1].clone(), "200/s".parse::<Rate>().expect("rate"));
    let worker = Worker::new(lanes.clone(), cfg)
        .handle("echo", |ctx: lanes_queue::TaskContext| async move {
            Ok::<Value, lanes_queue::TaskError>(ctx.payload)
        });
    let running = start(worker);
    for id in &ids {
        let info = wait_final(&lanes, id).await;
        assert_eq!(info.state, TaskState::Succeeded, "{id}: {info:?}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let info = loop {
        let info = lanes
            .batch(&batch)
            .await
            .expect("read batch")
            .expect("batch exists");
        if info.finalize_state.is_some() || tokio::time::Instant::now() > deadline {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (info.children_succeeded, info.finalize_state),
        (4, Some(TaskState::Succeeded)),
        "{info:?}"
    );
    running.shutdown().await;

    // Each queue's keys sit on one node; the queues as a whole use more than one.
    let placed = keys_by_node(&cluster, prefix);
    let mut nodes_used = BTreeSet::new();
    for q in &queues {
        let tag = format!("{prefix}:{{{q}}}:");
        let nodes: BTreeSet<u16> = placed
            .iter()
            .filter(|(k, _)| k.starts_with(&tag))
            .map(|(_, port)| *port)
            .collect();
        assert_eq!(nodes.len(), 1, "queue {q} is spread over {nodes:?}");
        nodes_used.extend(nodes);
    }
    assert!(
        nodes_used.len() >= 2,
        "{QUEUES} queues all on one node: {nodes_used:?}"
    );
    let stats = lanes
        .queue_stats_many(&queues)
        .await
        .expect("stats over every node");
    let succeeded: u64 = stats
        .iter()
        .map(|s| s.counters.get("succeeded").copied().unwrap_or(0))
        .sum();
    assert_eq!(
        succeeded,
        ids.len() as u64 + 5,
        "plain, keyed, 4 children and the finalize"
    );
}
