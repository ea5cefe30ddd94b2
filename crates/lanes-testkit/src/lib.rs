//! Test support shared by every Lanes test suite.
//!
//! - [`redis_url`] starts one real `redis-server` per test binary on a free loopback port (or uses
//!   `REDIS_URL` when it is set) and returns its URL. The server dies with the test process. With
//!   `LANES_TEST_REDIS=cluster` it starts a 3-master Redis Cluster instead ([`RedisCluster`]) and
//!   returns its `redis+cluster://` URL, so a suite runs unchanged against a cluster.
//! - [`Prefix`] gives each test its own key prefix and deletes its keys on drop, so tests never
//!   share state and never need `FLUSHDB` or `--test-threads=1`.
//! - [`ChildGuard`] kills a spawned process (by its own PID) when the test ends, pass or fail.
//! - [`RedisServer`] is a `redis-server` owned by its caller (the demo and the benchmarks use it);
//!   [`RedisCluster`] is three of them joined into a cluster.
//! - [`fuzz`]: the case count (`LANES_FUZZ_CASES`) and JSON strategy every fuzz target shares.
//! - [`dump_redis`] reads every key and value of a Redis as text (secrets tests grep it).
//! - [`RestartableRedis`] is a `redis-server` a test stops (SIGTERM or SIGKILL) and starts again
//!   on the same port and data directory, with or without the append-only file.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static SERVER: OnceLock<String> = OnceLock::new();
/// Set to `cluster` to run a test binary against a local 3-master Redis Cluster.
pub const TEST_REDIS_ENV: &str = "LANES_TEST_REDIS";
static NEXT_PREFIX: AtomicU64 = AtomicU64::new(0);

/// URL of the Redis every test in this process uses.
///
/// `REDIS_URL` wins when set. Otherwise a `redis-server` is started once, on a free port of
/// 127.0.0.1, with persistence off (with `LANES_TEST_REDIS=cluster`, a 3-master cluster); it is
/// killed when the test process exits. A missing `redis-server` is a loud panic with the fix in
/// the message.
pub fn redis_url() -> String {
    SERVER
        .get_or_init(|| match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if is_cluster_run() => start_cluster(),
            _ => start_server(),
        })
        .clone()
}

/// True when this test run asked for a Redis Cluster (`LANES_TEST_REDIS=cluster`), or points
/// `REDIS_URL` at one.
pub fn is_cluster_run() -> bool {
    std::env::var(TEST_REDIS_ENV).is_ok_and(|v| v == "cluster")
        || std::env::var("REDIS_URL").is_ok_and(|u| u.contains("+cluster://"))
}

fn start_cluster() -> String {
    // Same reasoning as `start_server`: a thread that lives as long as the process owns them.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lanes-testkit-cluster".into())
        .spawn(move || {
            let result = RedisCluster::start();
            let ok = result.is_ok();
            let _ = tx.send(
                result
                    .as_ref()
                    .map(|c| c.url().to_owned())
                    .map_err(Clone::clone),
            );
            if ok {
                let _keep = result;
                loop {
                    std::thread::park();
                }
            }
        })
        .expect("spawn the testkit cluster thread");
    match rx.recv().expect("testkit cluster thread answered") {
        Ok(url) => url,
        Err(msg) => panic!("{msg}"),
    }
}

/// The plain `redis://` URL of every node behind `url`: the seed nodes of a `redis+cluster://`
/// URL, or `url` itself.
pub fn node_urls(url: &str) -> Vec<String> {
    for (cluster, plain) in [
        ("redis+cluster://", "redis://"),
        ("rediss+cluster://", "rediss://"),
    ] {
        if let Some(rest) = url.strip_prefix(cluster) {
            let (auth, hosts) = match rest.rfind('@') {
                Some(at) => (&rest[..=at], &rest[at + 1..]),
                None => ("", rest),
            };
            return hosts
                .trim_end_matches('/')
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| format!("{plain}{auth}{h}/"))
                .collect();
        }
    }
    vec![url.to_owned()]
}

