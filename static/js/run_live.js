// Live charts of one run: backfill from the database on every (re)connect, then append what the
// WebSocket pushes. Points are keyed by step, so a point seen twice (backfill + push) is kept once.
// The panels are static/js/charts.js's (any metric, picked by the user, laid out as they saved it);
// the combined charts (stacked reward shares, pass@k) are drawn here.
(function () {
  "use strict";
  const root = document.getElementById("charts");
  if (!root) return;
  const metricsUrl = root.dataset.metricsUrl;
  const wsPath = root.dataset.wsPath;
  const runId = root.dataset.run;
  const LOG_LINES_KEPT = 2000; // the live log's length on the page (docs/runs.md, "Logs")
  const setup = JSON.parse(document.getElementById("chart-setup").textContent);
  let lastStep = -1;
  let statusTimer = null;
  let reconnecting = false;

  async function readSeries(keys, { afterStep = null, untilStep = null, maxPoints = 2000 } = {}) {
    if (!keys.length) return {};
    let url = `${metricsUrl}?keys=${encodeURIComponent(keys.join(","))}&max_points=${maxPoints}`;
    if (afterStep != null) url += `&after_step=${afterStep}`;
    if (untilStep != null) url += `&until_step=${untilStep}`;
    const resp = await fetch(url, { credentials: "same-origin" });
    return resp.ok ? (await resp.json()).series : {};
  }
  const perRun = (series) => Object.fromEntries(Object.entries(series).map(([k, pts]) => [k, { [runId]: pts }]));

  const board = window.TriadCharts.createBoard({
    root,
    runs: [{ id: runId, label: root.dataset.runLabel }],
    notes: setup.notes,
    layout: setup.layout, // the user's saved layout, or this run's defaults (runs/chart_panels.py)
    zoomDetail: true,
    loadSeries: async (keys, range) => perRun(await readSeries(keys, range)),
    loadMapping: async () => {
      const resp = await fetch(`${metricsUrl}?keys=time/step_s&wall=1&max_points=2000`, { credentials: "same-origin" });
      return resp.ok ? { [runId]: (await resp.json()).wall || [] } : {};
    },
    loadKeys: async (q) => {
      const resp = await fetch(`${root.dataset.metricKeysUrl}?q=${encodeURIComponent(q)}`, { credentials: "same-origin" });
      if (!resp.ok) return [];
      return (await resp.json()).keys.map((k) => ({ key: k.key, detail: `to step ${k.last_step}` }));
    },
    saveLayout: (layout) => window.TriadCharts.saveLayout(root.dataset.layoutUrl, layout),
  });

  // Figures with data-keys show several metrics at once, one line each; data-stacked draws each on
  // top of the ones before, so the stack's height is their sum (the reward components' shares).
  const COLORS = ["#3b6fd8", "#d8703b", "#2e9e5b", "#9b3bd8", "#d83b6a", "#6a6a6a"];
  const FILLS = ["#c9d8f6", "#f6dac9", "#c6e8d4", "#e3cbf5", "#f5c9d7", "#dddddd"];
  const groupsByKey = new Map(); // metric key -> [group]
  const groups = [];
  for (const fig of root.querySelectorAll("figure.chart[data-keys]")) {
    const keys = fig.dataset.keys.split(",");
    const labels = (fig.dataset.labels || fig.dataset.keys).split(",");
    const group = { fig, plot: null, keys, labels, stacked: fig.dataset.stacked === "true", points: new Map() };
    groups.push(group);
    for (const key of keys) {
      group.points.set(key, new Map());
      if (!groupsByKey.has(key)) groupsByKey.set(key, []);
      groupsByKey.get(key).push(group);
    }
  }
  const resizer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const group = entry.target._group;
      const width = Math.max(200, Math.floor(entry.contentRect.width));
      if (group && group.plot && width !== group.plot.width) group.plot.setSize({ width, height: 200 });
    }
  });
  for (const group of groups) {
    const plotEl = group.fig.querySelector(".plot");
    plotEl._group = group;
    resizer.observe(plotEl);
  }

  function renderGroup(group) {
    const steps = Array.from(new Set(group.keys.flatMap((k) => Array.from(group.points.get(k).keys()))))
      .sort((a, b) => a - b);
    const raw = group.keys.map((k) => steps.map((s) => (group.points.get(k).has(s) ? group.points.get(k).get(s) : null)));
    let shown = raw;
    if (group.stacked) {
      const sums = steps.map(() => 0);
      shown = raw.map((values) => values.map((v, i) => (sums[i] += v || 0)));
    }
    // Stacked areas are drawn from the top one down, each filled to 0 over the ones drawn before.
    const order = group.keys.map((_, i) => i);
    if (group.stacked) order.reverse();
    group.raw = raw;
    const data = [steps, ...order.map((i) => shown[i])];
    group.fig.dataset.points = String(steps.length);
    group.fig.querySelector(".empty-chart").hidden = steps.length > 0;
    if (steps.length) {
      const last = steps.length - 1;
      group.fig.querySelector(".latest").textContent = group.keys
        .map((_, i) => (raw[i][last] === null ? "" : `${group.labels[i]} ${raw[i][last].toPrecision(3)}`))
        .filter(Boolean).join(" · ");
    }
    if (group.plot) { group.plot.setData(data); return; }
    if (!steps.length) return;
    const el = group.fig.querySelector(".plot");
    const theme = window.TriadCharts.themeColours();
    const axis = { stroke: theme.axis, grid: { stroke: theme.grid, width: 1 }, ticks: { stroke: theme.grid } };
    group.plot = new uPlot({
      width: Math.max(200, el.clientWidth || 360), height: 200,
      // Shares and pass@k are never negative: the axis starts at 0, so the stack is seen whole.
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.05 : 1] } },
      series: [{ label: "step" }, ...order.map((i) => ({
        label: group.labels[i],
        stroke: COLORS[i % COLORS.length],
        fill: group.stacked ? FILLS[i % FILLS.length] : undefined,
        width: 2,
        points: { show: steps.length < 60 },
        // The legend shows each metric's own value, not the stack's height at its line.
        value: (u, v, sidx, idx) => {
          const own = idx == null ? null : group.raw[i][idx];
          return own == null ? "–" : own.toPrecision(3);
        },
      }))],
      axes: [{ ...axis, label: "step" }, { ...axis }],
      hooks: { draw: [(u) => { if (u.data[0].length) group.fig.dataset.drawn = "true"; }] },
    }, data, el);
    group.fig._plot = group.plot;
  }

  function addPoints(series) {
    const touchedGroups = new Set();
    for (const [key, points] of Object.entries(series)) {
      for (const [step] of points) if (step > lastStep) lastStep = step;
      if (!board.panels.has(key)) board.noteKey(key, "new");
      for (const group of groupsByKey.get(key) || []) {
        for (const [step, value] of points) group.points.get(key).set(step, value);
        touchedGroups.add(group);
      }
    }
    const touched = board.addSeries(perRun(series));
    touchedGroups.forEach(renderGroup);
    if (touched.size || touchedGroups.size) {
      document.getElementById("last-update").textContent = new Date().toLocaleTimeString();
    }
  }

  async function backfill() {
    // First load: the whole run, downsampled on the server (each bucket's min and max kept). Later
    // (a reconnect): everything after the last step seen, so the gap is filled at full detail.
    const keys = Array.from(new Set([...board.keysWanted(), ...groupsByKey.keys()]));
    const range = lastStep < 0 ? {} : { afterStep: lastStep - 1, maxPoints: 20000 };
    // metrics.json answers up to 100 keys (4,000 characters of them) at once: more are read in slices.
    const slices = [];
    for (let i = 0; i < keys.length; i += 50) slices.push(readSeries(keys.slice(i, i + 50), range));
    const answers = await Promise.all(slices);
    addPoints(Object.assign({}, ...answers));
    if (board.settings.x === "wall") { await board.ensureAxis({ refresh: true }); board.renderAll(); }
    root.dataset.loaded = "true"; // every panel has had its backfill
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}${wsPath}`);
    const state = document.getElementById("live-state");
    ws.onopen = () => {
      state.textContent = "live";
      backfill();
      // After a drop (the server closes with 4000 when an update may have been lost), the status and
      // the generations are re-read too.
      if (reconnecting) {
        document.body.dispatchEvent(new Event("run-status"));
        document.body.dispatchEvent(new Event("run-generations"));
      }
    };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.metrics && msg.metrics.length) {
        const series = {};
        for (const p of msg.metrics) (series[p.key] = series[p.key] || []).push([p.step, p.value]);
        addPoints(series);
      }
      if (msg.status) {
        clearTimeout(statusTimer);
        statusTimer = setTimeout(() => document.body.dispatchEvent(new Event("run-status")), 100);
      }
      if (msg.generations && msg.generations.length) document.body.dispatchEvent(new Event("run-generations"));
      if (msg.logs && msg.logs.length) {
        const log = document.getElementById("log");
        for (const line of msg.logs) {
          const span = document.createElement("span");
          span.className = `lvl-${line.level}`;
          span.textContent = `${window.triadFormatTime ? window.triadFormatTime(line.time, true) : line.time} [${line.source}] ${line.message}\n`; // text, never HTML
          log.appendChild(span);
        }
        // A chatty run would grow the page without end: the page keeps the newest lines, the whole log
        // downloads from the link below it.
        while (log.childElementCount > LOG_LINES_KEPT) log.firstElementChild.remove();
        log.scrollTop = log.scrollHeight;
      }
    };
    ws.onclose = async () => {
      state.textContent = "reconnecting…";
      reconnecting = true;
      // A refused handshake reaches a browser as 1006, like a server that is away: ask over HTTP
      // whether the run is still ours to see (its team may have dropped this user) before retrying.
      try {
        const resp = await fetch(`${metricsUrl}?keys=loss&max_points=10`, { credentials: "same-origin" });
        if (resp.status === 404) { state.textContent = "no access to this run"; return; }
        if (resp.redirected) { state.textContent = "signed out"; return; }
      } catch (err) { /* the server is away: retry */ }
      setTimeout(connect, 1500);
    };
  }

  backfill().finally(connect);
})();
