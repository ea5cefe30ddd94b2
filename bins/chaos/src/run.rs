//! `chaos run`: the controller. It owns a `redis-server` and N chaos worker processes, enqueues
//! the mixed workload in waves while it SIGKILLs and restarts random workers, freezes one worker
//! past its lease (a zombie) and freezes Redis, then waits for the queues to drain, stops the
//! workers and hands the record files and the engine's final state to the checker.
//!
//! Everything is bounded: the schedule fits in `window`, draining in `deadline`; a watchdog
//! thread ends the process (and with it, by parent-death signal, every child) if even that
//! fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lanes_queue::{BatchId, BatchSpec, KeyPolicy, Lanes, NewTask};
use serde::Serialize;
use serde_json::json;

use crate::check::{self, BatchFinal, Evidence, Final, Planned, QueueFinal, RecordFile, Role};
use crate::procs::{Launcher, Redis, WorkerProc};
use crate::record;
use crate::worker::engine_config;
use crate::workload::{
    self, BATCH_QUEUE, CHILD_KIND, FINALIZE_KIND, GEN_KIND, GEN_QUEUE, QUEUES, SEQS_PER_KEY,
    SERIAL_KIND, SERIAL_QUEUE, Shape, Spec,
};

/// How a campaign runs.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The chaos binary (worker processes are `EXE worker ...`).
    pub exe: PathBuf,
    /// Where records, logs and `chaos.json` go.
    pub out: PathBuf,
    pub tasks: usize,
    pub workers: usize,
    pub concurrency: usize,
    pub lease: Duration,
    pub kills: usize,
    pub zombie: bool,
    pub redis_pauses: usize,
    pub redis_pause: Duration,
    /// The last Redis pause lasts this long instead (zero: like the others). Longer than the
    /// engine's response timeout (5 s), it makes writes whose reply is lost but which Redis runs.
    pub long_redis_pause: Duration,
    /// The enqueueing and the chaos happen within this window.
    pub window: Duration,
    /// Everything (the window, draining, stopping) must end within this.
    pub deadline: Duration,
    pub seed: u64,
}

/// What a campaign did and found.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub passed: bool,
    pub shape: Shape,
    pub tasks: usize,
    pub kills: usize,
    pub zombie_pauses: usize,
    /// Ack and failure writes of the zombie refused by fencing after it was resumed.
    pub zombie_refused_writes: usize,
    pub redis_pauses: usize,
    /// Length of each Redis pause, and of the last one when it is longer.
    pub redis_pause_s: f64,
    pub long_redis_pause_s: f64,
    pub worker_crashes: usize,
    pub drained: bool,
    pub wall_s: f64,
    pub seed: u64,
    pub bound_problems: Vec<String>,
    pub verdict: check::Verdict,
}

/// What the controller does at a moment of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Enqueue(usize),
    Kill,
    ZombieStop,
    ZombieResume,
    RedisPause(usize),
}

