//! What a Lanes binary accepts, read from its real `--help`, and the check of one command line
//! against it. The deployment check (`tests/it`) runs every binary that the Dockerfile,
//! docker-compose.yml and the systemd units use, and fails on a flag, subcommand or environment
//! variable the binary does not know.
//!
//! Modules: this file only: [`Help`] (one help text parsed), [`check_command`] (one command line
//! against a binary's help, subcommands followed).

use std::collections::{BTreeMap, BTreeSet};

/// What one `--help` output says a command accepts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Help {
    /// Long (`--name`) and short (`-n`) flags, aliases included, each with whether it takes a
    /// value.
    pub flags: BTreeMap<String, bool>,
    /// Environment variables named by `[env: NAME=...]` (or `[env: NAME]` when values are
    /// hidden).
    pub env: BTreeSet<String>,
    /// Subcommands listed under `Commands:`.
    pub subcommands: BTreeSet<String>,
}

impl Help {
    /// Parses clap's help layout: option lines start (after at most six spaces) with `-`, their
    /// descriptions are indented further; subcommands are the first word of each line of the
    /// `Commands:` section.
    pub fn parse(text: &str) -> Self {
        let mut help = Self::default();
        let mut in_commands = false;
        // Whether the option whose description is being read takes a value (its aliases do too).
        let mut current_takes_value = false;
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            let trimmed = line.trim();
            if !line.starts_with(' ') {
                in_commands = trimmed == "Commands:";
                continue;
            }
            if in_commands {
                if let Some(name) = trimmed.split_whitespace().next() {
                    help.subcommands.insert(name.to_owned());
                }
                continue;
            }
            if indent <= 6 && trimmed.starts_with('-') {
                current_takes_value = help.add_option_line(trimmed);
            }
            for list in bracketed(line, "[aliases: ")
                .into_iter()
                .chain(bracketed(line, "[alias: "))
            {
                let list = list.split(']').next().unwrap_or_default();
                for alias in list
                    .split(',')
                    .map(str::trim)
                    .filter(|a| a.starts_with('-'))
                {
                    help.flags.insert(alias.to_owned(), current_takes_value);
                }
            }
        }
        for name in bracketed(text, "[env: ") {
            let end = name.find(['=', ']']).unwrap_or(name.len());
            help.env.insert(name[..end].to_owned());
        }
        help
    }

    /// One option line: `-c, --concurrency <N>`, `--json`, `-h, --help`, `--listen <LISTEN>`;
    /// returns whether the option takes a value.
    fn add_option_line(&mut self, line: &str) -> bool {
        let head = line.split("  ").next().unwrap_or(line);
        let takes_value = head.contains('<');
        for part in head.split(", ") {
            if let Some(flag) = part
                .split_whitespace()
                .next()
                .filter(|f| f.starts_with('-'))
            {
                self.flags.insert(flag.to_owned(), takes_value);
            }
        }
        takes_value
    }

    pub fn accepts(&self, flag: &str) -> bool {
        self.flags.contains_key(flag)
    }

    pub fn takes_value(&self, flag: &str) -> bool {
        self.flags.get(flag).copied().unwrap_or(false)
    }
}

/// The text after each occurrence of `marker`, up to the end of its line.
fn bracketed<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    text.match_indices(marker)
        .map(|(at, _)| {
            let rest = &text[at + marker.len()..];
            rest.lines().next().unwrap_or_default()
        })
        .collect()
}

/// A command line checked against a binary's help.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The subcommand path the command line takes (`["tickets", "dispatch"]`), empty for the
    /// binary's own mode.
    pub subcommands: Vec<String>,
    /// Flags the binary (at that subcommand) does not accept.
    pub unknown_flags: Vec<String>,
}

