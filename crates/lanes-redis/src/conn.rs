//! Reaching Redis, one server or a Redis Cluster, chosen by the URL.
//!
//! - `redis://`, `rediss://`, `redis+unix://`: one server (or a managed service's single endpoint).
//! - `redis+cluster://[user:password@]host:port,host:port,...` (or `rediss+cluster://`): a Redis
//!   Cluster, given by one or more seed nodes; the client discovers the rest and follows
//!   `MOVED`/`ASK` redirections and failovers.
//!
//! [`Endpoint::shared`] gives the connection every command goes through (multiplexed, reconnects
//! in the background, a response timeout per command); [`Endpoint::dedicated`] gives a connection
//! without a response timeout, for blocking commands (`BLPOP`), which would otherwise hold up
//! every other command queued behind them. Both are a [`Conn`], which implements the redis crate's
//! `ConnectionLike`, so commands, pipelines and scripts run on either kind alike. On a cluster every
//! script must touch keys of one slot: the Lanes key schemas give each queue, limiter and lock
//! its own hash tag for that reason. A plain (non-transaction) pipeline whose commands fall in
//! several slots is split by slot, the parts sent concurrently and the replies put back in order
//! (the redis crate's cluster client refuses such a pipeline).

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{
    Arg, AsyncConnectionConfig, Cmd, ConnectionInfo, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisError, RedisFuture, RedisResult, Value,
};

/// Where Redis is: one server, or the seed nodes of a cluster.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Single(redis::Client),
    Cluster(Vec<ConnectionInfo>),
}

/// Timeouts for [`Endpoint::shared`].
#[derive(Clone, Copy, Debug)]
pub struct SharedOptions {
    /// Longest wait for one reply.
    pub response_timeout: Duration,
    /// Longest wait to (re)connect.
    pub connection_timeout: Duration,
    /// Reconnect attempts before a command fails. A command sent while Redis is away waits
    /// through them, so they stay short (about 0.7 s in all by default): a broker answers 503
    /// soon, and the caller's own retry loop decides how long to keep trying.
    pub retries: u32,
}

impl Default for SharedOptions {
    fn default() -> Self {
        Self {
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(5),
            retries: 3,
        }
    }
}

const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

impl Endpoint {
    /// Parses a Redis URL (see the module docs); nothing is connected yet.
    pub fn open(url: &str) -> RedisResult<Self> {
        for (cluster_scheme, node_scheme) in CLUSTER_SCHEMES {
            if let Some(rest) = url.strip_prefix(cluster_scheme) {
                return cluster_nodes(rest, node_scheme).map(Self::Cluster);
            }
        }
        Ok(Self::Single(redis::Client::open(url)?))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// The connection for ordinary commands: multiplexed, cheap to clone, reconnecting.
    pub async fn shared(&self, opts: SharedOptions) -> RedisResult<Conn> {
        match self {
            Self::Single(client) => {
                let cfg = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(opts.response_timeout))
                    .set_connection_timeout(Some(opts.connection_timeout))
                    .set_number_of_retries(opts.retries as usize)
                    .set_max_delay(Duration::from_secs(1));
                let conn = ConnectionManager::new_with_config(client.clone(), cfg).await?;
                Ok(Conn::Managed(conn))
            }
            Self::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.clone())
                    .response_timeout(opts.response_timeout)
                    .connection_timeout(opts.connection_timeout)
                    .retries(opts.retries)
                    .build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// A connection of its own without a response timeout, for blocking commands.
    pub async fn dedicated(&self, connection_timeout: Duration) -> RedisResult<Conn> {
        match self {
            Self::Single(client) => {
                let cfg = AsyncConnectionConfig::new()
                    .set_response_timeout(None)
                    .set_connection_timeout(Some(connection_timeout));
                let conn = client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await?;
                Ok(Conn::Direct(conn))
            }
            Self::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(connection_timeout)
                    .build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
        }
    }
}

impl From<redis::Client> for Endpoint {
    fn from(client: redis::Client) -> Self {
        Self::Single(client)
    }
}

/// `user:password@host:port,host:port[/]` into one connection info per node.
fn cluster_nodes(rest: &str, node_scheme: &str) -> RedisResult<Vec<ConnectionInfo>> {
    let invalid = |detail: String| {
        RedisError::from((
            ErrorKind::InvalidClientConfig,
            "invalid cluster URL",
            detail,
        ))
    };
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let hosts = hosts.trim_end_matches('/');
    if hosts.contains('/') {
        return Err(invalid(
            "a cluster has only database 0: no /db or path after the nodes".into(),
        ));
    }
    let nodes: Vec<ConnectionInfo> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|host| format!("{node_scheme}{auth}{host}").into_connection_info())
        .collect::<RedisResult<_>>()?;
    if nodes.is_empty() {
        return Err(invalid(
            "name at least one seed node: redis+cluster://host:port,host:port".into(),
        ));
    }
    Ok(nodes)
}