/// Runs a whole campaign and writes `out/chaos.json`. `Err` only for failures to run it at all;
/// a campaign that found problems returns a report with `passed: false`.
pub async fn run(s: RunSettings) -> anyhow::Result<RunReport> {
    let began = Instant::now();
    let hard_stop = s.deadline + Duration::from_secs(60);
    watchdog(hard_stop);
    let dir = s.out.join("run");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clear {}", dir.display()))?;
    }
    let (records, logs) = (dir.join("records"), dir.join("logs"));
    std::fs::create_dir_all(&records)?;
    std::fs::create_dir_all(&logs)?;
    let redis = Redis::start(&dir.join("redis"))?;
    let prefix = "chaos";
    let lanes = Lanes::connect(redis.url(), engine_config(prefix, s.lease))
        .await
        .context("connect to the campaign's redis")?;
    let launcher = Launcher {
        exe: s.exe.clone(),
        redis_url: redis.url().to_owned(),
        prefix: prefix.to_owned(),
        lease: s.lease,
        concurrency: s.concurrency,
        records,
        logs,
    };
    let mut fleet = Fleet {
        launcher,
        procs: Vec::new(),
        files: Vec::new(),
        incarnations: vec![0; s.workers],
        crashes: 0,
    };
    for slot in 0..s.workers {
        fleet.start(slot)?;
    }

    let shape = Shape::of(s.tasks);
    let mut producer = Producer::new(shape, s.seed);
    let waves = ((s.window.as_millis() * 8 / 10) / 250).max(4) as usize;
    let mut schedule = Vec::new();
    for w in 0..waves {
        schedule.push((
            s.window * 8 / 10 * w as u32 / waves as u32,
            Event::Enqueue(w),
        ));
    }
    for k in 0..s.kills {
        // While work is still arriving, so every kill can hit tasks in flight.
        let at = s
            .window
            .mul_f64(0.05 + 0.75 * (k as f64 + 0.5) / s.kills.max(1) as f64);
        schedule.push((at, Event::Kill));
    }
    let zombie_for = s.lease * 2 + Duration::from_secs(1);
    if s.zombie {
        schedule.push((s.window.mul_f64(0.3), Event::ZombieStop));
        schedule.push((s.window.mul_f64(0.3) + zombie_for, Event::ZombieResume));
    }
    for p in 0..s.redis_pauses {
        let at = s
            .window
            .mul_f64(0.45 + 0.3 * p as f64 / s.redis_pauses.max(1) as f64);
        schedule.push((at, Event::RedisPause(p)));
    }
    schedule.sort();

    let mut rng = workload::rng(s.seed ^ 0x5eed);
    let mut kills = 0;
    // The frozen worker's slot while it is frozen, and its record file's index.
    let (mut frozen, mut zombie_file): (Option<usize>, Option<usize>) = (None, None);
    let (mut zombie_pauses, mut redis_pauses) = (0, 0);
    let mut bound_problems = Vec::new();
    for (at, event) in schedule {
        if began.elapsed() > s.deadline {
            bound_problems.push(format!(
                "deadline of {:?} passed during the schedule",
                s.deadline
            ));
            break;
        }
        let now = began.elapsed();
        if at > now {
            tokio::time::sleep(at - now).await;
        }
        fleet.restart_crashed()?;
        match event {
            Event::Enqueue(w) => producer.wave(&lanes, w, waves).await?,
            Event::Kill => {
                let live: Vec<usize> = (0..s.workers)
                    .filter(|slot| frozen != Some(*slot))
                    .collect();
                if let Some(&slot) = live.get(rng.usize(0..live.len().max(1))) {
                    fleet.kill(slot)?;
                    fleet.start(slot)?;
                    kills += 1;
                }
            }
            Event::ZombieStop => {
                let slot = rng.usize(0..s.workers);
                if let Some(p) = &fleet.procs[slot] {
                    p.signal(libc::SIGSTOP);
                    frozen = Some(slot);
                    zombie_file = fleet.file_index(slot);
                    zombie_pauses += 1;
                }
            }
            Event::ZombieResume => {
                if let Some(slot) = frozen.take()
                    && let Some(p) = &fleet.procs[slot]
                {
                    p.signal(libc::SIGCONT);
                }
            }
            Event::RedisPause(p) => {
                let last = p + 1 == s.redis_pauses;
                let pause = if last && !s.long_redis_pause.is_zero() {
                    s.long_redis_pause
                } else {
                    s.redis_pause
                };
                redis.pause();
                tokio::time::sleep(pause).await;
                redis.resume();
                redis_pauses += 1;
            }
        }
    }
    // Finish enqueueing anything a late schedule left (never more than the plan).
    producer.rest(&lanes, waves).await?;

    // Drain: every queue empty, nothing scheduled or running.
    let mut drained = false;
    while began.elapsed() < s.deadline {
        fleet.restart_crashed()?;
        if idle(&lanes).await.unwrap_or(false) {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !drained {
        bound_problems.push(format!(
            "the queues did not drain within the deadline of {:?}",
            s.deadline
        ));
    }
    fleet.stop_all();

    let evidence = gather(&lanes, &producer, &fleet.files).await?;
    let verdict = check::check(&evidence);
    let zombie_refused_writes = zombie_file
        .and_then(|file| evidence.records.get(file))
        .map_or(0, |f| {
            f.lines
                .iter()
                .filter(
                    |l| matches!(l, record::Line::Write { outcome, .. } if outcome == "refused"),
                )
                .count()
        });
    if kills < s.kills {
        bound_problems.push(format!("{kills} kills of {} planned", s.kills));
    }
    if redis_pauses < s.redis_pauses || (s.zombie && zombie_pauses == 0) {
        bound_problems.push("a planned pause did not happen".into());
    }
    if fleet.crashes > 0 {
        bound_problems.push(format!("{} worker processes crashed", fleet.crashes));
    }
    if began.elapsed() > s.deadline {
        bound_problems.push(format!("took longer than the deadline of {:?}", s.deadline));
    }
    let report = RunReport {
        passed: verdict.clean() && bound_problems.is_empty(),
        shape,
        tasks: verdict.tasks,
        kills,
        zombie_pauses,
        zombie_refused_writes,
        redis_pauses,
        redis_pause_s: s.redis_pause.as_secs_f64(),
        long_redis_pause_s: s.long_redis_pause.as_secs_f64(),
        worker_crashes: fleet.crashes,
        drained,
        wall_s: began.elapsed().as_secs_f64(),
        seed: s.seed,
        bound_problems,
        verdict,
    };
    std::fs::write(
        s.out.join("chaos.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    drop(redis);
    Ok(report)
}

/// Ends the process if the campaign overruns its hard stop, whatever it is blocked on.
fn watchdog(after: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        eprintln!("chaos: still running {after:?} after the start; giving up");
        std::process::exit(3);
    });
}

struct Fleet {
    launcher: Launcher,
    procs: Vec<Option<WorkerProc>>,
    /// Every incarnation's record: path and whether it was SIGKILLed.
    files: Vec<(PathBuf, bool)>,
    incarnations: Vec<usize>,
    crashes: usize,
}

impl Fleet {
    fn start(&mut self, slot: usize) -> anyhow::Result<()> {
        let n = self.incarnations[slot];
        self.incarnations[slot] += 1;
        let p = self.launcher.spawn(slot, n)?;
        self.files.push((p.record.clone(), false));
        if self.procs.len() <= slot {
            self.procs.resize_with(slot + 1, || None);
        }
        self.procs[slot] = Some(p);
        Ok(())
    }

    /// The index of the slot's current record file.
    fn file_index(&self, slot: usize) -> Option<usize> {
        let p = self.procs.get(slot)?.as_ref()?;
        self.files.iter().position(|(path, _)| *path == p.record)
    }

    fn mark_killed(&mut self, record: &Path) {
        if let Some(f) = self.files.iter_mut().find(|(p, _)| p == record) {
            f.1 = true;
        }
    }

    fn kill(&mut self, slot: usize) -> anyhow::Result<()> {
        if let Some(p) = self.procs[slot].take() {
            let record = p.record.clone();
            p.kill()?;
            self.mark_killed(&record);
        }
        Ok(())
    }

    /// A worker that exited by itself crashed: count it, keep its record, start a new one.
    fn restart_crashed(&mut self) -> anyhow::Result<()> {
        for slot in 0..self.procs.len() {
            let crashed = self.procs[slot].as_mut().and_then(|p| p.exited()).is_some();
            if crashed {
                if let Some(p) = self.procs[slot].take() {
                    eprintln!(
                        "chaos: worker w{}-{} exited by itself (see its log)",
                        p.slot, p.incarnation
                    );
                    // Its last ack may be unlogged, like a killed one's.
                    self.mark_killed(&p.record.clone());
                }
                self.crashes += 1;
                self.start(slot)?;
            }
        }
        Ok(())
    }

    fn stop_all(&mut self) {
        let procs: Vec<WorkerProc> = self.procs.iter_mut().filter_map(Option::take).collect();
        // A process restarted a moment ago may not have installed its SIGTERM handler yet.
        if let Some(youngest) = procs.iter().map(WorkerProc::age).min() {
            std::thread::sleep(Duration::from_secs(2).saturating_sub(youngest));
        }
        // All drain at once; then each gets its grace.
        for p in &procs {
            p.signal(libc::SIGCONT);
            p.signal(libc::SIGTERM);
        }
        for p in procs {
            let record = p.record.clone();
            if !p.stop(Duration::from_secs(10)) {
                eprintln!("chaos: {} did not stop cleanly", record.display());
                self.mark_killed(&record);
            }
        }
    }
}

/// Enqueues the plan in waves and remembers every task it enqueued.
struct Producer {
    shape: Shape,
    rng: fastrand::Rng,
    next_n: u64,
    generic_done: usize,
    serial_done: usize,
    batches_done: usize,
    planned: Vec<Planned>,
    batches: Vec<BatchId>,
}

impl Producer {
    fn new(shape: Shape, seed: u64) -> Self {
        Self {
            shape,
            rng: workload::rng(seed),
            next_n: 0,
            generic_done: 0,
            serial_done: 0,
            batches_done: 0,
            planned: Vec::new(),
            batches: Vec::new(),
        }
    }

    fn n(&mut self) -> u64 {
        self.next_n += 1;
        self.next_n
    }

    /// Enqueues wave `w` of `waves`: its share of generic and keyed tasks (keyed ones seq-major,
    /// so every key's sequence is enqueued in order) and the batches due by then.
    async fn wave(&mut self, lanes: &Lanes, w: usize, waves: usize) -> anyhow::Result<()> {
        let upto = |total: usize| total * (w + 1) / waves;
        let generic_to = upto(self.shape.generic);
        let mut tasks = Vec::new();
        let mut specs = Vec::new();
        while self.generic_done < generic_to {
            let n = self.n();
            let spec = workload::generic(n, &mut self.rng);
            tasks.push(NewTask::new(GEN_KIND, json!(spec)));
            specs.push(spec);
            self.generic_done += 1;
        }
        self.enqueue(lanes, GEN_QUEUE, tasks, specs, Role::Generic)
            .await?;
        let serial_to = upto(self.shape.serial);
        let (mut tasks, mut specs) = (Vec::new(), Vec::new());
        while self.serial_done < serial_to {
            let i = self.serial_done;
            let key = format!("k{}", i % self.shape.keys);
            let seq = (i / self.shape.keys) as u32 + 1;
            debug_assert!(seq <= SEQS_PER_KEY);
            let n = self.n();
            let spec = workload::serial(n, &key, seq, &mut self.rng);
            tasks.push(NewTask::new(SERIAL_KIND, json!(spec)).key(key, KeyPolicy::Serial));
            specs.push(spec);
            self.serial_done += 1;
        }
        self.enqueue(lanes, SERIAL_QUEUE, tasks, specs, Role::Serial)
            .await?;
        while self.batches_done < upto(self.shape.batches) {
            self.batch(lanes).await?;
        }
        Ok(())
    }

    /// Whatever the waves did not enqueue yet.
    async fn rest(&mut self, lanes: &Lanes, waves: usize) -> anyhow::Result<()> {
        self.wave(lanes, waves - 1, waves).await
    }

    async fn enqueue(
        &mut self,
        lanes: &Lanes,
        queue: &str,
        tasks: Vec<NewTask>,
        specs: Vec<Spec>,
        role: Role,
    ) -> anyhow::Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let ids = lanes
            .enqueue_bulk(queue, tasks)
            .await
            .with_context(|| format!("enqueue on {queue}"))?;
        for (id, spec) in ids.into_iter().zip(specs) {
            self.planned.push(Planned {
                id: id.to_string(),
                queue: queue.to_owned(),
                role: role.clone(),
                spec,
            });
        }
        Ok(())
    }

    async fn batch(&mut self, lanes: &Lanes) -> anyhow::Result<()> {
        let bi = self.batches_done;
        let size = self.shape.children * (bi + 1) / self.shape.batches
            - self.shape.children * bi / self.shape.batches;
        let specs: Vec<Spec> = (0..size)
            .map(|_| {
                let n = self.n();
                workload::child(n, &mut self.rng)
            })
            .collect();
        let children = specs
            .iter()
            .map(|s| NewTask::new(CHILD_KIND, json!(s)))
            .collect();
        let fin_spec = Spec {
            n: self.n(),
            ..Spec::default()
        };
        let spec = BatchSpec::new(children)
            .total_items(specs.iter().map(|s| s.items).sum())
            .finalize(NewTask::new(FINALIZE_KIND, json!(fin_spec)));
        let bid = lanes
            .create_batch(BATCH_QUEUE, spec)
            .await
            .context("create a batch")?;
        let info = lanes
            .batch(&bid)
            .await?
            .with_context(|| format!("batch {bid} vanished after creation"))?;
        if info.children.len() != specs.len() {
            bail!(
                "batch {bid} has {} children, {} were sent",
                info.children.len(),
                specs.len()
            );
        }
        for (id, spec) in info.children.iter().zip(specs) {
            self.planned.push(Planned {
                id: id.to_string(),
                queue: BATCH_QUEUE.to_owned(),
                role: Role::Child(bi),
                spec,
            });
        }
        let fin = info
            .finalize_task
            .with_context(|| format!("batch {bid} has no finalize task"))?;
        self.planned.push(Planned {
            id: fin.to_string(),
            queue: BATCH_QUEUE.to_owned(),
            role: Role::Finalize(bi),
            spec: fin_spec,
        });
        self.batches.push(bid);
        self.batches_done += 1;
        Ok(())
    }
}

