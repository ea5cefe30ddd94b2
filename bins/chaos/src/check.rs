//! The verdict: what the record files say happened, held against the plan and the engine's own
//! final state. Pure data in, figures out, so the checks are unit-tested on made-up evidence.
//!
//! - **Accepted outcome**: the engine's write observer logs every ack and failure with whether
//!   Redis accepted it or fencing refused it. A task's result names the attempt that produced it
//!   (worker, token), so the accepted ack is known from Redis too, even when the process that
//!   sent it was SIGKILLed before it could log it.
//! - **Duplicates acked**: more than one accepted final write for a task, or an accepted ack that
//!   is not the one Redis kept.
//! - **Lost**: a planned task without a final state, in the wrong final state, or without a
//!   completed run behind its accepted outcome.
//! - **Order** (per key): the accepted runs start in sequence order, and no attempt of sequence
//!   *n* starts before the accepted run of *n − 1* ended (**overlap**).
//! - **Batches**: the batch's counters equal what the record shows; its finalize ran once, after
//!   every child.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::record::Line;
use crate::workload::Spec;

/// Most problem descriptions kept (the counts are always complete).
const MAX_PROBLEMS: usize = 40;

/// What a planned task is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Generic,
    Serial,
    /// A child of the batch with this index.
    Child(usize),
    /// The finalize task of the batch with this index.
    Finalize(usize),
}

/// One task the controller enqueued.
#[derive(Debug, Clone)]
pub struct Planned {
    pub id: String,
    pub queue: String,
    pub role: Role,
    pub spec: Spec,
}

/// A task's final record in Redis.
#[derive(Debug, Clone)]
pub struct Final {
    /// `succeeded`, `failed`, `dead`, `cancelled`, or a non-final state.
    pub state: String,
    pub result: Option<Value>,
}

/// A batch's record in Redis.
#[derive(Debug, Clone, Default)]
pub struct BatchFinal {
    pub state: String,
    pub total_children: u64,
    pub children_done: u64,
    pub children_succeeded: u64,
    pub children_failed: u64,
    pub children_cancelled: u64,
    pub processed_items: u64,
    pub success_count: u64,
    pub finalize_state: Option<String>,
    pub result: Option<Value>,
}

/// The engine's view of one queue at the end.
#[derive(Debug, Clone, Default)]
pub struct QueueFinal {
    pub queue: String,
    pub queued: u64,
    pub scheduled: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Keys still holding a slot or with tasks waiting (keyed queue).
    pub busy_keys: u64,
}

/// One record file: its lines, and whether its process was SIGKILLed (it may have sent an ack
/// it never lived to log).
#[derive(Debug, Clone)]
pub struct RecordFile {
    pub name: String,
    pub killed: bool,
    pub lines: Vec<Line>,
    pub torn: usize,
}

/// Everything the checker reads.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub planned: Vec<Planned>,
    pub finals: HashMap<String, Final>,
    /// By batch index.
    pub batches: Vec<Option<BatchFinal>>,
    pub queues: Vec<QueueFinal>,
    pub records: Vec<RecordFile>,
}

/// The figures a check produces.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    pub tasks: usize,
    pub runs_started: usize,
    pub runs_completed: usize,
    /// Attempts beyond the first that the workload did not design (kills, zombie, pauses).
    pub redeliveries: usize,
    pub lost: usize,
    pub wrong_outcome: usize,
    pub duplicates_acked: usize,
    pub refused_stale_acks: usize,
    pub refused_other_writes: usize,
    pub unanswered_writes: usize,
    /// Accepted acks known only from Redis: the process was killed before it logged them.
    pub acks_confirmed_by_redis_only: usize,
    /// Acks redis kept that a live worker never logged as accepted (it saw them refused, or
    /// never sent them): the observer and redis disagree.
    pub unexplained_acks: usize,
    pub order_violations: usize,
    pub overlaps: usize,
    pub keys: usize,
    pub batch_mismatches: usize,
    pub batch_children_succeeded: u64,
    pub batch_children_failed: u64,
    pub batch_items: u64,
    pub finalize_runs_accepted: usize,
    pub engine_mismatches: usize,
    pub unplanned_tasks: usize,
    pub torn_lines: usize,
    pub problems: Vec<String>,
}

impl Verdict {
    /// True when nothing was lost, duplicated, reordered, overlapped or miscounted.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.wrong_outcome == 0
            && self.duplicates_acked == 0
            && self.unexplained_acks == 0
            && self.order_violations == 0
            && self.overlaps == 0
            && self.batch_mismatches == 0
            && self.engine_mismatches == 0
            && self.unplanned_tasks == 0
    }

    fn problem(&mut self, what: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }
}

