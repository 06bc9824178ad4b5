// lrpilot dashboard: the jobs list at "/", one job at "/jobs/<name>". Reads the /v1 JSON API
// with the page's credentials (credentials: "same-origin": a session cookie works), draws with
// the vendored uPlot, and refreshes while a job runs. window.lrpilot exposes what was plotted.
(() => {
  "use strict";
  const REFRESH_MS = 2000;
  const PHASE_COLORS = { warmup: "#9e9e9e", search: "#ff9800", exploit: "#1976d2", anneal: "#388e3c", done: "#555" };
  const state = { view: null, charts: {}, plotted: {}, refreshes: 0, timer: null };
  window.lrpilot = state;

  const main = document.getElementById("main");
  const num = (v) => (typeof v === "string" ? Number(v) : v); // NaN/Infinity travel as strings
  const fmt = (v, digits = 4) => {
    v = num(v);
    if (v === null || v === undefined || v === "") return "–";
    if (typeof v !== "number") return String(v);
    return Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : String(v);
  };
  const path = (name) => name.split("/").map(encodeURIComponent).join("/");

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      node.append(child instanceof Node ? child : document.createTextNode(child === null || child === undefined ? "" : String(child)));
    }
    return node;
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      throw new Error(`${response.status}: ${detail}`);
    }
    return response.json();
  }

  function table(headers, rows, numeric = []) {
    return el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", numeric.includes(i) ? { class: "num" } : {}, h)))),
      el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell, i) => {
        const attrs = numeric.includes(i) ? { class: "num" } : {};
        return el("td", attrs, cell);
      })))));
  }

  const badge = (status) => el("span", { class: `badge ${status}` }, status);

  function schedule(next) {
    clearTimeout(state.timer);
    document.getElementById("refresh").textContent = next ? `refreshing every ${REFRESH_MS / 1000} s` : "";
    if (next) state.timer = setTimeout(next, REFRESH_MS);
  }

  // -- the jobs list ------------------------------------------------------------------------------

  async function showJobs() {
    state.view = "jobs";
    const summaries = await getJSON("/v1/dashboard/jobs");
    state.plotted.jobs = summaries;
    const rows = summaries.map(({ job, last_step, last_loss }) => [
      el("a", { href: `/jobs/${path(job.name)}` }, job.name),
      badge(job.status),
      job.tenant,
      job.config.total_steps ? `${job.steps_reported} / ${job.config.total_steps}` : String(job.steps_reported),
      job.decision.phase,
      fmt(job.decision.lr),
      fmt(last_loss),
      job.updated_at.replace("T", " ").slice(0, 19),
    ]);
    main.replaceChildren(
      el("h1", {}, "Jobs"),
      summaries.length ? table(["job", "status", "tenant", "step", "phase", "current lr", "last loss", "updated (UTC)"], rows, [3, 5, 6])
        : el("p", { class: "muted" }, "No jobs yet: a Tuner with LRPILOT_URL pointing here creates one."));
    state.refreshes += 1;
    schedule(summaries.some(({ job }) => job.status === "running") ? () => showJobs().catch(fail) : null);
  }

  // -- one job ------------------------------------------------------------------------------------

  function series(sched) {
    const tries = new Map(); // "stage/candidate" -> forecast, to mark diverged tries on the chart
    for (const stage of sched.stages) stage.candidates.forEach((f, i) => tries.set(`${stage.stage}/${i}`, f));
    const steps = [], lr = [], loss = [], search = [], diverged = [];
    for (const s of sched.steps) {
      const forecast = s.candidate === null ? null : tries.get(`${s.stage}/${s.candidate}`);
      steps.push(s.step);
      lr.push(num(s.lr));
      loss.push(Number.isFinite(num(s.loss)) ? num(s.loss) : null);
      search.push(s.phase === "search" ? num(s.lr) : null);
      diverged.push(forecast && forecast.method === "diverged" ? num(s.lr) : null);
    }
    return { steps, lr, loss, search, diverged };
  }

  function chart(key, title, data, extra, logY) {
    const width = Math.max(480, main.clientWidth - 20);
    const options = {
      title, width, height: 240,
      scales: { x: { time: false }, y: logY ? { distr: 3 } : {} },
      axes: [{ label: "step (search steps included)" }, { size: 70 }],
      series: [{ label: "step" }, ...extra],
    };
    const existing = state.charts[key];
    if (existing) { existing.plot.setData(data); return existing.holder; }
    const holder = el("div", { class: "chart", id: `chart-${key}` });
    state.charts[key] = { plot: new uPlot(options, data, holder), holder };
    return holder;
  }

  const points = (label, color) => ({ label, stroke: color, fill: color, paths: () => null, points: { show: true, size: 5, fill: color } });

  function stageTables(sched) {
    const stages = sched.stages.map((s) => [s.stage, s.tau, s.search_steps, `${fmt(s.lr_low, 3)} – ${fmt(s.lr_high, 3)}`,
      s.candidates.length, fmt(s.chosen_lr), el("span", { class: "wrap" }, s.reason || "–")]);
    const candidates = [];
    for (const s of sched.stages) {
      s.candidates.forEach((f, i) => {
        const chosen = s.chosen_lr !== null && Math.abs(num(f.lr) - num(s.chosen_lr)) <= 1e-9 * Math.abs(num(s.chosen_lr));
        const mark = f.method === "diverged" ? el("span", { class: "diverged" }, "✗ diverged")
          : chosen ? el("span", { class: "chosen" }, "✓ chosen") : "";
        candidates.push([s.stage, i, fmt(f.lr), f.method === "diverged" ? "–" : `${fmt(f.predicted)} ± ${fmt(f.uncertainty, 2)}`,
          f.method, f.steps, mark]);
      });
    }
    return [
      el("h2", {}, "Stages"),
      stages.length ? table(["stage", "tau", "search steps", "range searched", "candidates", "chosen lr", "why"], stages, [1, 2, 4, 5])
        : el("p", { class: "muted" }, "No stage has searched yet."),
      el("h2", {}, "Candidates"),
      candidates.length ? table(["stage", "#", "lr", "forecast loss at end of stage", "method", "steps", ""], candidates, [1, 2, 3, 5])
        : el("p", { class: "muted" }, "No candidate tried yet."),
    ];
  }

  async function showJob(name) {
    state.view = "job";
    const base = `/v1/jobs/${path(name)}`;
    const [job, sched] = await Promise.all([getJSON(base), getJSON(`${base}/schedule`)]);
    const data = series(sched);
    state.plotted.job = { job, schedule: sched, series: data };
    const last = sched.steps.length ? sched.steps[sched.steps.length - 1] : null;
    const d = job.decision;
    const facts = el("div", { class: "facts" },
      [["status", badge(job.status)], ["tenant", job.tenant],
        ["step", job.config.total_steps ? `${job.steps_reported} / ${job.config.total_steps}` : job.steps_reported],
        ["phase", d.phase], ["current lr", fmt(d.lr)], ["last loss", last ? fmt(last.loss) : "–"],
        ["search share", `${Math.round(100 * sched.search_share)}%`]].map(([k, v]) => el("div", {}, el("span", {}, k), v)));
    const decision = el("p", {}, el("strong", {}, "Current decision: "),
      `window ${d.window}, ${d.action} for ${d.steps} steps at lr ${fmt(d.lr)}${d.lr_end !== d.lr ? ` → ${fmt(d.lr_end)}` : ""}: ${d.reason}`);
    const lrChart = chart("lr", "learning rate", [data.steps, data.lr, data.search, data.diverged],
      [{ label: "lr", stroke: PHASE_COLORS.exploit, width: 1.5 }, points("search tries", PHASE_COLORS.search), points("diverged", "#d1242f")], true);
    const positive = data.loss.every((v) => v === null || v > 0);
    const lossChart = chart("loss", "training loss", [data.steps, data.loss], [{ label: "loss", stroke: "#6f42c1", width: 1 }], positive);
    main.replaceChildren(el("h1", {}, `Job ${job.name}`), facts, decision, lrChart, lossChart, ...stageTables(sched));
    state.refreshes += 1;
    schedule(job.status === "running" ? () => showJob(name).catch(fail) : null);
  }

  function fail(error) {
    schedule(null);
    main.replaceChildren(el("h1", {}, "lrpilot"), el("p", { class: "error" }, String(error.message || error)));
  }

  const match = location.pathname.match(/^\/jobs\/(.+)$/);
  (match ? showJob(match[1].split("/").map(decodeURIComponent).join("/")) : showJobs()).catch(fail);
})();