/// A connection to one server or to a cluster; clones share the underlying connection.
#[derive(Clone)]
pub enum Conn {
    /// One server, reconnecting in the background.
    Managed(ConnectionManager),
    /// One server, a plain multiplexed connection (for blocking commands).
    Direct(MultiplexedConnection),
    /// A cluster: commands are routed by the slot of their first key.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Managed(_) => "Conn::Managed",
            Self::Direct(_) => "Conn::Direct",
            Self::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl From<ConnectionManager> for Conn {
    fn from(conn: ConnectionManager) -> Self {
        Self::Managed(conn)
    }
}

impl From<MultiplexedConnection> for Conn {
    fn from(conn: MultiplexedConnection) -> Self {
        Self::Direct(conn)
    }
}

impl From<ClusterConnection> for Conn {
    fn from(conn: ClusterConnection) -> Self {
        Self::Cluster(conn)
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Managed(c) => c.req_packed_command(cmd),
            Self::Direct(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Managed(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Direct(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => {
                let whole = offset == 0 && count == pipeline.len();
                match slot_groups(pipeline) {
                    Some(groups) if whole && !pipeline.is_transaction() => {
                        Box::pin(split_pipeline(c.clone(), pipeline, groups))
                    }
                    _ => c.req_packed_commands(pipeline, offset, count),
                }
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(c) => c.get_db(),
            Self::Direct(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The command indexes of `pipeline` per slot, when they fall in more than one slot. Commands
/// without a key join the first group.
fn slot_groups(pipeline: &Pipeline) -> Option<Vec<Vec<usize>>> {
    let mut by_slot: HashMap<Slot, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut keyless = Vec::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        match slot_of(cmd) {
            Some(slot) => {
                let g = *by_slot.entry(slot).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[g].push(i);
            }
            None => keyless.push(i),
        }
    }
    if groups.len() < 2 {
        return None;
    }
    groups[0].extend(keyless);
    Some(groups)
}

/// The slot of a command's first key; `None` for commands without one.
fn slot_of(cmd: &Cmd) -> Option<Slot> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            Arg::Simple(d) => Some(d),
            _ => None, // a SCAN cursor
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let keys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if keys == 0 {
                return None;
            }
            args.get(3)?
        }
        b"XINFO" | b"OBJECT" | b"MEMORY" => args.get(2)?,
        b"PING" | b"TIME" | b"INFO" | b"SCRIPT" | b"CLUSTER" | b"DBSIZE" | b"ECHO" | b"CLIENT"
        | b"CONFIG" | b"SCAN" | b"KEYS" | b"FLUSHALL" | b"FLUSHDB" | b"WAIT" => return None,
        _ => args.get(1)?,
    };
    Some(Slot::for_key(key))
}

/// Sends each slot's part of `pipeline` on its own, concurrently, and returns the replies in the
/// pipeline's order.
async fn split_pipeline(
    conn: ClusterConnection,
    pipeline: &Pipeline,
    groups: Vec<Vec<usize>>,
) -> RedisResult<Vec<Value>> {
    let cmds: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let parts = groups.iter().map(|idx| {
        let mut part = Pipeline::with_capacity(idx.len());
        for &i in idx {
            part.add_command(cmds[i].clone());
        }
        let mut conn = conn.clone();
        async move { conn.req_packed_commands(&part, 0, part.len()).await }
    });
    let replies = futures::future::join_all(parts).await;
    let mut out = vec![Value::Nil; cmds.len()];
    for (idx, reply) in groups.iter().zip(replies) {
        for (&i, value) in idx.iter().zip(reply?) {
            out[i] = value;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_is_grouped_by_the_slot_of_each_first_key() {
        let mut p = redis::pipe();
        p.hget("a:{q1}:stats", "x")
            .cmd("PING")
            .zcard("a:{q2}:ready")
            .hget("a:{q1}:t:1", "y")
            .cmd("EVALSHA")
            .arg("abc")
            .arg(1)
            .arg("a:{q2}:seq");
        assert_eq!(slot_groups(&p), Some(vec![vec![0, 3, 1], vec![2, 4]]));
        let mut one = redis::pipe();
        one.hget("a:{q1}:stats", "x").zcard("a:{q1}:ready");
        assert_eq!(slot_groups(&one), None);
    }

    #[test]
    fn a_plain_url_is_one_server() {
        let e = Endpoint::open("redis://127.0.0.1:6379/2").unwrap();
        assert!(!e.is_cluster());
    }

    #[test]
    fn a_cluster_url_lists_its_seed_nodes_with_credentials() {
        let Endpoint::Cluster(nodes) =
            Endpoint::open("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001/").unwrap()
        else {
            panic!("expected a cluster endpoint");
        };
        assert_eq!(nodes.len(), 2);
        for (node, port) in nodes.iter().zip([7000, 7001]) {
            assert!(node.addr().to_string().ends_with(&format!(":{port}")));
            assert_eq!(node.redis_settings().username(), Some("u"));
            assert_eq!(node.redis_settings().password(), Some("p@ss"));
        }
    }

    #[test]
    fn a_cluster_url_without_nodes_or_with_a_database_is_refused() {
        for url in ["redis+cluster://", "redis+cluster://h:1,h:2/3"] {
            let err = Endpoint::open(url).unwrap_err();
            assert!(err.to_string().contains("cluster"), "{url}: {err}");
        }
    }
}
