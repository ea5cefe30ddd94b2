//! The broker's serving flags (`ServeArgs`, each also read from an environment variable) and
//! the validated [`Config`] they become. Refuses to expose an unauthenticated API beyond
//! loopback unless asked to.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure};
use clap::Args;
use lanes_cli::{ConnArgs, parse_duration};

/// How the HTTP server listens and protects itself.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (IP:PORT). Binding beyond loopback needs --api-token or
    /// --allow-unauthenticated.
    #[arg(long, env = "LANES_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token required by every mutating route (and by reads with --protect-reads).
    /// Prefer the environment variable: command lines are visible to other users.
    #[arg(long, env = "LANES_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Require the token on read-only routes too (the dashboard page, /healthz, /readyz and
    /// /openapi.json stay open).
    #[arg(long, env = "LANES_PROTECT_READS")]
    pub protect_reads: bool,
    /// Allow listening beyond loopback without an API token (anyone who can reach the port can
    /// enqueue and cancel tasks).
    #[arg(long, env = "LANES_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Largest request body accepted (bytes, or with a unit: 512KiB, 10MiB, 1MB).
    #[arg(long, env = "LANES_BODY_LIMIT", default_value = "10MiB", value_parser = parse_size)]
    pub body_limit: usize,
    /// Longest time a request may take before it is answered 503.
    #[arg(long, env = "LANES_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How long to wait for Redis when connecting or when /readyz pings it.
    #[arg(long, env = "LANES_REDIS_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub redis_timeout: Duration,
    /// How often the dashboard's event stream sends a fresh snapshot.
    #[arg(long, env = "LANES_SNAPSHOT_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub snapshot_interval: Duration,
    /// Waiting and dead-lettered tasks shown per queue on the dashboard.
    #[arg(long, env = "LANES_DASHBOARD_ROWS", default_value_t = 10)]
    pub dashboard_rows: usize,
}

/// Who may call what.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// The bearer token; `None` leaves every route open.
    pub token: Option<String>,
    /// Require the token on read-only routes as well.
    pub protect_reads: bool,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("protect_reads", &self.protect_reads)
            .finish()
    }
}

/// Everything the broker needs, validated.
#[derive(Clone)]
pub struct Config {
    /// Redis URL (credentials allowed; never logged).
    pub redis_url: String,
    /// Engine settings (key prefix, TTLs); must match the workers'.
    pub engine: lanes_queue::Config,
    pub listen: SocketAddr,
    pub auth: AuthConfig,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub redis_timeout: Duration,
    pub snapshot_interval: Duration,
    pub dashboard_rows: usize,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("redis_url", &lanes_cli::redact(&self.redis_url))
            .field("engine", &self.engine)
            .field("listen", &self.listen)
            .field("auth", &self.auth)
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("redis_timeout", &self.redis_timeout)
            .field("snapshot_interval", &self.snapshot_interval)
            .field("dashboard_rows", &self.dashboard_rows)
            .finish()
    }
}

impl Config {
    /// Defaults for everything but where Redis is and the engine settings.
    pub fn new(redis_url: impl Into<String>, engine: lanes_queue::Config) -> Self {
        Self {
            redis_url: redis_url.into(),
            engine,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            auth: AuthConfig::default(),
            body_limit: 10 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            redis_timeout: Duration::from_secs(2),
            snapshot_interval: Duration::from_secs(1),
            dashboard_rows: 10,
        }
    }
}

impl ServeArgs {
    /// The validated configuration. Fails when the API would be reachable beyond loopback
    /// without a token and `--allow-unauthenticated` was not given.
    pub fn config(&self, conn: &ConnArgs) -> anyhow::Result<Config> {
        let token = self.api_token.clone().filter(|t| !t.trim().is_empty());
        if token.is_none() && !self.listen.ip().is_loopback() && !self.allow_unauthenticated {
            bail!(
                "refusing to listen on {} without an API token: anyone who can reach it could \
                 enqueue and cancel tasks. Set LANES_API_TOKEN (or --api-token), listen on a \
                 loopback address, or pass --allow-unauthenticated",
                self.listen
            );
        }
        if self.protect_reads && token.is_none() {
            bail!("--protect-reads needs an API token (LANES_API_TOKEN or --api-token)");
        }
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            tracing::warn!("the API token is shorter than 16 characters; use a long random one");
        }
        ensure!(self.body_limit > 0, "--body-limit must be positive");
        ensure!(
            !self.request_timeout.is_zero(),
            "--request-timeout must be positive"
        );
        ensure!(
            !self.redis_timeout.is_zero(),
            "--redis-timeout must be positive"
        );
        ensure!(
            self.snapshot_interval >= Duration::from_millis(100),
            "--snapshot-interval must be at least 100ms"
        );
        Ok(Config {
            redis_url: conn.redis_url.clone(),
            engine: conn.config(),
            listen: self.listen,
            auth: AuthConfig {
                token,
                protect_reads: self.protect_reads,
            },
            body_limit: self.body_limit,
            request_timeout: self.request_timeout,
            redis_timeout: self.redis_timeout,
            snapshot_interval: self.snapshot_interval,
            dashboard_rows: self.dashboard_rows,
        })
    }
}

/// Parses `1048576`, `512KiB`, `10MiB`, `1GiB`, `64KB`, `10MB` (KB/MB are powers of 1000).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 65536, 512KiB, 10MiB)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn config(args: &[&str]) -> anyhow::Result<Config> {
        let mut argv = vec!["broker"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv)?;
        cli.serve.config(&cli.conn)
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("512kib"), Ok(512 * 1024));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn refuses_a_public_address_without_a_token() {
        let err = config(&["--listen", "0.0.0.0:8080"]).expect_err("must refuse");
        assert!(err.to_string().contains("without an API token"), "{err}");
        assert!(config(&["--listen", "0.0.0.0:8080", "--allow-unauthenticated"]).is_ok());
        assert!(
            config(&[
                "--listen",
                "0.0.0.0:8080",
                "--api-token",
                "0123456789abcdef"
            ])
            .is_ok()
        );
        assert!(config(&["--listen", "[::1]:8080"]).is_ok());
        let blank = config(&["--listen", "0.0.0.0:8080", "--api-token", " "]);
        assert!(blank.is_err(), "a blank token is no token");
    }

    #[test]
    fn protect_reads_needs_a_token_and_the_token_is_never_printed() {
        assert!(config(&["--protect-reads"]).is_err());
        let cfg = config(&["--protect-reads", "--api-token", "s3cret-s3cret-s3cret"])
            .expect("valid config");
        assert!(cfg.auth.protect_reads);
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }
}