/// A blocking connection for test inspection, to one server or to a cluster (commands are routed
/// by key), as `url` says.
pub fn connection(url: &str) -> redis::RedisResult<Box<dyn redis::ConnectionLike + Send>> {
    if url.contains("+cluster://") {
        let client = redis::cluster::ClusterClient::new(node_urls(url))?;
        return Ok(Box::new(client.get_connection()?));
    }
    Ok(Box::new(redis::Client::open(url)?.get_connection()?))
}

fn start_server() -> String {
    // The server is spawned from a thread that lives as long as the process, because the
    // parent-death signal fires when the *spawning thread* exits, and test threads come and go.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lanes-testkit-redis".into())
        .spawn(move || {
            let result = spawn_redis_with_retries();
            let keep = result.as_ref().ok().map(|(_, child)| child.id());
            let _ = tx.send(result.map(|(url, _child)| url));
            if keep.is_some() {
                loop {
                    std::thread::park();
                }
            }
        })
        .expect("spawn the testkit redis thread");
    match rx.recv().expect("testkit redis thread answered") {
        Ok(url) => url,
        Err(msg) => panic!("{msg}"),
    }
}

fn spawn_redis_with_retries() -> Result<(String, Child), String> {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        match spawn_redis(port) {
            Ok(child) => return Ok((format!("redis://127.0.0.1:{port}/"), child)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

fn spawn_redis(port: u16) -> Result<Child, String> {
    spawn_redis_with(port, &[])
}

fn spawn_redis_with(port: u16, extra: &[&str]) -> Result<Child, String> {
    let dir = std::env::temp_dir().join(format!("lanes-testkit-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ])
    .args([
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--loglevel",
        "warning",
    ])
    .args(extra)
    .arg("--dir")
    .arg(&dir)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start redis-server ({e}): install it (`apt-get install -y redis-server`) \
             or point REDIS_URL at a running Redis"
        )
    })?;
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server on port {port} exited early: {status}"
            ));
        }
        if ping(&url) {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    Err(format!(
        "redis-server on port {port} did not answer PING within 10s"
    ))
}

#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// True when the Redis server at `url` answers PING within about 200 ms.
pub fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
        return false;
    };
    redis::cmd("PING").query::<String>(&mut conn).is_ok()
}

/// A `redis-server` on a free loopback port, killed (by its PID) when dropped or when this
/// process dies.
#[derive(Debug)]
pub struct RedisServer {
    url: String,
    port: u16,
    _child: ChildGuard,
}

