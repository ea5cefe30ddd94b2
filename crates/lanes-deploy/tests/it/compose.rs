//! docker-compose.yml against the binaries: commands, healthchecks and environments of every
//! service built from the project's image, and what `--scale` and a clean stop need.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_norway::Value;

use crate::support::{self, DEFAULT_GRACE_SECS, assert_none, bins, check_env, dockerfile_bins};

#[derive(Debug, Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
}

#[derive(Debug, Deserialize)]
struct Service {
    build: Option<Build>,
    command: Option<Value>,
    entrypoint: Option<Value>,
    environment: Option<Value>,
    healthcheck: Option<Healthcheck>,
    depends_on: Option<BTreeMap<String, DependsOn>>,
    container_name: Option<String>,
    stop_grace_period: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Build {
    target: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Healthcheck {
    test: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct DependsOn {
    condition: String,
}

/// The compose file with YAML merge keys (`<<: *lanes`) applied, as Compose does.
fn compose() -> Compose {
    let mut value: Value =
        serde_norway::from_str(&support::read("docker-compose.yml")).expect("compose is YAML");
    value.apply_merge().expect("merge keys");
    serde_norway::from_value(value).expect("compose services")
}

/// The project's services (built from the Dockerfile), each with its command line.
fn project_services(c: &Compose, problems: &mut Vec<String>) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (name, s) in c.services.iter().filter(|(_, s)| s.build.is_some()) {
        if s.entrypoint.is_some() {
            problems.push(format!(
                "service {name}: sets an entrypoint; the image has none, the binary is the command"
            ));
        }
        match s
            .command
            .clone()
            .map(serde_norway::from_value::<Vec<String>>)
        {
            Some(Ok(argv)) if !argv.is_empty() => out.push((name.clone(), argv)),
            _ => problems.push(format!(
                "service {name}: command must be a list of strings starting with a binary"
            )),
        }
    }
    out
}

#[test]
fn every_service_command_and_variable_is_one_its_binary_reads() {
    let c = compose();
    let known = dockerfile_bins();
    let mut problems = Vec::new();
    let services = project_services(&c, &mut problems);
    assert!(
        services.len() >= 7,
        "fakes, broker and five worker roles: {services:?}"
    );
    for (name, argv) in &services {
        let what = format!("service {name}");
        let bin = &argv[0];
        if !known.contains(bin) {
            problems.push(format!(
                "{what}: runs {bin}, which the Dockerfile does not build (LANES_BINS)"
            ));
            continue;
        }
        let Some(help) = bins().check(&what, argv, &mut problems) else {
            continue;
        };
        let service = &c.services[name];
        match service
            .environment
            .clone()
            .map(serde_norway::from_value::<BTreeMap<String, Value>>)
        {
            None => {}
            Some(Err(e)) => problems.push(format!(
                "{what}: environment must be a map (NAME: value): {e}"
            )),
            Some(Ok(env)) => {
                for var in env.keys() {
                    check_env(&what, bin, &help, var, &mut problems);
                }
            }
        }
    }
    assert_none(problems);
}

/// The healthchecks that run a project binary (`worker inspect ...`) use its real flags too.
#[test]
fn healthchecks_use_real_flags() {
    let c = compose();
    let known = dockerfile_bins();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (name, s) in &c.services {
        let Some(h) = &s.healthcheck else { continue };
        let what = format!("service {name} healthcheck");
        let commands = match h.test.split_first() {
            Some((kind, argv)) if kind == "CMD" => vec![argv.to_vec()],
            Some((kind, rest)) if kind == "CMD-SHELL" => shell_commands(&rest.join(" ")),
            _ => {
                problems.push(format!("{what}: test must start with CMD or CMD-SHELL"));
                continue;
            }
        };
        for argv in commands.iter().filter(|a| known.contains(&a[0])) {
            bins().check(&what, argv, &mut problems);
            checked += 1;
        }
    }
    assert!(
        checked >= 5,
        "every worker role checks its own registration"
    );
    assert_none(problems);
}

/// The simple commands of a shell line: split at `|`, `&&`, `||` and `;`, quotes dropped,
/// a leading `exec` skipped.
fn shell_commands(line: &str) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for word in line.split_whitespace() {
        if matches!(word, "|" | "&&" | "||" | ";") {
            out.push(Vec::new());
            continue;
        }
        let cmd = out.last_mut().expect("one command at least");
        if !(cmd.is_empty() && word == "exec") {
            cmd.push(word.trim_matches(['"', '\'']).to_owned());
        }
    }
    out.retain(|c| !c.is_empty());
    out
}

#[test]
fn worker_roles_scale_wait_for_redis_and_get_time_to_hand_back() {
    let c = compose();
    let mut problems = Vec::new();
    let services = project_services(&c, &mut problems);
    for (name, argv) in &services {
        let s = &c.services[name];
        let bin = &argv[0];
        let help = match bins().help(bin, &[]) {
            Ok(h) => h,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if s.container_name.is_some() {
            problems.push(format!(
                "service {name}: container_name stops `docker compose up --scale {name}=N`"
            ));
        }
        if s.healthcheck.is_none() {
            problems.push(format!("service {name}: no healthcheck"));
        }
        if help.env.contains("REDIS_URL") {
            let redis = s.depends_on.as_ref().and_then(|d| d.get("redis"));
            if redis.map(|d| d.condition.as_str()) != Some("service_healthy") {
                problems.push(format!(
                    "service {name}: must depend on redis with condition service_healthy"
                ));
            }
        }
        if help.accepts("--grace") {
            let stop = s.stop_grace_period.as_deref().and_then(support::seconds);
            if stop.is_none_or(|secs| secs <= DEFAULT_GRACE_SECS) {
                problems.push(format!(
                    "service {name}: stop_grace_period {:?} must exceed the workers' --grace \
                     ({DEFAULT_GRACE_SECS}s), or Docker kills running tasks",
                    s.stop_grace_period
                ));
            }
        }
        if let Some(target) = s.build.as_ref().and_then(|b| b.target.as_deref()) {
            let stage = format!(" AS {target}");
            if !support::read("Dockerfile")
                .lines()
                .any(|l| l.starts_with("FROM ") && l.ends_with(&stage))
            {
                problems.push(format!(
                    "service {name}: build target {target} is not a Dockerfile stage"
                ));
            }
        }
    }
    for (name, s) in &c.services {
        for dep in s.depends_on.iter().flat_map(|d| d.keys()) {
            match c.services.get(dep) {
                Some(d) if d.healthcheck.is_some() => {}
                Some(_) => problems.push(format!(
                    "service {name}: waits for {dep} to be healthy, which has no healthcheck"
                )),
                None => problems.push(format!("service {name}: depends on unknown {dep}")),
            }
        }
    }
    assert_none(problems);
}

#[test]
fn shell_lines_split_into_commands() {
    assert_eq!(
        shell_commands("exec worker inspect active --json | grep -q \"x\" && true"),
        [
            vec!["worker", "inspect", "active", "--json"],
            vec!["grep", "-q", "x"],
            vec!["true"]
        ]
    );
}
