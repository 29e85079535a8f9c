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

  for (const fig of root.querySelectorAll("figure.chart")) {
    charts.set(fig.dataset.key, { fig, plot: null, points: new Map() });
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
    for (const [key, points] of Object.entries(series)) {
      let chart = charts.get(key);
      if (!chart) continue;
      for (const [step, value] of points) {
        chart.points.set(step, value);
        if (step > lastStep) lastStep = step;
      }
      touched.add(key);
    }
    touched.forEach(render);
    if (touched.size) document.getElementById("last-update").textContent = new Date().toLocaleTimeString();
  }

  const keyParam = encodeURIComponent(Array.from(charts.keys()).join(","));

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
    ws.onopen = () => { state.textContent = "live"; backfill(); };
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
          span.textContent = `${new Date().toLocaleTimeString()} [${line.source}] ${line.message}\n`; // text, never HTML
          log.appendChild(span);
        }
        log.scrollTop = log.scrollHeight;
      }
    };
    ws.onclose = () => { state.textContent = "reconnecting…"; setTimeout(connect, 1500); };
  }

  backfill().finally(connect);
})();
