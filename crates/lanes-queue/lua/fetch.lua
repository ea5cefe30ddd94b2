-- Lease up to n tasks to a worker, promoting due delayed tasks first.
-- KEYS: ready, delayed, leased, seq, signal
-- ARGV: task key prefix, n, worker id, lease_ms
-- Returns {now, next_due_ms or -1, then 10 fields per task (see lease_tasks)}
local ready, delayed, leased, seq, signal = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local prefix, n, worker, lease_ms = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local now = now_ms()
promote_due(ready, delayed, prefix, now)
local out = {now, -1}
lease_tasks(ready, delayed, leased, seq, signal, prefix, n, worker, lease_ms, now, out, true)
return out