async fn idle(lanes: &Lanes) -> anyhow::Result<bool> {
    for q in QUEUES {
        let st = lanes.queue_stats(q).await?;
        if st.queued + st.scheduled + st.running > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads the engine's final state of everything planned, and every record file.
async fn gather(
    lanes: &Lanes,
    producer: &Producer,
    files: &[(PathBuf, bool)],
) -> anyhow::Result<Evidence> {
    let mut finals = HashMap::new();
    let ids: Vec<lanes_queue::TaskId> = producer
        .planned
        .iter()
        .map(|p| p.id.parse())
        .collect::<Result<_, _>>()?;
    for chunk in ids.chunks(1000) {
        for t in lanes.tasks(chunk).await? {
            finals.insert(
                t.id.to_string(),
                Final {
                    state: t.state.as_str().to_owned(),
                    result: t.result,
                },
            );
        }
    }
    let mut batches = Vec::new();
    for bid in &producer.batches {
        batches.push(lanes.batch(bid).await?.map(|b| BatchFinal {
            state: b.state.as_str().to_owned(),
            total_children: b.total_children,
            children_done: b.children_done,
            children_succeeded: b.children_succeeded,
            children_failed: b.children_failed,
            children_cancelled: b.children_cancelled,
            processed_items: b.processed_items,
            success_count: b.success_count,
            finalize_state: b.finalize_state.map(|s| s.as_str().to_owned()),
            result: b.result,
        }));
    }
    let mut queues = Vec::new();
    for q in QUEUES {
        let st = lanes.queue_stats(q).await?;
        let c = |name: &str| st.counters.get(name).copied().unwrap_or(0);
        queues.push(QueueFinal {
            queue: q.to_owned(),
            queued: st.queued,
            scheduled: st.scheduled,
            running: st.running,
            succeeded: c("succeeded"),
            failed: c("failed"),
            busy_keys: lanes.keys_status(q).await?.len() as u64,
        });
    }
    let mut records = Vec::new();
    for (path, killed) in files {
        let (lines, torn) = if path.exists() {
            record::read(path).with_context(|| format!("read {}", path.display()))?
        } else {
            (Vec::new(), 0)
        };
        records.push(RecordFile {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            killed: *killed,
            lines,
            torn,
        });
    }
    Ok(Evidence {
        planned: producer.planned.clone(),
        finals,
        batches,
        queues,
        records,
    })
}

/// The figures as a table.
pub fn table(r: &RunReport) -> String {
    let v = &r.verdict;
    let rows: Vec<(&str, String)> = vec![
        (
            "tasks",
            format!(
                "{} (generic {}, keyed {} on {} keys, batch children {} in {} batches + {} finalize)",
                r.tasks,
                r.shape.generic,
                r.shape.serial,
                r.shape.keys,
                r.shape.children,
                r.shape.batches,
                r.shape.batches
            ),
        ),
        (
            "runs",
            format!(
                "{} started, {} completed, {} redeliveries beyond the designed retries",
                v.runs_started, v.runs_completed, v.redeliveries
            ),
        ),
        ("kills (SIGKILL + restart)", r.kills.to_string()),
        (
            "zombie pauses",
            format!(
                "{} (its refused writes after resuming: {})",
                r.zombie_pauses, r.zombie_refused_writes
            ),
        ),
        (
            "redis pauses",
            if r.long_redis_pause_s > 0.0 {
                format!(
                    "{} ({:.0} s; the last {:.0} s, past the 5 s response timeout)",
                    r.redis_pauses, r.redis_pause_s, r.long_redis_pause_s
                )
            } else {
                format!("{} ({:.0} s each)", r.redis_pauses, r.redis_pause_s)
            },
        ),
        ("lost", v.lost.to_string()),
        ("wrong final state", v.wrong_outcome.to_string()),
        ("duplicates acked", v.duplicates_acked.to_string()),
        ("refused stale acks", v.refused_stale_acks.to_string()),
        ("refused other writes", v.refused_other_writes.to_string()),
        (
            "acks logged by redis only",
            format!(
                "{} (sender killed before logging); unexplained: {}",
                v.acks_confirmed_by_redis_only, v.unexplained_acks
            ),
        ),
        ("order violations", v.order_violations.to_string()),
        ("overlaps", format!("{} (over {} keys)", v.overlaps, v.keys)),
        (
            "batch counters",
            format!(
                "children succeeded {}, failed {}, items {}, finalize runs {}; mismatches {}",
                v.batch_children_succeeded,
                v.batch_children_failed,
                v.batch_items,
                v.finalize_runs_accepted,
                v.batch_mismatches
            ),
        ),
        ("engine state mismatches", v.engine_mismatches.to_string()),
        ("torn record lines", v.torn_lines.to_string()),
        ("wall time", format!("{:.1} s", r.wall_s)),
        ("result", if r.passed { "PASS" } else { "FAIL" }.to_owned()),
    ];
    let mut out = String::from("chaos run\n");
    for (k, val) in rows {
        out.push_str(&format!("  {k:<28} {val}\n"));
    }
    for p in r.bound_problems.iter().chain(&v.problems) {
        out.push_str(&format!("  ! {p}\n"));
    }
    out
}
