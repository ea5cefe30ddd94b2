// The Lanes dashboard: follows the broker's /api/events stream (read with fetch so the API
// token can travel in a header), renders each snapshot, and sends the action buttons' requests.
// Every value from the server is put in the page as text (never as HTML).
"use strict";

(() => {
  const TOKEN_KEY = "lanes.apiToken";
  const HISTORY = 60; // samples kept per sparkline (about a minute)
  const MAX_TASKS_PER_WORKER = 5; // running tasks listed under each worker
  const MAX_ROWS = 12; // rows of the waiting and dead-letter tables

  const state = {
    snap: null,
    receivedAt: 0,
    rates: new Map(), // queue -> [succeeded/s]
    total: [],
    confirming: new Map(), // action key -> expiry (ms)
    busy: new Set(), // action keys in flight
  };

  // ---- small DOM helpers -------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function fill(target, nodes) {
    target.replaceChildren(...[nodes].flat().filter(Boolean));
  }

  const nf = new Intl.NumberFormat();
  const fmt = (n) => (n === undefined || n === null ? "–" : nf.format(n));

  function rate(n) {
    if (n === undefined || n === null) return "–";
    if (n === 0) return "0";
    if (n < 10) return n.toFixed(1);
    return nf.format(Math.round(n));
  }

  function dur(ms) {
    // Rounded once, at the unit shown, so 3599.7 s reads "1h 0m", never "59m 60s".
    ms = Math.max(0, ms);
    if (ms < 999.5) return `${Math.round(ms)}ms`;
    if (ms < 9950) return `${(ms / 1000).toFixed(1)}s`;
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    const m = Math.round(s / 60);
    if (m < 48 * 60) return `${Math.floor(m / 60)}h ${m % 60}m`;
    const h = Math.round(m / 60);
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  /** Broker-clock "now": the snapshot's time plus what passed here since it arrived. */
  const now = () => (state.snap ? state.snap.at_ms + (Date.now() - state.receivedAt) : Date.now());
  const ago = (ms) => (ms ? `${dur(now() - ms)} ago` : "–");
  const shortId = (id) => {
    const dot = id.indexOf(".");
    return dot < 0 ? id : `${id.slice(0, dot + 1)}…${id.slice(-8)}`;
  };

  function badge(s) {
    return el("span", { class: `badge ${s}`, text: s });
  }

  function empty(title, hint) {
    return el("div", { class: "empty" }, el("strong", { text: title }), hint ? el("span", { text: hint }) : null);
  }

  function emptyRow(cols, title, hint) {
    return el("tr", {}, el("td", { colspan: cols }, empty(title, hint)));
  }

  function sparkline(target, values) {
    target.replaceChildren();
    if (values.length < 2) return;
    const w = 120;
    const h = 32;
    const max = Math.max(...values, 0.0001);
    // Fill from the right; until 20 samples exist, stretch them over the whole width.
    const span = Math.min(HISTORY, Math.max(values.length, 20));
    const step = w / (span - 1);
    const x0 = w - step * (values.length - 1);
    const pts = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
    target.append(svg("polygon", { points: `${x0.toFixed(1)},${h} ${pts.join(" ")} ${w},${h}` }));
    target.append(svg("polyline", { points: pts.join(" ") }));
  }

  function meter(fraction, extra) {
    const fillEl = el("div", { class: `meter-fill ${extra || ""}` });
    fillEl.style.width = `${Math.min(100, Math.max(0, fraction * 100)).toFixed(1)}%`;
    return el("div", { class: "meter" }, fillEl);
  }

  // ---- token, toasts, actions ----------------------------------------------------------------

  const token = () => localStorage.getItem(TOKEN_KEY) || "";

  function authHeaders() {
    const t = token();
    return t ? { Authorization: `Bearer ${t}` } : {};
  }

  function toast(message, bad) {
    const t = el("div", { class: `toast${bad ? " bad" : ""}`, text: message });
    $("toasts").append(t);
    setTimeout(() => t.remove(), bad ? 6000 : 3500);
  }

  /**
   * A button that needs a second click within 3 s to act (for destructive actions); its state
   * survives re-renders because it lives in `state.confirming`, keyed by action.
   */
  function actionButton(key, label, confirmLabel, run, danger) {
    const confirming = (state.confirming.get(key) || 0) > Date.now();
    const busy = state.busy.has(key);
    const cls = confirming ? "btn btn-confirm" : `btn${danger ? " btn-danger" : ""}`;
    return el("button", {
      class: cls,
      type: "button",
      "data-action": key,
      disabled: busy,
      text: busy ? "…" : confirming ? confirmLabel : label,
      onclick: async () => {
        if (confirmLabel && !confirming) {
          state.confirming.set(key, Date.now() + 3000);
          render();
          setTimeout(render, 3100);
          return;
        }
        state.confirming.delete(key);
        state.busy.add(key);
        render();
        try {
          await run();
        } finally {
          state.busy.delete(key);
          render();
        }
      },
    });
  }

  async function act(method, url, done) {
    try {
      const resp = await fetch(url, { method, headers: authHeaders() });
      const body = await resp.json().catch(() => ({}));
      if (resp.ok) {
        toast(done(body));
      } else if (resp.status === 401) {
        toast(`${body.message || "Unauthorized"}. Set the API token at the top right.`, true);
      } else {
        toast(body.message || `${method} failed: HTTP ${resp.status}`, true);
      }
    } catch (e) {
      toast(`Request failed: ${e.message}`, true);
    }
  }

  const cancelTask = (id) =>
    act("DELETE", `/api/tasks/${encodeURIComponent(id)}`, (b) =>
      b.outcome === "stopping" ? `Stopping ${shortId(id)}…` : `Cancelled ${shortId(id)}`);
  const requeueTask = (id) =>
    act("POST", `/api/tasks/${encodeURIComponent(id)}/requeue`, () => `Re-queued ${shortId(id)}`);

  // ---- rendering -------------------------------------------------------------------------------

  function renderKpis(s) {
    const t = s.totals;
    $("k-queued").textContent = fmt(t.queued);
    $("k-scheduled").textContent = fmt(t.scheduled);
    $("k-running").textContent = fmt(t.running);
    $("k-dead").textContent = fmt(t.dead);
    $("k-rate").textContent = rate(t.succeeded_per_s);
    $("k-workers").textContent = fmt(t.workers);
    $("k-slots").textContent = `${fmt(t.busy_slots)} of ${fmt(t.slots)} slots busy`;
    const bar = $("k-slots-bar");
    bar.style.width = `${t.slots ? Math.min(100, (100 * t.busy_slots) / t.slots) : 0}%`;
    bar.classList.toggle("full", t.slots > 0 && t.busy_slots >= t.slots);
    sparkline($("k-spark"), state.total);
  }

  function stackBar(q, max) {
    const bar = el("div", { class: "stack", title: `${q.queued} queued · ${q.scheduled} scheduled · ${q.running} running · ${q.dead} dead` });
    for (const part of ["running", "queued", "scheduled", "dead"]) {
      if (!q[part]) continue;
      const seg = el("span", { class: part });
      seg.style.width = `${Math.max(1.5, (100 * q[part]) / max)}%`;
      bar.append(seg);
    }
    return bar;
  }

  function renderQueues(s) {
    const body = $("queues");
    if (!s.queues.length) {
      fill(body, emptyRow(11, "No queues yet", "POST /api/queues/{queue}/tasks to enqueue the first task."));
      return;
    }
    const max = Math.max(1, ...s.queues.map((q) => q.queued + q.scheduled + q.running + q.dead));
    const c = (q, k) => (q.counters && q.counters[k]) || 0;
    const num = (v, col) => el("td", { class: `num${v ? "" : " zero"}`, "data-col": col, text: fmt(v) });
    fill(
      body,
      s.queues.map((q) => {
        const spark = svg("svg", { class: "spark", viewBox: "0 0 120 32", preserveAspectRatio: "none" });
        sparkline(spark, state.rates.get(q.queue) || []);
        return el(
          "tr",
          { "data-queue": q.queue },
          el("td", { class: "name", text: q.queue }),
          el("td", {}, stackBar(q, max)),
          num(q.queued, "queued"),
          num(q.scheduled, "scheduled"),
          num(q.running, "running"),
          num(q.dead, "dead"),
          el("td", { class: "num" }, el("div", { class: "rate-cell" }, spark, el("span", { text: rate(q.succeeded_per_s) }))),
          num(c(q, "succeeded"), "succeeded"),
          num(c(q, "failed") + c(q, "dead"), "failed"),
          num(c(q, "retried"), "retried"),
          num(c(q, "cancelled"), "cancelled"),
        );
      }),
    );
  }

  function heartbeat(w) {
    const age = w.heartbeat_age_ms;
    const cls = age < 5000 ? "ok" : age < 15000 ? "warn" : "bad";
    return el("span", { class: `hb ${cls}`, text: `♥ ${dur(age)} ago` });
  }

  function renderWorkers(s) {
    const target = $("workers");
    $("workers-note").textContent = s.workers.length ? `${s.workers.length} alive` : "";
    if (!s.workers.length) {
      fill(target, empty("No workers alive", "Start one: worker --queues NAME --concurrency 8"));
      return;
    }
    fill(
      target,
      s.workers.map((w) => {
        const busy = w.active.length;
        const all = [...w.active.map((t) => [t, "running"]), ...w.reserved.map((t) => [t, "reserved"])];
        const tasks = all.slice(0, MAX_TASKS_PER_WORKER);
        const more = all.length - tasks.length;
        return el(
          "div",
          { class: "worker" },
          el(
            "div",
            { class: "worker-head" },
            el(
              "div",
              {},
              el("div", {}, el("span", { class: "worker-name", text: w.name }), " ", badge(w.state)),
              el("div", { class: "worker-meta" }, el("span", { class: "mono", text: w.id }), ` · ${w.host} · pid ${w.pid}`),
            ),
            el(
              "div",
              {},
              el("div", {}, w.queues.map((q) => el("span", { class: "chip", text: q }))),
              el("div", { class: "worker-meta" }, heartbeat(w), ` · up ${dur(now() - w.started_at_ms)}`),
            ),
            el(
              "div",
              { class: "worker-slots" },
              el("div", { class: "small" }, el("span", { class: "muted", text: "slots" }), el("b", { text: `${busy} / ${w.concurrency}` })),
              meter(w.concurrency ? busy / w.concurrency : 0, busy >= w.concurrency ? "full" : ""),
              el(
                "div",
                { class: "worker-stats" },
                el("span", {}, el("b", { text: fmt(w.stats.succeeded) }), " ok"),
                el("span", {}, el("b", { text: fmt(w.stats.failed + w.stats.dead) }), " failed"),
                el("span", {}, el("b", { text: fmt(w.stats.retried) }), " retried"),
              ),
            ),
          ),
          tasks.length
            ? el(
                "ul",
                { class: "tasks" },
                tasks.map(([t, kind]) =>
                  el(
                    "li",
                    {},
                    badge(kind === "running" ? "running" : "queued"),
                    el("span", { class: "grow" }, el("span", { class: "task-kind", text: t.kind }), el("span", { class: "task-id", text: t.id, title: t.id })),
                    t.attempt > 1 ? el("span", { class: "badge retrying", text: `attempt ${t.attempt}` }) : null,
                    el("span", { class: "elapsed", text: dur(now() - t.since_ms) }),
                    actionButton(`stop:${t.id}`, kind === "running" ? "Stop" : "Cancel", "Confirm?", () => cancelTask(t.id), true),
                  ),
                ),
                more > 0 ? el("li", { class: "more muted small", text: `+ ${more} more (GET /api/workers lists them all)` }) : null,
              )
            : null,
        );
      }),
    );
  }

  function renderLimiters(s) {
    const target = $("limiters");
    if (!s.limiters.length && !s.semaphores.length) {
      fill(target, empty("No rate limiters in use", "Limiters appear once a worker acquires one, e.g. limiter(\"sp_api\", \"8/s\")."));
      return;
    }
    const rows = [];
    if (s.limiters.length) {
      rows.push(el("div", { class: "subhead", text: "Rate limiters" }));
      for (const l of s.limiters) {
        const paused = l.paused_until_ms && l.paused_until_ms > now();
        const state = paused
          ? el("span", { class: "badge paused", text: `paused ${dur(l.paused_until_ms - now())}` })
          : l.available > 0
            ? el("span", { class: "badge running", text: "available" })
            : el("span", { class: "badge scheduled", text: `next ${dur(l.next_free_ms)}` });
        rows.push(
          el(
            "div",
            { class: "limiter" },
            el("div", {}, el("div", { class: "name", text: l.name }), el("div", { class: "rate", text: `${l.rate} · ${rate(l.per_second)}/s` })),
            el(
              "div",
              { class: "tokens" },
              el("div", { class: "small" }, el("span", { class: "muted", text: "tokens" }), el("b", { text: `${l.available} / ${l.burst}` })),
              meter(l.burst ? l.available / l.burst : 0, "accent"),
            ),
            el("div", { class: "state" }, state),
          ),
        );
      }
    }
    if (s.semaphores.length) {
      rows.push(el("div", { class: "subhead", text: "Semaphores" }));
      for (const m of s.semaphores) {
        rows.push(
          el(
            "div",
            { class: "limiter" },
            el("div", {}, el("div", { class: "name", text: m.name }), el("div", { class: "rate", text: `capacity ${m.capacity}` })),
            el(
              "div",
              { class: "tokens" },
              el("div", { class: "small" }, el("span", { class: "muted", text: "held" }), el("b", { text: `${m.held} / ${m.capacity}` })),
              meter(m.capacity ? m.held / m.capacity : 0, m.held >= m.capacity ? "full" : ""),
            ),
            el(
              "div",
              { class: "state" },
              m.held >= m.capacity
                ? el("span", { class: "badge scheduled", text: "full" })
                : el("span", { class: "badge running", text: `${m.capacity - m.held} free` }),
            ),
          ),
        );
      }
    }
    fill(target, rows);
  }

  function taskCell(t) {
    return el(
      "td",
      { class: "task" },
      el("div", { class: "task-kind", text: t.kind }),
      el("div", { class: "task-id", text: shortId(t.id), title: t.id }),
    );
  }

  /** At most `max` rows, then a last row saying how many more there are. */
  function capped(rows, max, cols, what) {
    if (rows.length <= max) return rows;
    const more = rows.length - max;
    return [...rows.slice(0, max), el("tr", { class: "more-row" }, el("td", { colspan: cols, class: "muted small", text: `+ ${more} more ${what}` }))];
  }

  function renderWaiting(s) {
    const body = $("waiting");
    if (!s.waiting.length) {
      fill(body, emptyRow(5, "Nothing waiting", "Queued and scheduled tasks show here in the order they will run."));
      return;
    }
    const rows = s.waiting.map((t) => {
        const when =
          t.state === "queued"
            ? `#${(t.position ?? 0) + 1} · ${ago(t.created_at_ms)}`
            : t.run_at_ms
              ? `runs in ${dur(t.run_at_ms - now())}`
              : "–";
        return el(
          "tr",
          {},
          taskCell(t),
          el("td", {}, badge(t.state), t.attempts > 0 ? el("span", { class: "muted small", text: ` try ${t.attempts + 1}` }) : null),
          el("td", { class: "num", text: t.priority }),
          el("td", { class: "muted small", text: when }),
          el("td", { class: "actions" }, actionButton(`cancel:${t.id}`, "Cancel", "Confirm?", () => cancelTask(t.id), true)),
        );
      });
    fill(body, capped(rows, MAX_ROWS, 5, "waiting (the first 10 of each queue are listed)"));
  }

  function renderDead(s) {
    const body = $("dead");
    if (!s.dead.length) {
      fill(body, emptyRow(4, "No dead letters", "Tasks that exhaust their retries or fail permanently land here."));
      return;
    }
    const rows = s.dead.map((t) =>
        el(
          "tr",
          {},
          el(
            "td",
            { class: "task" },
            el("div", {}, el("span", { class: "task-kind", text: t.kind }), badge(t.state), el("span", { class: "muted small", text: ` ×${t.attempts}`, title: `${t.attempts} attempts` })),
            el("div", { class: "task-id", text: shortId(t.id), title: t.id }),
          ),
          el("td", { class: "err" }, el("div", { text: t.error || "", title: t.error || "" })),
          el("td", { class: "muted small", text: ago(t.finished_at_ms) }),
          el("td", { class: "actions" }, actionButton(`requeue:${t.id}`, "Re-queue", null, () => requeueTask(t.id), false)),
        ),
      );
    fill(body, capped(rows, MAX_ROWS, 4, "(GET /api/queues/{queue}/dead lists them all)"));
  }

  function renderKeys(s) {
    const target = $("keys");
    $("keys-note").textContent = s.totals.keys ? `${fmt(s.totals.keys)} with work${s.totals.keys > s.keys.length ? `, busiest ${s.keys.length} shown` : ""}` : "one task at a time per key";
    if (!s.keys.length) {
      fill(target, empty("No keyed lanes with work", "Tasks with a key (an account, a project) run one at a time per key, in order."));
      return;
    }
    const rows = s.keys.map((k) =>
      el(
        "tr",
        {},
        el("td", { class: "task" }, el("div", { class: "task-kind", text: k.key, title: k.key }), el("div", { class: "task-id", text: k.queue })),
        el("td", {}, k.holder_state ? badge(k.holder_state) : el("span", { class: "muted small", text: `${k.slots_held} held` })),
        el("td", { class: "task-id", text: k.holder ? shortId(k.holder) : "", title: k.holder || "" }),
        el("td", { class: `num${k.waiting ? "" : " zero"}`, text: fmt(k.waiting) }),
      ),
    );
    fill(
      target,
      el(
        "table",
        { class: "table fixed" },
        el("colgroup", {}, el("col"), el("col", { class: "c-state" }), el("col"), el("col", { class: "c-count" })),
        el("thead", {}, el("tr", {}, el("th", { text: "Key" }), el("th", { text: "Holder" }), el("th", { text: "Task" }), el("th", { class: "num", text: "Waiting" }))),
        el("tbody", {}, capped(rows, MAX_ROWS, 4, "keys")),
      ),
    );
  }

  function renderBatches(s) {
    fill($("batches"), s.batches.length
      ? s.batches.map((b) => el("div", { class: "empty mono", text: JSON.stringify(b) }))
      : empty("No batches yet", "Parent jobs split into chunks show their progress here."));
  }

  function render() {
    const s = state.snap;
    if (!s) return;
    const banner = $("banner");
    if (!s.redis_ok) {
      banner.hidden = false;
      banner.className = "banner";
      banner.textContent = `Redis is not answering: ${s.message || "unavailable"}. The numbers below are cleared until it does.`;
    } else if (banner.dataset.kind !== "auth") {
      banner.hidden = true;
    }
    renderKpis(s);
    renderQueues(s);
    renderWorkers(s);
    renderLimiters(s);
    renderWaiting(s);
    renderDead(s);
    renderKeys(s);
    renderBatches(s);
  }

  function accept(snap) {
    state.snap = snap;
    state.receivedAt = Date.now();
    const seen = new Set();
    for (const q of snap.queues) {
      seen.add(q.queue);
      if (q.succeeded_per_s === undefined) continue;
      const h = state.rates.get(q.queue) || [];
      h.push(q.succeeded_per_s);
      if (h.length > HISTORY) h.shift();
      state.rates.set(q.queue, h);
    }
    for (const name of [...state.rates.keys()]) if (!seen.has(name)) state.rates.delete(name);
    if (snap.totals.succeeded_per_s !== undefined) {
      state.total.push(snap.totals.succeeded_per_s);
      if (state.total.length > HISTORY) state.total.shift();
    }
    render();
  }

  // ---- connection status and the event stream ------------------------------------------------

  function setConn(kind, text) {
    const pill = $("conn");
    pill.className = `pill pill-${kind}`;
    $("conn-text").textContent = text;
  }

  function showAuthBanner(refused) {
    const banner = $("banner");
    banner.hidden = false;
    banner.dataset.kind = "auth";
    banner.className = "banner warn";
    banner.textContent = refused
      ? "The saved API token was refused. Enter the broker's current token at the top right."
      : "This broker requires an API token to read. Enter it at the top right (it stays in this browser).";
  }

  function clearAuthBanner() {
    const banner = $("banner");
    if (banner.dataset.kind === "auth") {
      delete banner.dataset.kind;
      banner.hidden = true;
    }
  }

  let controller = null;
  let retryDelay = 1000;

  function parseFrame(frame) {
    let event = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (event === "snapshot" && data.length) accept(JSON.parse(data.join("\n")));
  }

  async function follow() {
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    setConn("muted", "Connecting…");
    try {
      const resp = await fetch("/api/events", {
        headers: { Accept: "text/event-stream", ...authHeaders() },
        signal: mine.signal,
        cache: "no-store",
      });
      if (resp.status === 401) {
        setConn("warn", token() ? "Token refused" : "Token needed");
        showAuthBanner(Boolean(token()));
        return; // wait for a token to be saved
      }
      if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
      clearAuthBanner();
      setConn("ok", "Live");
      retryDelay = 1000;
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          parseFrame(frame);
        }
      }
      throw new Error("stream ended");
    } catch (e) {
      if (mine.signal.aborted) return;
      setConn("bad", `Reconnecting in ${Math.round(retryDelay / 1000)}s`);
      setTimeout(() => {
        if (controller === mine) follow();
      }, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    }
  }

  function tickClock() {
    if (!state.snap) return;
    const age = Date.now() - state.receivedAt;
    $("updated").textContent = `updated ${dur(age)} ago`;
    if (age > 5000 && $("conn").classList.contains("pill-ok")) setConn("warn", "Stale");
  }

  document.addEventListener("DOMContentLoaded", () => {
    const input = $("token");
    input.value = token();
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = input.value.trim();
      if (v) localStorage.setItem(TOKEN_KEY, v);
      else localStorage.removeItem(TOKEN_KEY);
      toast(v ? "API token saved in this browser" : "API token cleared");
      follow();
    });
    setInterval(tickClock, 500);
    follow();
  });
})();
