//! deploy/systemd against the binaries: each unit's ExecStart and Environment, the example
//! environment files, and stop timeouts that leave workers their grace.

use std::collections::BTreeMap;

use crate::support::{self, DEFAULT_GRACE_SECS, assert_none, bins, check_env, dockerfile_bins};

const DIR: &str = "deploy/systemd";

/// `deploy/systemd` file name → its text, for names ending in `suffix`.
fn files(suffix: &str) -> BTreeMap<String, String> {
    let dir = support::repo().join(DIR);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(suffix))
        .map(|n| {
            let text = support::read(&format!("{DIR}/{n}"));
            (n, text)
        })
        .collect()
}

/// The values of `key=` lines of a unit, in order.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// A unit's binary: ExecStart's program, which must be /usr/local/bin/<binary>.
fn exec_start(name: &str, unit: &str, problems: &mut Vec<String>) -> Option<Vec<String>> {
    let starts = values(unit, "ExecStart");
    let [line] = starts.as_slice() else {
        problems.push(format!("{name}: needs exactly one ExecStart"));
        return None;
    };
    let mut argv: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    let program = argv.first()?.trim_start_matches(['-', '@', '+', '!', ':']);
    let Some(bin) = program.strip_prefix("/usr/local/bin/") else {
        problems.push(format!(
            "{name}: ExecStart runs {program}, not /usr/local/bin/<binary>"
        ));
        return None;
    };
    if !dockerfile_bins().iter().any(|b| b == bin) {
        problems.push(format!("{name}: runs {bin}, which is not a Lanes binary"));
        return None;
    }
    argv[0] = bin.to_owned();
    Some(argv)
}

#[test]
fn units_run_real_flags_and_stop_after_the_grace() {
    let units = files(".service");
    assert!(
        units.contains_key("lanes-broker.service") && units.contains_key("lanes-worker@.service"),
        "{:?}",
        units.keys()
    );
    let mut problems = Vec::new();
    for (name, unit) in &units {
        let Some(argv) = exec_start(name, unit, &mut problems) else {
            continue;
        };
        let Some(help) = bins().check(name, &argv, &mut problems) else {
            continue;
        };
        for assignment in values(unit, "Environment") {
            for var in assignment
                .split_whitespace()
                .filter_map(|a| a.split_once('='))
            {
                check_env(
                    name,
                    &argv[0],
                    &help,
                    var.0.trim_matches('"'),
                    &mut problems,
                );
            }
        }
        let own = format!("-/etc/lanes/{}.env", argv[0]);
        if values(unit, "EnvironmentFile") != ["/etc/lanes/lanes.env", own.as_str()] {
            problems.push(format!(
                "{name}: EnvironmentFile must be /etc/lanes/lanes.env, then the optional \
                 /etc/lanes/{}.env",
                argv[0]
            ));
        }
        for (key, want) in [
            ("Restart", "on-failure"),
            ("KillSignal", "SIGTERM"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
        ] {
            if values(unit, key) != [want] {
                problems.push(format!("{name}: needs {key}={want}"));
            }
        }
        if help.accepts("--grace") {
            let stop = values(unit, "TimeoutStopSec")
                .first()
                .and_then(|v| support::seconds(v));
            if stop.is_none_or(|s| s <= DEFAULT_GRACE_SECS) {
                problems.push(format!(
                    "{name}: TimeoutStopSec must exceed the workers' --grace ({DEFAULT_GRACE_SECS}s)"
                ));
            }
            if values(unit, "KillMode") != ["mixed"] {
                problems.push(format!(
                    "{name}: KillMode=mixed, so the programs a task runs are not killed before \
                     the worker's grace ends"
                ));
            }
        }
    }
    assert_none(problems);
}

/// `lanes.env.example` is loaded by every unit, `<binary>.env.example` by that binary's: every
/// variable in them must be one those binaries read.
#[test]
fn example_environment_files_name_real_variables() {
    let mut readers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, unit) in files(".service") {
        if let Some(argv) = exec_start(&name, &unit, &mut problems) {
            readers
                .entry("lanes".into())
                .or_default()
                .push(argv[0].clone());
            readers
                .entry(argv[0].clone())
                .or_default()
                .push(argv[0].clone());
        }
    }
    let examples = files(".env.example");
    assert!(
        examples.contains_key("lanes.env.example"),
        "{:?}",
        examples.keys()
    );
    for (name, text) in &examples {
        let what = format!("{DIR}/{name}");
        let stem = name.trim_end_matches(".env.example");
        let Some(bins_reading) = readers.get(stem) else {
            problems.push(format!("{what}: no unit loads /etc/lanes/{stem}.env"));
            continue;
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((var, _)) = line.split_once('=') else {
                problems.push(format!("{what}: {line:?} is not NAME=value"));
                continue;
            };
            for bin in bins_reading {
                match bins().help(bin, &[]) {
                    Ok(help) => check_env(&what, bin, &help, var, &mut problems),
                    Err(e) => problems.push(e),
                }
            }
        }
    }
    assert_none(problems);
}