/// Checks `args` (a command line without the program name) against the binary's help:
/// `help_of(path)` returns the help of the (sub)command at `path` (`[]` for the binary itself).
/// A positional word that names a subcommand of the current command descends into it; every
/// `--flag`, `--flag=value` and `-f` must be listed by the help of the command it is given to;
/// the value after a flag that takes one is skipped.
pub fn check_command<E>(
    args: &[String],
    mut help_of: impl FnMut(&[String]) -> Result<Help, E>,
) -> Result<Checked, E> {
    let mut out = Checked::default();
    let mut help = help_of(&[])?;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            break;
        }
        let is_flag = arg.starts_with('-') && arg.len() > 1 && arg.parse::<f64>().is_err();
        if is_flag {
            let (flag, inline_value) = match arg.split_once('=') {
                Some((f, _)) if arg.starts_with("--") => (f, true),
                _ => (arg.as_str(), false),
            };
            if !help.accepts(flag) {
                out.unknown_flags.push(flag.to_owned());
            } else if help.takes_value(flag) && !inline_value {
                i += 1;
            }
        } else if help.subcommands.contains(arg) {
            out.subcommands.push(arg.clone());
            help = help_of(&out.subcommands)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKER: &str = "\
Lanes worker: runs tasks

Usage: worker [OPTIONS]
       worker <COMMAND>

Commands:
  submit   Enqueue tasks and print their ids, one per line
  tickets  The ticket executor's operations
  help     Print this message or the help of the given subcommand(s)

Options:
      --redis-url <REDIS_URL>
          Redis URL: redis://[user:password@]host:port[/db] [env: REDIS_URL] [default: redis://127.0.0.1:6379/]
      --prefix <PREFIX>
          Prefix of every Redis key [env: LANES_PREFIX=] [default: lanes]
      --queues <QUEUES>
          Queues to consume; needs --made-up-in-prose [env: LANES_QUEUES=]
      --json
          Print JSON
  -c, --concurrency <N>
          Tasks at once [env: LANES_CONCURRENCY=8]
      --queue-list <Q>
          Queues [aliases: --ql, --qq]
  -h, --help
          Print help
";

    fn help() -> Help {
        Help::parse(WORKER)
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn help_lists_flags_env_and_subcommands() {
        let h = help();
        for flag in [
            "--redis-url",
            "--prefix",
            "--queues",
            "--json",
            "-c",
            "--concurrency",
        ] {
            assert!(h.accepts(flag), "{flag}");
        }
        assert!(
            h.takes_value("--ql") && h.takes_value("--qq"),
            "aliases: {:?}",
            h.flags
        );
        assert!(h.takes_value("--queues") && !h.takes_value("--json"));
        assert!(h.takes_value("-c"));
        assert!(
            !h.accepts("--made-up-in-prose"),
            "a flag named in a description"
        );
        let env: Vec<&str> = h.env.iter().map(String::as_str).collect();
        assert_eq!(
            env,
            [
                "LANES_CONCURRENCY",
                "LANES_PREFIX",
                "LANES_QUEUES",
                "REDIS_URL"
            ]
        );
        let subs: Vec<&str> = h.subcommands.iter().map(String::as_str).collect();
        assert_eq!(subs, ["help", "submit", "tickets"]);
    }

    #[test]
    fn command_lines_are_checked_flag_by_flag() {
        let ok = check_command(
            &args("--queues default,tickets --prefix=x -c 4 --json"),
            |_: &[String]| Ok::<_, ()>(help()),
        )
        .expect("help");
        assert_eq!(ok, Checked::default());
        let bad = check_command(&args("--queue default --concurency 3"), |_: &[String]| {
            Ok::<_, ()>(help())
        })
        .expect("help");
        assert_eq!(bad.unknown_flags, ["--queue", "--concurency"]);
    }

    #[test]
    fn a_flag_value_is_not_taken_for_a_subcommand_and_subcommands_are_followed() {
        let sub = Help::parse("Options:\n      --queue <Q>\n          Queue\n");
        let mut asked = Vec::new();
        let checked = check_command(
            &args("--queues submit submit --queue q --json"),
            |path: &[String]| {
                asked.push(path.to_vec());
                Ok::<_, ()>(if path.is_empty() { help() } else { sub.clone() })
            },
        )
        .expect("help");
        assert_eq!(checked.subcommands, ["submit"]);
        assert_eq!(
            checked.unknown_flags,
            ["--json"],
            "--json is not a flag of submit"
        );
        assert_eq!(asked, [vec![], vec!["submit".to_owned()]]);
    }

    #[test]
    fn negative_numbers_are_values() {
        let h = Help::parse("Options:\n      --thinking-budget <N>\n          Budget\n");
        let checked = check_command(&args("--thinking-budget -1"), |_: &[String]| {
            Ok::<_, ()>(h.clone())
        })
        .expect("help");
        assert!(checked.unknown_flags.is_empty(), "{checked:?}");
    }
}