impl RedisServer {
    /// Starts a server with persistence off, plus any extra `redis-server` arguments.
    pub fn start(extra: &[&str]) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn_redis_with(port, extra) {
                Ok(child) => {
                    return Ok(Self {
                        url: format!("redis://127.0.0.1:{port}/"),
                        port,
                        _child: ChildGuard(child),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A local Redis Cluster: three masters (no replicas) on free loopback ports, every slot
/// assigned, killed (by their PIDs) when dropped or when this process dies.
#[derive(Debug)]
pub struct RedisCluster {
    url: String,
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three `redis-server --cluster-enabled yes` nodes and joins them with
    /// `redis-cli --cluster create`; returns once every node reports `cluster_state:ok`.
    pub fn start() -> Result<Self, String> {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let bus = free_port().to_string();
            nodes.push(RedisServer::start(&[
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus,
                "--cluster-node-timeout",
                "5000",
            ])?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                format!("cannot run redis-cli ({e}): install it (`apt-get install -y redis-tools`)")
            })?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let all_ok = || nodes.iter().all(|n| cluster_ok(n.url()));
        if wait_for(Duration::from_secs(20), || all_ok().then_some(())).is_none() {
            return Err("the local Redis Cluster did not reach cluster_state:ok in 20 s".into());
        }
        Ok(Self {
            url: format!("redis+cluster://{}/", addrs.join(",")),
            nodes,
        })
    }

    /// The `redis+cluster://` URL naming every node.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The nodes, for per-node inspection.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

fn cluster_ok(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return false;
    };
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query::<String>(&mut conn)
        .is_ok_and(|info| {
            info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
        })
}

/// A key prefix that belongs to one test. Its keys are deleted when it is dropped.
#[derive(Debug)]
pub struct Prefix {
    name: String,
    url: String,
}

impl Prefix {
    /// A fresh prefix, unique within this Redis across processes and runs.
    pub fn new() -> Self {
        let n = NEXT_PREFIX.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}x{}x{n}", std::process::id(), nanos() % 1_000_000);
        Self {
            name,
            url: redis_url(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Number of keys currently stored under this prefix.
    pub fn key_count(&self) -> usize {
        self.keys().len()
    }

    /// Every key under this prefix (test inspection; uses SCAN on every node, never KEYS).
    pub fn keys(&self) -> Vec<String> {
        node_urls(&self.url)
            .iter()
            .flat_map(|node| self.keys_on(node))
            .collect()
    }

    fn keys_on(&self, node: &str) -> Vec<String> {
        let Ok(client) = redis::Client::open(node) else {
            return Vec::new();
        };
        let Ok(mut conn) = client.get_connection() else {
            return Vec::new();
        };
        let pattern = format!("{}:*", self.name);
        let Ok(iter) = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter::<String>(&mut conn)
        else {
            return Vec::new();
        };
        iter.filter_map(Result::ok).collect()
    }
}

impl Default for Prefix {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        for node in node_urls(&self.url) {
            let keys = self.keys_on(&node);
            if keys.is_empty() {
                continue;
            }
            if let Ok(client) = redis::Client::open(node.as_str())
                && let Ok(mut conn) = client.get_connection()
            {
                // One key per UNLINK: on a cluster node, keys of different slots cannot share one.
                for chunk in keys.chunks(500) {
                    let mut pipe = redis::pipe();
                    for key in chunk {
                        pipe.cmd("UNLINK").arg(key).ignore();
                    }
                    let _: Result<(), _> = pipe.query(&mut conn);
                }
            }
        }
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A child process that is killed (SIGKILL, by its own PID) and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        die_with_parent(cmd);
        cmd.spawn().map(Self)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends a signal to this child only.
    pub fn signal(&self, sig: i32) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the PID of a child we own and have not reaped yet.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, sig);
        }
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Polls `check` every 20 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `redis-server` a test stops and starts again on the same port and data directory, to show
/// what survives a restart. `persistent` turns on the append-only file (`appendfsync everysec`,
/// what `make up` runs); without it nothing survives. Killed (by its PID) when dropped.
#[derive(Debug)]
pub struct RestartableRedis {
    port: u16,
    dir: std::path::PathBuf,
    persistent: bool,
    child: Option<ChildGuard>,
}

impl RestartableRedis {
    /// Starts a server on a free loopback port, its files in `dir`.
    pub fn start(dir: &std::path::Path, persistent: bool) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..5 {
            let mut server = Self {
                port: free_port(),
                dir: dir.to_path_buf(),
                persistent,
                child: None,
            };
            match server.restart() {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PID of the running server, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::pid)
    }

    /// Sends `sig` (`libc::SIGTERM`: a clean shutdown that flushes the append-only file;
    /// `libc::SIGKILL`: a crash) and waits up to 10 s for the server to exit.
    pub fn stop(&mut self, sig: i32) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        child.signal(sig);
        match child.wait_timeout(Duration::from_secs(10)) {
            Some(_) => Ok(()),
            None => Err(format!(
                "redis-server {} did not exit within 10s of signal {sig}",
                child.pid()
            )),
        }
    }

    /// Starts the server again on the same port and directory (it loads what it persisted) and
    /// waits until it answers PING.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("redis-server is still running".into());
        }
        let aof = if self.persistent { "yes" } else { "no" };
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                aof,
                "--appendfsync",
                "everysec",
            ])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut child = ChildGuard::spawn(&mut cmd).map_err(|e| {
            format!(
                "cannot start redis-server ({e}): install it (`apt-get install -y redis-server`)"
            )
        })?;
        let url = self.url();
        // Loading a large append-only file takes a while: PING answers LOADING until it is done.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.0.try_wait() {
                return Err(format!(
                    "redis-server on port {} exited early: {status}",
                    self.port
                ));
            }
            if ping(&url) {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "redis-server on port {} did not answer PING within 20s",
            self.port
        ))
    }
}

