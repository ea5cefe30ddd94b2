//! Read-mostly queries for operators (the broker's API, dashboard and `/metrics`): liveness,
//! whether a queue exists, many queues' stats in one round trip, what waits next, newest dead
//! letters. Key names come from [`crate::keys`] only; every call is one round trip.

use std::collections::HashMap;

use crate::client::{Lanes, QueueStats};
use crate::error::Result;
use crate::task::{TaskId, validate_queue};

/// Task ids waiting on one queue, in the order they will run.
#[derive(Debug, Clone, Default)]
pub struct Waiting {
    /// Ready tasks, next one first (priority, then FIFO).
    pub queued: Vec<TaskId>,
    /// Scheduled and retrying tasks, earliest run-at first.
    pub scheduled: Vec<TaskId>,
}

impl Lanes {
    /// Round trip to Redis (`PING`); errors when it does not answer.
    pub async fn ping(&self) -> Result<()> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// True when the queue has seen a task (it is listed by [`Lanes::queues`]).
    pub async fn queue_exists(&self, queue: &str) -> Result<bool> {
        validate_queue(queue)?;
        let found: bool = redis::cmd("SISMEMBER")
            .arg(self.keys().queues())
            .arg(queue)
            .query_async(&mut self.connection())
            .await?;
        Ok(found)
    }

    /// Depths and counters of many queues, in one pipelined round trip, in the given order.
    pub async fn queue_stats_many(&self, queues: &[String]) -> Result<Vec<QueueStats>> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for q in queues {
            validate_queue(q)?;
            let k = self.keys().queue(q);
            pipe.zcard(&k.ready)
                .zcard(&k.delayed)
                .zcard(&k.leased)
                .zcard(&k.dead)
                .hgetall(&k.stats);
        }
        type Row = (u64, u64, u64, u64, HashMap<String, i64>);
        let rows: Vec<Row> = pipe.query_async(&mut self.connection()).await?;
        Ok(queues
            .iter()
            .zip(rows)
            .map(|(q, (ready, scheduled, running, dead, raw))| {
                QueueStats::from_parts(q, ready, scheduled, running, dead, raw)
            })
            .collect())
    }

    /// Up to `limit` queued and up to `limit` scheduled task ids of each queue, in run order,
    /// in one pipelined round trip.
    pub async fn waiting_many(&self, queues: &[String], limit: usize) -> Result<Vec<Waiting>> {
        if queues.is_empty() || limit == 0 {
            return Ok(vec![Waiting::default(); queues.len()]);
        }
        let last = limit - 1;
        let mut pipe = redis::pipe();
        for q in queues {
            validate_queue(q)?;
            let k = self.keys().queue(q);
            pipe.cmd("ZRANGE").arg(&k.ready).arg(0).arg(last);
            pipe.cmd("ZRANGE").arg(&k.delayed).arg(0).arg(last);
        }
        let rows: Vec<Vec<String>> = pipe.query_async(&mut self.connection()).await?;
        let parse = |v: Vec<String>| v.into_iter().filter_map(|s| s.parse().ok()).collect();
        let mut rows = rows.into_iter();
        let mut out = Vec::with_capacity(queues.len());
        while let (Some(queued), Some(scheduled)) = (rows.next(), rows.next()) {
            out.push(Waiting {
                queued: parse(queued),
                scheduled: parse(scheduled),
            });
        }
        Ok(out)
    }

    /// The newest `limit` dead-lettered task ids of each queue (newest first), in one pipelined
    /// round trip.
    pub async fn dead_ids_many(&self, queues: &[String], limit: usize) -> Result<Vec<TaskId>> {
        if queues.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for q in queues {
            validate_queue(q)?;
            pipe.cmd("ZRANGE")
                .arg(self.keys().queue(q).dead)
                .arg(0)
                .arg(limit - 1)
                .arg("REV");
        }
        let rows: Vec<Vec<String>> = pipe.query_async(&mut self.connection()).await?;
        Ok(rows
            .into_iter()
            .flatten()
            .filter_map(|s| s.parse().ok())
            .collect())
    }
}
