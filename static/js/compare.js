// Overlaid charts of several runs (up to 100): static/js/charts.js's panels, one line per run, each run
// in its own colour in every chart (its position in the comparison picks it), the summary's swatches too.
//
// Series come in one request for every run (GET /runs/compare/metrics.json, contract of #21); where
// that route is missing (404, or not named by the page) they are read run by run from metrics.json.
(function () {
  "use strict";
  const root = document.getElementById("compare-charts");
  if (!root) return;
  const Charts = window.TriadCharts;
  const runIds = root.dataset.runs.split(",").filter(Boolean);
  const perRunUrl = (id) => root.dataset.metricsUrlTemplate.replace("/0/", `/${id}/`);
  const keysUrlFor = (id) => root.dataset.keysUrlTemplate.replace("/0/", `/${id}/`);
  // Fewer points per series the more runs: a hundred runs' charts stay quick to draw.
  const maxPoints = Math.max(200, Math.min(1000, Math.floor(8000 / Math.max(1, runIds.length))));
  let batch = Boolean(root.dataset.metricsUrl);
  let batchKeys = Boolean(root.dataset.keysUrl);
  document.querySelectorAll("[data-swatch]").forEach((el) => {
    el.style.background = Charts.colour(Number(el.dataset.swatch));
  });

  function query(params) {
    return Object.entries(params).filter(([, v]) => v != null).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
  }

  async function loadSeries(keys, { afterStep = null, untilStep = null } = {}) {
    const range = { max_points: maxPoints, after_step: afterStep, until_step: untilStep };
    if (batch) {
      const resp = await fetch(`${root.dataset.metricsUrl}?${query({ runs: runIds.join(","), keys: keys.join(","), ...range })}`,
                               { credentials: "same-origin" });
      if (resp.ok) return (await resp.json()).series;
      if (resp.status !== 404) return {};
      batch = false; // not deployed here: read run by run
    }
    const answers = await Promise.all(runIds.map((id) =>
      fetch(`${perRunUrl(id)}?${query({ keys: keys.join(","), ...range })}`, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : { series: {} }))));
    const series = {};
    answers.forEach((a, i) => {
      for (const [key, pts] of Object.entries(a.series || {})) (series[key] = series[key] || {})[runIds[i]] = pts;
    });
    return series;
  }

  async function loadKeys(q) {
    if (batchKeys) {
      const resp = await fetch(`${root.dataset.keysUrl}?${query({ runs: runIds.join(","), q })}`, { credentials: "same-origin" });
      if (resp.ok) return (await resp.json()).keys.map((k) => ({ key: k.key, detail: `${k.runs} of ${runIds.length} runs` }));
      if (resp.status !== 404) return [];
      batchKeys = false;
    }
    const answers = await Promise.all(runIds.map((id) =>
      fetch(`${keysUrlFor(id)}?${query({ q })}`, { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : { keys: [] }))));
    const runsOf = new Map();
    for (const a of answers) for (const k of a.keys) runsOf.set(k.key, (runsOf.get(k.key) || 0) + 1);
    return Array.from(runsOf, ([key, n]) => ({ key, detail: `${n} of ${runIds.length} runs` }));
  }

  async function loadMapping() {
    const answers = await Promise.all(runIds.map((id) =>
      fetch(`${perRunUrl(id)}?keys=time/step_s&wall=1&max_points=2000`, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : {}))));
    return Object.fromEntries(answers.map((a, i) => [runIds[i], a.wall || []]));
  }

  async function start() {
    const defaults = root.dataset.defaultKeys.split(",").filter(Boolean);
    let layout = null;
    try {
      const resp = await fetch(root.dataset.layoutUrl, { credentials: "same-origin" });
      if (resp.ok) layout = (await resp.json()).layout;
    } catch (err) { /* the defaults, then */ }
    if (!layout || !layout.panels) layout = { ...(layout || {}), panels: defaults.map((key) => ({ key, full: false })) };
    const board = Charts.createBoard({
      root,
      runs: runIds.map((id) => ({ id, label: `#${id}` })),
      notes: {},
      layout,
      zoomDetail: true,
      loadSeries, loadKeys, loadMapping,
      saveLayout: (l) => Charts.saveLayout(root.dataset.layoutUrl, l),
    });
    if (board.settings.x === "wall") await board.ensureAxis();
    const keys = board.keysWanted();
    const slices = [];
    for (let i = 0; i < keys.length; i += 50) slices.push(loadSeries(keys.slice(i, i + 50)));
    const answers = await Promise.all(slices);
    board.addSeries(Object.assign({}, ...answers));
    for (const panel of board.panels.values()) {
      // A metric none of the runs logged says so rather than leaving a blank box.
      if (!panel.view) {
        board.render(panel);
        panel.fig.querySelector(".empty-chart").textContent = "No points in any of these runs.";
      }
    }
    // Every panel has its first answer (drawn, or saying it has no points): what a bench can wait on
    // besides each figure's data-drawn, which a metric none of the runs logged never gets.
    root.dataset.loaded = "true";
  }
  start();
})();