/// Every key of the Redis at `url` with its whole value, as text, one key a line: strings,
/// hashes, lists, sets, sorted sets (with scores) and streams (every entry). Values that are gzip
/// streams (stored payloads) are inflated too. For tests that grep all of Redis for a secret.
pub fn dump_redis(url: &str) -> Result<String, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let keys: Vec<Vec<u8>> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter::<Vec<u8>>(&mut conn)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .collect();
    let mut out = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        let mut cmd = match kind.as_str() {
            "string" => redis::cmd("GET"),
            "hash" => redis::cmd("HGETALL"),
            "list" => redis::cmd("LRANGE"),
            "set" => redis::cmd("SMEMBERS"),
            "zset" => redis::cmd("ZRANGE"),
            "stream" => redis::cmd("XRANGE"),
            // Gone meanwhile.
            _ => continue,
        };
        cmd.arg(&key);
        match kind.as_str() {
            "list" => cmd.arg(0).arg(-1),
            "zset" => cmd.arg(0).arg(-1).arg("WITHSCORES"),
            "stream" => cmd.arg("-").arg("+"),
            _ => &mut cmd,
        };
        let value: redis::Value = cmd.query(&mut conn).map_err(|e| e.to_string())?;
        out.push_str(&String::from_utf8_lossy(&key));
        out.push_str(" = ");
        value_text(&value, &mut out);
        out.push('\n');
    }
    Ok(out)
}

fn value_text(v: &redis::Value, out: &mut String) {
    match v {
        redis::Value::BulkString(b) => {
            out.push_str(&String::from_utf8_lossy(b));
            if b.starts_with(&[0x1f, 0x8b]) {
                let mut inflated = Vec::new();
                let gz = flate2::read::GzDecoder::new(b.as_slice());
                if std::io::Read::read_to_end(&mut std::io::Read::take(gz, 64 << 20), &mut inflated)
                    .is_ok()
                {
                    out.push_str(" (inflated: ");
                    out.push_str(&String::from_utf8_lossy(&inflated));
                    out.push(')');
                }
            }
        }
        redis::Value::SimpleString(s) => out.push_str(s),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            for item in items {
                value_text(item, out);
                out.push(' ');
            }
        }
        redis::Value::Map(kv) => {
            for (k, v) in kv {
                value_text(k, out);
                out.push('=');
                value_text(v, out);
                out.push(' ');
            }
        }
        other => out.push_str(&format!("{other:?}")),
    }
}

/// Shared pieces of the proptest fuzz targets: how many cases a run makes, and any JSON.
pub mod fuzz {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use serde_json::{Value, json};

    /// Cases per target: `LANES_FUZZ_CASES` (the campaign sets it high), else `default` (quick,
    /// for `cargo test`).
    pub fn cases(default: u32) -> u32 {
        std::env::var("LANES_FUZZ_CASES")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default)
    }

    /// A proptest config of [`cases`]`(default)` cases; failures are kept under
    /// `proptest-regressions/` and replayed first on later runs.
    pub fn config(default: u32) -> Config {
        Config {
            cases: cases(default),
            max_shrink_iters: 2_000,
            ..Config::default()
        }
    }

    /// Object keys: strings matching `pattern`, or one of the field names a decoder looks for.
    pub fn keys(pattern: &'static str, known: &'static [&'static str]) -> BoxedStrategy<String> {
        if known.is_empty() {
            return pattern.boxed();
        }
        let named = proptest::sample::select(known).prop_map(str::to_owned);
        prop_oneof![pattern, named].boxed()
    }

    /// Any JSON up to 4 levels deep: null, booleans, integers (with `u64::MAX`), finite floats,
    /// strings and the `extra` strings a decoder treats specially; objects keyed by `keys`.
    pub fn json_value(
        extra: &'static [&'static str],
        keys: BoxedStrategy<String>,
    ) -> BoxedStrategy<Value> {
        let special = if extra.is_empty() {
            Just(Value::Null).boxed()
        } else {
            proptest::sample::select(extra)
                .prop_map(Value::from)
                .boxed()
        };
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            Just(json!(u64::MAX)),
            any::<f64>().prop_filter_map("finite", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            }),
            any::<String>().prop_map(Value::from),
            special,
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Value::Array),
                btree_map(keys.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
    }
}
