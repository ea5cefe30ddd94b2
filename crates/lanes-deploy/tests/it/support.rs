//! The repository's deployment files and the real binaries: builds the binaries the Dockerfile
//! ships (once per test process), runs their `--help` and checks command lines against it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use lanes_deploy::{Help, check_command};

/// The `--grace` default of every worker binary (`lanes-cli`'s `WorkerArgs`): a container or
/// unit must give a worker longer than this between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE_SECS: u64 = 30;

/// Variables a binary reads without clap (so `--help` does not list them): the variable, the
/// code that reads it, and the files one of which must contain that code for every binary that
/// installs tracing (its own `main.rs` or `lanes-cli`).
const READ_BY_CODE: &[(&str, &str)] = &[
    // tracing-subscriber's EnvFilter::try_from_default_env reads RUST_LOG
    ("RUST_LOG", "EnvFilter::try_from_default_env()"),
];

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The binaries the Dockerfile builds and installs: its `ARG LANES_BINS="..."`.
pub fn dockerfile_bins() -> Vec<String> {
    let dockerfile = read("Dockerfile");
    let line = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG LANES_BINS="))
        .expect("the Dockerfile declares ARG LANES_BINS=\"...\"");
    line.trim_matches('"')
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The binaries, built, and their help texts.
pub struct Bins {
    dir: PathBuf,
    helps: Mutex<HashMap<(String, Vec<String>), Help>>,
}

/// Builds every Dockerfile binary (a no-op when they are up to date) into the target directory
/// this test runs from, once per test process.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        // target/<profile>/deps/it-<hash>
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps")
            .to_path_buf();
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(repo())
            .args(["build", "--locked", "--quiet"]);
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        for bin in dockerfile_bins() {
            cmd.args(["--bin", &bin]);
        }
        let out = cmd.output().expect("run cargo build");
        assert!(
            out.status.success(),
            "cargo build of the Dockerfile's binaries failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Bins {
            dir,
            helps: Mutex::new(HashMap::new()),
        }
    })
}

impl Bins {
    /// `bin [path...] --help`, parsed, with an empty environment (so no variable changes what
    /// the help shows).
    pub fn help(&self, bin: &str, path: &[String]) -> Result<Help, String> {
        let key = (bin.to_owned(), path.to_vec());
        if let Some(h) = self.helps.lock().expect("help cache").get(&key) {
            return Ok(h.clone());
        }
        let exe = self.dir.join(bin);
        let out = Command::new(&exe)
            .args(path)
            .arg("--help")
            .env_clear()
            .output()
            .map_err(|e| format!("run {} --help: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`{bin} {} --help` failed: {}",
                path.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let help = Help::parse(&String::from_utf8_lossy(&out.stdout));
        self.helps
            .lock()
            .expect("help cache")
            .insert(key, help.clone());
        Ok(help)
    }

    /// Problems of one command line (`argv[0]` a Dockerfile binary): unknown flags, and the
    /// help of the (sub)command it runs, for the environment check.
    pub fn check(&self, what: &str, argv: &[String], problems: &mut Vec<String>) -> Option<Help> {
        let (bin, args) = argv.split_first()?;
        let checked = match check_command(args, |path| self.help(bin, path)) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("{what}: {e}"));
                return None;
            }
        };
        for flag in &checked.unknown_flags {
            let at = if checked.subcommands.is_empty() {
                bin.clone()
            } else {
                format!("{bin} {}", checked.subcommands.join(" "))
            };
            problems.push(format!(
                "{what}: `{at}` has no flag {flag} (see `{at} --help`)"
            ));
        }
        self.help(bin, &checked.subcommands)
            .map_err(|e| problems.push(format!("{what}: {e}")))
            .ok()
    }
}

/// Checks that `bin` (run as described by `help`) reads environment variable `name`: listed by
/// its help (`[env: NAME...]`), or read by code in [`READ_BY_CODE`].
pub fn check_env(what: &str, bin: &str, help: &Help, name: &str, problems: &mut Vec<String>) {
    if help.env.contains(name) {
        return;
    }
    let Some((_, code)) = READ_BY_CODE.iter().find(|(var, _)| *var == name) else {
        problems.push(format!(
            "{what}: `{bin}` does not read {name} (its --help lists no [env: {name}])"
        ));
        return;
    };
    let main = read(&format!("bins/{bin}/src/main.rs"));
    let reads = main.contains("init_tracing(")
        && (main.contains(code) || read("crates/lanes-cli/src/lib.rs").contains(code));
    if !reads {
        problems.push(format!(
            "{what}: `{bin}` does not read {name}: neither bins/{bin}/src/main.rs nor lanes-cli \
             calls {code} from an init_tracing it uses"
        ));
    }
}

/// Whole-second durations as compose and systemd write them: `45s`, `1m`, `1m30s`, `90`.
pub fn seconds(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let (mut total, mut num) = (0, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += match c {
            's' => n,
            'm' => n * 60,
            'h' => n * 3600,
            _ => return None,
        };
    }
    num.is_empty().then_some(total)
}

/// Fails with every problem found, one per line.
pub fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