/// One attempt as the record shows it.
#[derive(Debug, Clone, Default)]
struct Run {
    attempt: u32,
    start_us: u64,
    end: Option<(u64, bool)>,
    file: usize,
}

/// Final writes: the ones that end a task for good when accepted.
fn is_final_write(write: &str) -> bool {
    matches!(write, "ack" | "failed" | "dead" | "cancelled")
}

pub fn check(ev: &Evidence) -> Verdict {
    let mut v = Verdict {
        tasks: ev.planned.len(),
        ..Verdict::default()
    };
    // (id, token) -> run; id -> accepted final writes (token, write); id -> every run's key.
    let mut runs: HashMap<(String, String), Run> = HashMap::new();
    let mut accepted: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (fi, file) in ev.records.iter().enumerate() {
        v.torn_lines += file.torn;
        for line in &file.lines {
            match line {
                Line::Start {
                    id,
                    token,
                    attempt,
                    t_us,
                    ..
                } => {
                    v.runs_started += 1;
                    let r = runs.entry((id.clone(), token.clone())).or_default();
                    r.attempt = *attempt;
                    r.start_us = *t_us;
                    r.file = fi;
                }
                Line::End {
                    id,
                    token,
                    ok,
                    t_us,
                } => {
                    v.runs_completed += 1;
                    if let Some(r) = runs.get_mut(&(id.clone(), token.clone())) {
                        r.end = Some((*t_us, *ok));
                    }
                }
                Line::Write {
                    id,
                    token,
                    write,
                    outcome,
                    ..
                } => match outcome.as_str() {
                    "accepted" if is_final_write(write) => accepted
                        .entry(id.clone())
                        .or_default()
                        .push((token.clone(), write.clone())),
                    "refused" if write == "ack" => v.refused_stale_acks += 1,
                    "refused" => v.refused_other_writes += 1,
                    "unanswered" => v.unanswered_writes += 1,
                    _ => {}
                },
            }
        }
    }
    let mut runs_of: HashMap<&str, Vec<(&str, &Run)>> = HashMap::new();
    for ((id, token), r) in &runs {
        runs_of.entry(id).or_default().push((token, r));
    }
    let planned_ids: HashSet<&str> = ev.planned.iter().map(|p| p.id.as_str()).collect();
    v.unplanned_tasks = runs_of
        .keys()
        .filter(|id| !planned_ids.contains(*id))
        .count();
    if v.unplanned_tasks > 0 {
        v.problem(format!(
            "{} task ids in the record were never planned",
            v.unplanned_tasks
        ));
    }

    // Per task: its final state, its accepted run, duplicates.
    let mut accepted_run: HashMap<&str, &Run> = HashMap::new();
    for p in &ev.planned {
        let id = p.id.as_str();
        let mine = runs_of.get(id).map(Vec::as_slice).unwrap_or_default();
        let designed = p.spec.fail_first as usize + usize::from(p.spec.permanent);
        v.redeliveries += mine.len().saturating_sub(designed.max(1));
        let finals = accepted.get(id).map(Vec::as_slice).unwrap_or_default();
        if finals.len() > 1 {
            v.duplicates_acked += 1;
            v.problem(format!(
                "{id}: {} accepted final writes {finals:?}",
                finals.len()
            ));
        }
        let Some(fin) = ev.finals.get(id) else {
            v.lost += 1;
            v.problem(format!("{id} ({:?}): no record in redis", p.role));
            continue;
        };
        let want = if p.spec.permanent {
            "failed"
        } else {
            "succeeded"
        };
        if !matches!(
            fin.state.as_str(),
            "succeeded" | "failed" | "dead" | "cancelled"
        ) {
            v.lost += 1;
            v.problem(format!(
                "{id} ({:?}): never finished: {}",
                p.role, fin.state
            ));
            continue;
        }
        if fin.state != want {
            v.wrong_outcome += 1;
            v.problem(format!(
                "{id} ({:?}): ended {}, designed to end {want}",
                p.role, fin.state
            ));
            continue;
        }
        if want == "failed" {
            // The permanent failure must be a completed run past the designed retries.
            let ok = mine
                .iter()
                .any(|(_, r)| r.attempt > p.spec.fail_first && matches!(r.end, Some((_, false))));
            if !ok {
                v.lost += 1;
                v.problem(format!(
                    "{id}: failed in redis, but no failing run recorded"
                ));
            }
            continue;
        }
        let token = fin
            .result
            .as_ref()
            .and_then(|r| r.get("token"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some((_, run)) = mine.iter().find(|(t, _)| *t == token) else {
            v.lost += 1;
            v.problem(format!(
                "{id}: succeeded with token {token:?}, but no run of that token is recorded"
            ));
            continue;
        };
        if !matches!(run.end, Some((_, true))) {
            v.lost += 1;
            v.problem(format!(
                "{id}: the accepted run (token {token}) never completed in the record"
            ));
            continue;
        }
        match finals {
            [] if ev.records[run.file].killed => v.acks_confirmed_by_redis_only += 1,
            [] => {
                v.unexplained_acks += 1;
                v.problem(format!(
                    "{id}: redis kept token {token}'s ack, which its live worker never saw accepted"
                ));
            }
            [(t, w)] if t != token || w != "ack" => {
                v.duplicates_acked += 1;
                v.problem(format!(
                    "{id}: accepted {w} of token {t}, but redis kept token {token}'s result"
                ));
            }
            _ => {}
        }
        accepted_run.insert(id, run);
    }

    // Keys: accepted runs in sequence order, no attempt of n before n-1's accepted run ended.
    let mut by_key: BTreeMap<&str, Vec<(u32, &str)>> = BTreeMap::new();
    for p in ev.planned.iter().filter(|p| p.role == Role::Serial) {
        if let (Some(key), Some(seq)) = (&p.spec.key, p.spec.seq) {
            by_key.entry(key).or_default().push((seq, &p.id));
        }
    }
    v.keys = by_key.len();
    for (key, mut tasks) in by_key {
        tasks.sort_unstable();
        for pair in tasks.windows(2) {
            let [(_, prev), (seq, id)] = pair else {
                continue;
            };
            let (Some(a), Some(b)) = (accepted_run.get(prev), accepted_run.get(id)) else {
                continue;
            };
            if b.start_us < a.start_us {
                v.order_violations += 1;
                v.problem(format!(
                    "key {key}: seq {seq} started before seq {} did",
                    seq - 1
                ));
            }
            let prev_end = a.end.map_or(u64::MAX, |(t, _)| t);
            let early = runs_of
                .get(id)
                .map(|rs| rs.iter().filter(|(_, r)| r.start_us < prev_end).count())
                .unwrap_or(0);
            if early > 0 {
                v.overlaps += early;
                v.problem(format!(
                    "key {key}: {early} attempt(s) of seq {seq} started before seq {}'s accepted run ended",
                    seq - 1
                ));
            }
        }
    }

    check_batches(ev, &accepted_run, &mut v);
    check_engine(ev, &mut v);
    v
}

fn check_batches(ev: &Evidence, accepted_run: &HashMap<&str, &Run>, v: &mut Verdict) {
    for (bi, batch) in ev.batches.iter().enumerate() {
        let Some(b) = batch else {
            v.batch_mismatches += 1;
            v.problem(format!("batch {bi}: missing in redis"));
            continue;
        };
        let children: Vec<&Planned> = ev
            .planned
            .iter()
            .filter(|p| p.role == Role::Child(bi))
            .collect();
        let succeeded: Vec<&&Planned> = children
            .iter()
            .filter(|p| {
                ev.finals.get(&p.id).map(|f| f.state.as_str()) == Some("succeeded")
                    && accepted_run.contains_key(p.id.as_str())
            })
            .collect();
        let failed = children
            .iter()
            .filter(|p| ev.finals.get(&p.id).map(|f| f.state.as_str()) == Some("failed"))
            .count() as u64;
        let items: u64 = succeeded.iter().map(|p| p.spec.items).sum();
        v.batch_children_succeeded += succeeded.len() as u64;
        v.batch_children_failed += failed;
        v.batch_items += items;
        let mut expect = |what: &str, got: u64, want: u64| {
            if got != want {
                v.batch_mismatches += 1;
                v.problem(format!(
                    "batch {bi}: {what} is {got}, the record says {want}"
                ));
            }
        };
        expect("total_children", b.total_children, children.len() as u64);
        expect("children_done", b.children_done, children.len() as u64);
        expect(
            "children_succeeded",
            b.children_succeeded,
            succeeded.len() as u64,
        );
        expect("children_failed", b.children_failed, failed);
        expect("children_cancelled", b.children_cancelled, 0);
        expect("processed_items", b.processed_items, items);
        expect("success_count", b.success_count, items);
        if b.state != "completed" || b.finalize_state.as_deref() != Some("succeeded") {
            v.batch_mismatches += 1;
            v.problem(format!(
                "batch {bi}: state {} with finalize {:?}",
                b.state, b.finalize_state
            ));
        }
        let Some(fin) = ev.planned.iter().find(|p| p.role == Role::Finalize(bi)) else {
            v.batch_mismatches += 1;
            v.problem(format!("batch {bi}: no finalize task"));
            continue;
        };
        let Some(run) = accepted_run.get(fin.id.as_str()) else {
            continue; // counted as lost already
        };
        v.finalize_runs_accepted += 1;
        let result = ev.finals.get(&fin.id).and_then(|f| f.result.clone());
        if b.result != result {
            v.batch_mismatches += 1;
            v.problem(format!(
                "batch {bi}: result {:?} is not its finalize task's {result:?}",
                b.result
            ));
        }
        let seen = result
            .as_ref()
            .and_then(|r| r.get("children_done"))
            .and_then(Value::as_u64);
        if seen != Some(children.len() as u64) {
            v.batch_mismatches += 1;
            v.problem(format!(
                "batch {bi}: finalize saw {seen:?} children done of {}",
                children.len()
            ));
        }
        let last_child_end = children
            .iter()
            .filter_map(|p| accepted_run.get(p.id.as_str()))
            .filter_map(|r| r.end.map(|(t, _)| t))
            .max()
            .unwrap_or(0);
        if run.start_us < last_child_end {
            v.batch_mismatches += 1;
            v.problem(format!(
                "batch {bi}: finalize started before its last child ended"
            ));
        }
    }
}

fn check_engine(ev: &Evidence, v: &mut Verdict) {
    for q in &ev.queues {
        let mine = ev.planned.iter().filter(|p| p.queue == q.queue);
        let (mut ok, mut failed) = (0u64, 0u64);
        for p in mine {
            if p.spec.permanent {
                failed += 1;
            } else {
                ok += 1;
            }
        }
        let mut expect = |what: &str, got: u64, want: u64| {
            if got != want {
                v.engine_mismatches += 1;
                v.problem(format!(
                    "queue {}: {what} is {got}, expected {want}",
                    q.queue
                ));
            }
        };
        expect("queued", q.queued, 0);
        expect("scheduled", q.scheduled, 0);
        expect("running", q.running, 0);
        expect("busy keys", q.busy_keys, 0);
        expect("the succeeded counter", q.succeeded, ok);
        expect("the failed counter", q.failed, failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn start(id: &str, token: &str, attempt: u32, t: u64) -> Line {
        Line::Start {
            id: id.into(),
            token: token.into(),
            attempt,
            worker: "w".into(),
            kind: "serial".into(),
            key: None,
            seq: None,
            t_us: t,
        }
    }

    fn end(id: &str, token: &str, ok: bool, t: u64) -> Line {
        Line::End {
            id: id.into(),
            token: token.into(),
            ok,
            t_us: t,
        }
    }

    fn write(id: &str, token: &str, write: &str, outcome: &str) -> Line {
        Line::Write {
            id: id.into(),
            token: token.into(),
            write: write.into(),
            outcome: outcome.into(),
            t_us: 0,
        }
    }

    fn serial(id: &str, seq: u32) -> Planned {
        Planned {
            id: id.into(),
            queue: "s".into(),
            role: Role::Serial,
            spec: Spec {
                key: Some("k".into()),
                seq: Some(seq),
                ..Spec::default()
            },
        }
    }

    fn succeeded(token: &str) -> Final {
        Final {
            state: "succeeded".into(),
            result: Some(json!({ "token": token })),
        }
    }

    /// Two keyed tasks, each acked once, in order; the first also had a zombie attempt whose
    /// late ack was refused.
    fn clean_evidence() -> Evidence {
        let lines = vec![
            start("a", "1", 1, 100),
            end("a", "1", true, 200),
            start("a", "2", 2, 150),
            end("a", "2", true, 210),
            write("a", "2", "ack", "accepted"),
            write("a", "1", "ack", "refused"),
            start("b", "3", 1, 300),
            end("b", "3", true, 400),
            write("b", "3", "ack", "accepted"),
        ];
        Evidence {
            planned: vec![serial("a", 1), serial("b", 2)],
            finals: HashMap::from([("a".into(), succeeded("2")), ("b".into(), succeeded("3"))]),
            records: vec![RecordFile {
                name: "w0-0".into(),
                killed: false,
                lines,
                torn: 0,
            }],
            ..Evidence::default()
        }
    }

    #[test]
    fn a_clean_run_passes_and_counts_the_refused_ack() {
        let v = check(&clean_evidence());
        assert!(v.clean(), "{v:?}");
        assert_eq!(v.refused_stale_acks, 1);
        assert_eq!((v.tasks, v.runs_started, v.redeliveries), (2, 3, 1));
    }

    #[test]
    fn two_accepted_acks_are_a_duplicate() {
        let mut ev = clean_evidence();
        ev.records[0].lines[5] = write("a", "1", "ack", "accepted");
        let v = check(&ev);
        assert_eq!(v.duplicates_acked, 1, "{v:?}");
        assert!(!v.clean());
    }

    #[test]
    fn a_task_without_a_final_state_or_a_completed_run_is_lost() {
        let mut ev = clean_evidence();
        ev.finals.insert(
            "b".into(),
            Final {
                state: "queued".into(),
                result: None,
            },
        );
        assert_eq!(check(&ev).lost, 1);
        let mut ev = clean_evidence();
        ev.finals.insert("b".into(), succeeded("99"));
        assert_eq!(check(&ev).lost, 1, "redis kept a run nobody recorded");
    }

    #[test]
    fn a_later_sequence_starting_before_the_earlier_one_ended_is_an_overlap_and_out_of_order() {
        let mut ev = clean_evidence();
        ev.records[0].lines[6] = start("b", "3", 1, 120);
        let v = check(&ev);
        assert_eq!((v.order_violations, v.overlaps), (1, 1), "{v:?}");
        // Only overlapping the accepted run's end (not its start) is an overlap alone.
        let mut ev = clean_evidence();
        ev.records[0].lines[6] = start("b", "3", 1, 205);
        let v = check(&ev);
        assert_eq!((v.order_violations, v.overlaps), (0, 1), "{v:?}");
    }

    #[test]
    fn an_ack_lost_with_a_killed_process_is_confirmed_by_redis_but_not_by_a_live_one() {
        let mut ev = clean_evidence();
        ev.records[0].lines.pop();
        assert_eq!(check(&ev).unexplained_acks, 1, "a live worker must log it");
        ev.records[0].killed = true;
        let v = check(&ev);
        assert!(v.clean(), "{v:?}");
        assert_eq!(v.acks_confirmed_by_redis_only, 1);
    }

    #[test]
    fn batch_counters_must_match_the_record_and_finalize_must_follow_the_children() {
        let child = |id: &str, items| Planned {
            id: id.into(),
            queue: "b".into(),
            role: Role::Child(0),
            spec: Spec {
                items,
                ..Spec::default()
            },
        };
        let fin = Planned {
            id: "f".into(),
            queue: "b".into(),
            role: Role::Finalize(0),
            spec: Spec::default(),
        };
        let result = json!({ "token": "9", "children_done": 2 });
        let mut ev = Evidence {
            planned: vec![child("c1", 3), child("c2", 4), fin],
            finals: HashMap::from([
                ("c1".into(), succeeded("1")),
                ("c2".into(), succeeded("2")),
                (
                    "f".into(),
                    Final {
                        state: "succeeded".into(),
                        result: Some(result.clone()),
                    },
                ),
            ]),
            records: vec![RecordFile {
                name: "w".into(),
                killed: false,
                lines: vec![
                    start("c1", "1", 1, 1),
                    end("c1", "1", true, 2),
                    write("c1", "1", "ack", "accepted"),
                    start("c2", "2", 1, 1),
                    end("c2", "2", true, 3),
                    write("c2", "2", "ack", "accepted"),
                    start("f", "9", 1, 4),
                    end("f", "9", true, 5),
                    write("f", "9", "ack", "accepted"),
                ],
                torn: 0,
            }],
            batches: vec![Some(BatchFinal {
                state: "completed".into(),
                total_children: 2,
                children_done: 2,
                children_succeeded: 2,
                processed_items: 7,
                success_count: 7,
                finalize_state: Some("succeeded".into()),
                result: Some(result),
                ..BatchFinal::default()
            })],
            ..Evidence::default()
        };
        let v = check(&ev);
        assert!(v.clean(), "{v:?}");
        assert_eq!((v.batch_items, v.finalize_runs_accepted), (7, 1));
        if let Some(b) = ev.batches[0].as_mut() {
            b.processed_items = 10;
        }
        ev.records[0].lines[6] = start("f", "9", 1, 2);
        let v = check(&ev);
        assert_eq!(v.batch_mismatches, 2, "{:?}", v.problems);
    }
}
