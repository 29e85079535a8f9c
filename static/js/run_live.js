// Live charts of one run: backfill from the database on every (re)connect, then append what the
// WebSocket pushes. Points are keyed by step, so a point seen twice (backfill + push) is kept once.
(function () {
  "use strict";
  const root = document.getElementById("charts");
  if (!root) return;
  const metricsUrl = root.dataset.metricsUrl;
  const wsPath = root.dataset.wsPath;
  const RATE_KEYS = new Set(["reward/mean", "pass_rate", "tests/pass_frac", "frac_reward_zero_std"]);
  const charts = new Map(); // key -> {fig, plot, steps: Map(step -> value)}
  let lastStep = -1;
  let statusTimer = null;
  let reconnecting = false;

  for (const fig of root.querySelectorAll("figure.chart:not([data-keys])")) {
    charts.set(fig.dataset.key, { fig, plot: null, points: new Map() });
  }

  // Figures with data-keys show several metrics at once, one line each; data-stacked draws each on
  // top of the ones before, so the stack's height is their sum (the reward components' shares).
  const COLORS = ["#3b6fd8", "#d8703b", "#2e9e5b", "#9b3bd8", "#d83b6a", "#6a6a6a"];
  const FILLS = ["#c9d8f6", "#f6dac9", "#c6e8d4", "#e3cbf5", "#f5c9d7", "#dddddd"];
  const groupsByKey = new Map(); // metric key -> [group]
  for (const fig of root.querySelectorAll("figure.chart[data-keys]")) {
    const keys = fig.dataset.keys.split(",");
    const labels = (fig.dataset.labels || fig.dataset.keys).split(",");
    const group = { fig, plot: null, keys, labels, stacked: fig.dataset.stacked === "true", points: new Map() };
    for (const key of keys) {
      group.points.set(key, new Map());
      if (!groupsByKey.has(key)) groupsByKey.set(key, []);
      groupsByKey.get(key).push(group);
    }
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
    group.plot = new uPlot({
      width: Math.max(260, el.clientWidth || 360), height: 200,
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
      axes: [{ label: "step" }, {}],
    }, data, el);
  }

  function render(key) {
    const chart = charts.get(key);
    if (!chart) return;
    const steps = Array.from(chart.points.keys()).sort((a, b) => a - b);
    const values = steps.map((s) => chart.points.get(s));
    const data = [steps, values];
    chart.fig.dataset.points = String(steps.length);
    chart.fig.querySelector(".empty-chart").hidden = steps.length > 0;
    if (steps.length) chart.fig.querySelector(".latest").textContent = values[values.length - 1].toPrecision(4);
    if (chart.plot) { chart.plot.setData(data); return; }
    if (!steps.length) return;
    const el = chart.fig.querySelector(".plot");
    chart.plot = new uPlot({
      width: Math.max(260, el.clientWidth || 360), height: 180,
      // Rates live in [0, 1]: a fixed axis keeps a flat 0 from filling the plot with noise.
      scales: { x: { time: false }, y: RATE_KEYS.has(key) ? { range: (u, min, max) => [0, Math.max(1, max)] } : {} },
      series: [{ label: "step" }, { label: key, stroke: "#3b6fd8", width: 2, points: { show: steps.length < 60 } }],
      axes: [{ label: "step" }, {}],
      legend: { show: false },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 2) return;
          const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
          zoomDetail(key, lo, hi);
        }],
      },
    }, data, el);
  }

  function addPoints(series) {
    const touched = new Set();
    const touchedGroups = new Set();
    for (const [key, points] of Object.entries(series)) {
      for (const group of groupsByKey.get(key) || []) {
        for (const [step, value] of points) {
          group.points.get(key).set(step, value);
          if (step > lastStep) lastStep = step;
        }
        touchedGroups.add(group);
      }
      let chart = charts.get(key);
      if (!chart) continue;
      for (const [step, value] of points) {
        chart.points.set(step, value);
        if (step > lastStep) lastStep = step;
      }
      touched.add(key);
    }
    touched.forEach(render);
    touchedGroups.forEach(renderGroup);
    if (touched.size || touchedGroups.size) {
      document.getElementById("last-update").textContent = new Date().toLocaleTimeString();
    }
  }

  const keyParam = encodeURIComponent(Array.from(new Set([...charts.keys(), ...groupsByKey.keys()])).join(","));

  async function backfill() {
    // First load: the whole run, downsampled on the server (each bucket's min and max kept). Later
    // (a reconnect): everything after the last step seen, so the gap is filled at full detail.
    const query = lastStep < 0 ? "max_points=2000" : `after_step=${lastStep - 1}`;
    const resp = await fetch(`${metricsUrl}?keys=${keyParam}&${query}`, { credentials: "same-origin" });
    if (resp.ok) addPoints((await resp.json()).series);
  }

  async function zoomDetail(key, lo, hi) {
    // A zoomed window is re-read at full detail (up to 2000 points) and merged into the series.
    const url = `${metricsUrl}?keys=${encodeURIComponent(key)}&after_step=${Math.floor(lo) - 1}` +
      `&until_step=${Math.ceil(hi)}&max_points=2000`;
    const resp = await fetch(url, { credentials: "same-origin" });
    if (!resp.ok) return;
    const chart = charts.get(key);
    for (const [step, value] of (await resp.json()).series[key] || []) chart.points.set(step, value);
    const x = chart.plot.scales.x;
    render(key);
    chart.plot.setScale("x", { min: x.min, max: x.max });
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
