// The chart module the run page (run_live.js) and the compare page (compare.js) share: one panel per
// metric, one line per run. A board owns the panels, their sections (grouped by the key's prefix), the
// controls (smoothing, log scale, x axis, the metric picker) and the layout it saves for the user.
//
// A panel keeps every run's points by step; what it draws is derived from them on every render:
// mapped to the chosen x axis, smoothed (EMA, the raw line faint behind), and aligned on one x array
// for uPlot. The page feeds it: it says how to read series, mappings and keys, and pushes live points.
(function () {
  "use strict";

  // A run keeps its colour in every chart: its position picks it (ten distinct hues, then the golden
  // angle around the wheel, so a hundred runs still get a hundred colours).
  const PALETTE = [[220, 67, 54], [14, 68, 54], [145, 55, 40], [282, 44, 53], [45, 100, 44],
                   [188, 77, 40], [330, 75, 43], [16, 26, 35], [200, 16, 35], [88, 50, 44]];
  function colour(i, alpha) {
    const [h, s, l] = i < PALETTE.length ? PALETTE[i] : [(i * 137.508) % 360, 60, 45];
    return alpha == null ? `hsl(${h}, ${s}%, ${l}%)` : `hsla(${h}, ${s}%, ${l}%, ${alpha})`;
  }

  // Rates live in [0, 1]: a fixed axis keeps a flat 0 from filling the plot with noise.
  const RATE_KEYS = new Set(["reward/mean", "pass_rate", "tests/pass_frac", "frac_reward_zero_std"]);
  const X_AXES = {
    step: { label: "step" },
    wall: { label: "minutes since start (wall time)" },
    tokens: { label: "tokens generated", key: "throughput/tokens_total" },
    usd: { label: "dollars spent", key: "cost/usd" },
  };

  // Exponential moving average, debiased like TensorBoard's (the first points are not pulled to 0).
  // Gaps (null, NaN) stay gaps and do not move the average.
  function ema(values, alpha) {
    if (!alpha) return values.slice();
    let last = 0, n = 0;
    return values.map((v) => {
      if (v == null || !Number.isFinite(v)) return null;
      last = last * alpha + (1 - alpha) * v;
      n += 1;
      return last / (1 - Math.pow(alpha, n));
    });
  }

  // x for a step through a mapping [[step, x], ...] sorted by step (linear between its points); null
  // outside it: a point is not drawn where its x is unknown.
  function mapStep(mapping, step) {
    if (!mapping || !mapping.length) return null;
    let lo = 0, hi = mapping.length - 1;
    if (step < mapping[0][0] || step > mapping[hi][0]) return null;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (mapping[mid][0] <= step) lo = mid; else hi = mid;
    }
    const [s0, x0] = mapping[lo], [s1, x1] = mapping[hi];
    if (step === s0) return x0;
    if (step === s1 || s1 === s0) return x1;
    return x0 + ((x1 - x0) * (step - s0)) / (s1 - s0);
  }

  function themeColours() {
    const css = getComputedStyle(document.documentElement);
    return {
      axis: css.getPropertyValue("--chart-axis").trim() || "#1d2330",
      grid: css.getPropertyValue("--chart-grid").trim() || "rgba(0, 0, 0, 0.07)",
    };
  }

  function fmt(v) {
    if (v == null || !Number.isFinite(v)) return "–";
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "className") node.className = v; else node.setAttribute(k, v === true ? "" : v);
    }
    if (text != null) node.textContent = text; // untrusted keys and run names: always text, never HTML
    return node;
  }

  let boards = 0;

  // opts: root (the board's element: holds .chart-controls and .chart-sections), runs [{id, label}],
  // notes {key: {title, empty, testid}}, layout (saved or defaults: {panels, smoothing, log, x}),
  // loadSeries(keys, {afterStep, untilStep}) -> Promise<{key: {runId: [[step, value]]}}>,
  // loadMapping(axis) -> Promise<{runId: [[step, x]]}> (wall only; tokens and usd read a series),
  // loadKeys(q) -> Promise<[{key, detail}]>, saveLayout(layout) -> Promise, zoomDetail (bool).
  function createBoard(opts) {
    const root = opts.root;
    const sectionsEl = root.querySelector(".chart-sections");
    const runs = opts.runs;
    const runIndex = new Map(runs.map((r, i) => [String(r.id), i]));
    const notes = opts.notes || {};
    const layout = opts.layout || {};
    const settings = {
      smoothing: typeof layout.smoothing === "number" ? layout.smoothing : 0,
      log: layout.log === true,
      x: X_AXES[layout.x] ? layout.x : "step",
    };
    const panels = new Map(); // key -> panel, in the layout's order
    const hidden = new Set(); // run ids switched off in the legends, in every chart at once
    const mappings = {}; // axis -> {runId: [[step, x]]}
    const extraPoints = new Map(); // mapping keys not charted: key -> {runId: Map(step -> value)}
    const syncKey = `triad-charts-${++boards}`;
    const resizer = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const panel = entry.target._panel;
        if (panel && panel.plot) {
          const width = Math.max(200, Math.floor(entry.contentRect.width));
          if (width !== panel.plot.width) panel.plot.setSize({ width, height: panel.height });
        }
      }
    });
    let saveTimer = null;
    let wallTimer = null;

    function currentLayout() {
      return {
        panels: Array.from(panels.values()).map((p) => ({ key: p.key, full: p.full })),
        smoothing: settings.smoothing, log: settings.log, x: settings.x,
      };
    }

    function changed() {
      clearTimeout(saveTimer);
      saveTimer = setTimeout(() => {
        Promise.resolve(opts.saveLayout(currentLayout())).then((ok) => {
          if (ok) root.dataset.layoutSaves = String(Number(root.dataset.layoutSaves || 0) + 1);
        });
      }, 300);
    }

    // ---------------------------------------------------------------- sections and figures
    const prefixOf = (key) => (key.includes("/") ? key.slice(0, key.indexOf("/") + 1) : "general");

    function sectionFor(key) {
      const prefix = prefixOf(key);
      let section = Array.from(sectionsEl.children).find((s) => s.dataset.prefix === prefix);
      if (!section) {
        section = el("details", { className: "chart-section", open: true, "data-prefix": prefix });
        const summary = el("summary", {}, prefix);
        summary.appendChild(el("span", { className: "muted chart-count" }));
        section.append(summary, el("div", { className: "charts" }));
        sectionsEl.appendChild(section);
      }
      return section;
    }

    function countSections() {
      for (const section of Array.from(sectionsEl.children)) {
        const n = section.querySelectorAll("figure.chart").length;
        if (!n) { section.remove(); continue; }
        section.querySelector(".chart-count").textContent = ` ${n}`;
        // Its share of a row (static/css/charts.css); a full-width panel takes its section's whole row.
        section.style.setProperty("--n", section.querySelector(".chart-full") ? "99" : String(n));
      }
    }

    // The same markup as templates/runs/_chart_panel.html, which draws the first panels on the server.
    function makeFigure(key, full) {
      const note = notes[key] || {};
      const fig = el("figure", {
        className: "chart card" + (full ? " chart-full" : ""), "data-key": key, "data-points": "0",
        title: note.title || null, "data-testid": note.testid || null,
      });
      const caption = el("figcaption");
      caption.append(el("span", { className: "chart-title" }, key), " ", el("span", { className: "muted latest" }));
      const tools = el("span", { className: "chart-tools" });
      tools.append(
        el("button", { type: "button", className: "chart-btn", "data-action": "left", "aria-label": `Move ${key} earlier`, title: "Move earlier" }, "←"),
        el("button", { type: "button", className: "chart-btn", "data-action": "full", "aria-pressed": String(full), "aria-label": `Full width: ${key}`, title: "Full width" }, "⤢"),
        el("button", { type: "button", className: "chart-btn", "data-action": "remove", "aria-label": `Remove ${key}`, title: "Remove this chart" }, "×"),
      );
      caption.appendChild(tools);
      const empty = el("p", { className: "empty-chart muted" }, note.empty || "No points yet: they appear here live as the trainer reports them.");
      fig.append(caption, el("div", { className: "plot" }), el("div", { className: "chart-legend" }), empty);
      return fig;
    }

    function addPanel(key, { full = false, save = true } = {}) {
      if (panels.has(key)) return panels.get(key);
      let fig = Array.from(sectionsEl.querySelectorAll("figure.chart")).find((f) => f.dataset.key === key);
      if (fig) {
        full = fig.classList.contains("chart-full");
      } else {
        fig = makeFigure(key, full);
        sectionFor(key).querySelector(".charts").appendChild(fig);
        countSections();
      }
      const plotEl = fig.querySelector(".plot");
      const panel = { key, fig, plotEl, legendEl: fig.querySelector(".chart-legend"), full, plot: null,
                      height: 200, points: new Map(), view: null };
      fig._panel = panel;
      plotEl._panel = panel;
      panels.set(key, panel);
      resizer.observe(plotEl);
      if (save) changed();
      return panel;
    }

    function removePanel(key) {
      const panel = panels.get(key);
      if (!panel) return;
      resizer.unobserve(panel.plotEl);
      if (panel.plot) panel.plot.destroy();
      panel.fig.remove();
      panels.delete(key);
      countSections();
      changed();
    }

    function movePanel(key) {
      // Earlier within its section (and in the saved order).
      const panel = panels.get(key);
      const prev = panel.fig.previousElementSibling;
      if (!prev) return;
      prev.before(panel.fig);
      const order = Array.from(panels.keys());
      const i = order.indexOf(key), j = order.indexOf(prev.dataset.key);
      order.splice(i, 1);
      order.splice(j, 0, key);
      const entries = new Map(order.map((k) => [k, panels.get(k)]));
      panels.clear();
      entries.forEach((v, k) => panels.set(k, v));
      changed();
    }

    sectionsEl.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-action]");
      if (!button) return;
      const fig = button.closest("figure.chart");
      const key = fig.dataset.key;
      if (button.dataset.action === "remove") removePanel(key);
      else if (button.dataset.action === "left") movePanel(key);
      else if (button.dataset.action === "full") {
        const panel = panels.get(key);
        panel.full = !panel.full;
        fig.classList.toggle("chart-full", panel.full);
        button.setAttribute("aria-pressed", String(panel.full));
        countSections();
        changed();
      }
    });

    // ---------------------------------------------------------------- points
    function store(key) {
      const panel = panels.get(key);
      if (panel) return panel.points;
      if (!extraPoints.has(key)) extraPoints.set(key, new Map());
      return extraPoints.get(key);
    }

    // series: {key: {runId: [[step, value], ...]}}; returns the keys that changed.
    function addSeries(series) {
      const touched = new Set();
      for (const [key, perRun] of Object.entries(series || {})) {
        const axisKeys = Object.values(X_AXES).map((a) => a.key);
        if (!panels.has(key) && !axisKeys.includes(key)) continue;
        const points = store(key);
        for (const [runId, pts] of Object.entries(perRun || {})) {
          if (!points.has(runId)) points.set(runId, new Map());
          const byStep = points.get(runId);
          for (const [step, value] of pts) byStep.set(step, value);
        }
        touched.add(key);
      }
      for (const key of touched) if (panels.has(key)) render(panels.get(key));
      // Live steps past the wall-time mapping are not drawn until it is read again: at most every 5 s.
      if (settings.x === "wall" && touched.size && !wallTimer) {
        wallTimer = setTimeout(async () => {
          mappings.wall = await opts.loadMapping("wall");
          wallTimer = null;
          renderAll();
        }, 5000);
      }
      // A live tokens or dollars point moves that axis on: every chart drawn on it is redrawn.
      if (settings.x !== "step" && X_AXES[settings.x].key && touched.has(X_AXES[settings.x].key)) {
        panels.forEach((p) => { if (!touched.has(p.key)) render(p); });
      }
      return touched;
    }

    function mappingFor(runId) {
      if (settings.x === "step") return null;
      const axisKey = X_AXES[settings.x].key;
      if (!axisKey) return (mappings.wall || {})[runId] || [];
      const pts = (panels.has(axisKey) ? panels.get(axisKey).points : extraPoints.get(axisKey) || new Map()).get(runId);
      if (!pts) return [];
      const steps = Array.from(pts.keys()).sort((a, b) => a - b);
      // A cumulative count only grows: a point below the one before (a resumed attempt's first
      // report) would fold the axis back, so it is left out.
      const out = [];
      for (const s of steps) {
        const x = pts.get(s);
        if (Number.isFinite(x) && (!out.length || x >= out[out.length - 1][1])) out.push([s, x]);
      }
      return out;
    }

    // ---------------------------------------------------------------- drawing
    function build(panel) {
      // Every run's points on the chosen x; one x array for all (uPlot's aligned data), gaps as null.
      const perRun = [];
      const xs = new Set();
      for (const run of runs) {
        const byStep = panel.points.get(String(run.id));
        if (!byStep || !byStep.size) continue;
        const steps = Array.from(byStep.keys()).sort((a, b) => a - b);
        const mapping = mappingFor(String(run.id));
        const rows = [];
        for (const s of steps) {
          let x = mapping ? mapStep(mapping, s) : s;
          if (x == null) continue;
          if (settings.x === "wall") x = x / 60;
          rows.push([x, byStep.get(s)]);
        }
        if (!rows.length) continue;
        const values = rows.map((r) => (settings.log && !(r[1] > 0) ? null : r[1]));
        const smooth = ema(values, settings.smoothing);
        perRun.push({ run, index: runIndex.get(String(run.id)), rows, values, smooth });
        rows.forEach((r) => xs.add(r[0]));
      }
      const x = Array.from(xs).sort((a, b) => a - b);
      const pos = new Map(x.map((v, i) => [v, i]));
      const data = [x];
      const series = [{ label: X_AXES[settings.x].label }];
      for (const r of perRun) {
        const smoothed = new Array(x.length).fill(null);
        const raw = new Array(x.length).fill(null);
        r.rows.forEach((row, i) => {
          const at = pos.get(row[0]);
          // Two steps mapped to the same x (no token generated in between): the later one is kept.
          raw[at] = r.values[i];
          smoothed[at] = r.smooth[i];
        });
        const show = !hidden.has(String(r.run.id));
        data.push(smoothed);
        series.push({ label: r.run.label, stroke: colour(r.index), width: 1.75, spanGaps: true, show,
                      points: { show: r.rows.length < 60 } });
        if (settings.smoothing > 0) {
          data.push(raw);
          series.push({ label: `${r.run.label} raw`, stroke: colour(r.index, 0.25), width: 1, spanGaps: true,
                        show, points: { show: false } });
        }
      }
      return { data, series, perRun, steps: x.length };
    }

    function legendAt(panel, idx) {
      // Every visible run's value at the hovered x; where a run has no point exactly there, its
      // nearest one (runs report at different steps), and with no cursor, its latest.
      const view = panel.view;
      const legend = panel.legendEl;
      legend.textContent = "";
      if (!view) return;
      const stride = settings.smoothing > 0 ? 2 : 1;
      view.perRun.forEach((r, i) => {
        const col = view.data[1 + i * stride];
        let v = null;
        if (idx == null) {
          for (let j = col.length - 1; j >= 0 && v == null; j--) v = col[j];
        } else {
          for (let d = 0; d < col.length && v == null; d++) {
            if (idx - d >= 0 && col[idx - d] != null) v = col[idx - d];
            else if (idx + d < col.length && col[idx + d] != null) v = col[idx + d];
            if (idx - d < 0 && idx + d >= col.length) break;
          }
        }
        const off = hidden.has(String(r.run.id));
        const item = el("button", { type: "button", className: "legend-item" + (off ? " off" : ""),
                                    "data-run": String(r.run.id), "aria-pressed": String(!off),
                                    title: off ? "Show this run" : "Hide this run" });
        const swatch = el("span", { className: "swatch" });
        swatch.style.background = colour(r.index);
        item.append(swatch, el("span", {}, r.run.label), " ", el("span", { className: "legend-value" }, off ? "" : fmt(v)));
        legend.appendChild(item);
      });
      if (idx != null && view.data[0][idx] != null) {
        legend.prepend(el("span", { className: "muted legend-x" }, `${X_AXES[settings.x].label} ${fmt(view.data[0][idx])}`));
      }
    }

    function render(panel, { keepX = false } = {}) {
      const view = build(panel);
      const fig = panel.fig;
      panel.view = view;
      fig.dataset.points = String(view.steps);
      fig.dataset.series = String(view.perRun.length);
      fig.dataset.smoothing = String(settings.smoothing);
      fig.dataset.log = String(settings.log);
      fig.dataset.x = settings.x;
      fig.querySelector(".empty-chart").hidden = view.steps > 0;
      if (runs.length === 1 && view.perRun.length) {
        const values = view.perRun[0].rows;
        fig.querySelector(".latest").textContent = fmt(values[values.length - 1][1]);
      }
      const shape = `${view.series.length}|${settings.log}|${settings.x}`;
      if (panel.plot && panel.shape === shape) {
        const x = panel.plot.scales.x;
        panel.plot.setData(view.data);
        // A run switched off (or on) in a legend: setData keeps the lines' visibility, so set it.
        view.series.forEach((s, i) => {
          if (i > 0 && panel.plot.series[i].show !== s.show) panel.plot.setSeries(i, { show: s.show });
        });
        if (keepX) panel.plot.setScale("x", { min: x.min, max: x.max });
        legendAt(panel, null);
        return;
      }
      if (panel.plot) { panel.plot.destroy(); panel.plot = null; fig._plot = null; }
      if (!view.steps) { legendAt(panel, null); return; }
      const theme = themeColours();
      const axis = { stroke: theme.axis, grid: { stroke: theme.grid, width: 1 }, ticks: { stroke: theme.grid } };
      const yScale = settings.log
        ? { distr: 3, log: 10 }
        : RATE_KEYS.has(panel.key) ? { range: (u, min, max) => [Math.min(0, min), Math.max(1, max)] } : {};
      panel.shape = shape;
      panel.plot = new uPlot({
        width: Math.max(200, panel.plotEl.clientWidth || 360), height: panel.height,
        scales: { x: { time: false }, y: yScale },
        series: view.series,
        axes: [{ ...axis, label: X_AXES[settings.x].label }, { ...axis }],
        legend: { show: false },
        cursor: { sync: { key: syncKey, setSeries: false }, drag: { x: true, y: false } },
        hooks: {
          setCursor: [(u) => legendAt(panel, u.cursor.idx)],
          draw: [(u) => { if (u.data[0].length) fig.dataset.drawn = "true"; }],
          setSelect: [(u) => {
            if (u.select.width < 2 || settings.x !== "step" || !opts.zoomDetail) return;
            const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
            zoom(panel, lo, hi);
          }],
        },
      }, view.data, panel.plotEl);
      fig._plot = panel.plot;
      legendAt(panel, null);
    }

    async function zoom(panel, lo, hi) {
      // A zoomed window is re-read at full detail and merged into the series; the zoom is kept.
      const series = await opts.loadSeries([panel.key], { afterStep: Math.floor(lo) - 1, untilStep: Math.ceil(hi) });
      for (const [runId, pts] of Object.entries(series[panel.key] || {})) {
        if (!panel.points.has(runId)) panel.points.set(runId, new Map());
        for (const [s, v] of pts) panel.points.get(runId).set(s, v);
      }
      render(panel, { keepX: true });
    }

    function renderAll() { panels.forEach((p) => render(p)); }

    root.addEventListener("click", (e) => {
      const item = e.target.closest(".legend-item");
      if (!item) return;
      const id = item.dataset.run;
      if (hidden.has(id)) hidden.delete(id); else hidden.add(id);
      renderAll();
    });

    // ---------------------------------------------------------------- controls
    const controls = root.querySelector(".chart-controls");
    const smoothing = controls.querySelector("[name=smoothing]");
    const smoothingOut = controls.querySelector("output");
    const logBox = controls.querySelector("[name=log]");
    const xSelect = controls.querySelector("[name=x]");
    smoothing.value = String(settings.smoothing);
    smoothingOut.textContent = settings.smoothing.toFixed(2);
    logBox.checked = settings.log;
    xSelect.value = settings.x;
    smoothing.addEventListener("input", () => {
      settings.smoothing = Math.min(0.99, Math.max(0, Number(smoothing.value) || 0));
      smoothingOut.textContent = settings.smoothing.toFixed(2);
      renderAll();
      changed();
    });
    logBox.addEventListener("change", () => { settings.log = logBox.checked; renderAll(); changed(); });
    xSelect.addEventListener("change", async () => {
      settings.x = xSelect.value;
      await ensureAxis();
      renderAll();
      changed();
    });

    async function ensureAxis({ refresh = false } = {}) {
      const axis = X_AXES[settings.x];
      if (settings.x === "wall" && (refresh || !mappings.wall)) mappings.wall = await opts.loadMapping("wall");
      else if (axis.key && !panels.has(axis.key) && !extraPoints.has(axis.key)) addSeries(await opts.loadSeries([axis.key], {}));
    }

    // The metric picker: a search over the keys the runs logged; a click adds the metric's chart.
    const search = controls.querySelector("[name=metric-search]");
    const results = controls.querySelector(".metric-results");
    const liveKeys = new Map(); // keys first seen live, before the server's list is asked again
    let searchTimer = null, searchSeq = 0;
    async function showResults() {
      const q = search.value.trim();
      const seq = ++searchSeq;
      const found = await opts.loadKeys(q);
      if (seq !== searchSeq) return; // a newer search answered first
      const byKey = new Map(found.map((k) => [k.key, k]));
      for (const [key, k] of liveKeys) if (!byKey.has(key) && key.toLowerCase().includes(q.toLowerCase())) byKey.set(key, k);
      const shown = Array.from(byKey.values()).filter((k) => !panels.has(k.key)).sort((a, b) => (a.key < b.key ? -1 : 1));
      results.textContent = "";
      for (const k of shown.slice(0, 50)) {
        const li = el("li");
        li.appendChild(el("button", { type: "button", className: "metric-option", "data-key": k.key }, k.key));
        if (k.detail) li.append(" ", el("span", { className: "muted" }, k.detail));
        results.appendChild(li);
      }
      if (!shown.length) results.appendChild(el("li", { className: "muted" }, q ? `No metric matches "${q}".` : "Every metric is charted."));
      if (shown.length > 50) results.appendChild(el("li", { className: "muted" }, `${shown.length - 50} more: narrow the search.`));
      results.hidden = false;
    }
    search.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(showResults, 150); });
    search.addEventListener("focus", showResults);
    search.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { results.hidden = true; search.blur(); }
      if (e.key === "Enter") { e.preventDefault(); const first = results.querySelector(".metric-option"); if (first) first.click(); }
    });
    results.addEventListener("click", async (e) => {
      const button = e.target.closest(".metric-option");
      if (!button) return;
      const key = button.dataset.key;
      const panel = addPanel(key);
      button.closest("li").remove();
      render(panel);
      const series = await opts.loadSeries([key], {});
      addSeries(series);
      render(panel);
      panel.fig.scrollIntoView({ block: "nearest" });
    });
    document.addEventListener("click", (e) => {
      if (!controls.contains(e.target)) results.hidden = true;
    });

    // The theme may change under the charts (the toggle, the system's dark mode): redraw in its colours.
    const redraw = () => panels.forEach((p) => { if (p.plot) { p.plot.destroy(); p.plot = null; } render(p); });
    new MutationObserver(redraw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme", "class"] });
    if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);

    for (const p of layout.panels || []) addPanel(p.key, { full: !!p.full, save: false });
    countSections();

    return {
      panels, settings, addPanel, addSeries, render, renderAll, ensureAxis, layout: currentLayout,
      // Keys the page sees live that the picker did not list yet.
      noteKey(key, detail) { if (!liveKeys.has(key)) liveKeys.set(key, { key, detail }); },
      keysWanted() {
        const keys = new Set(panels.keys());
        if (X_AXES[settings.x].key) keys.add(X_AXES[settings.x].key);
        return Array.from(keys);
      },
    };
  }

  // The CSRF token every page carries for htmx (base.html), for the layout's PUT.
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  async function saveLayout(url, layout) {
    const resp = await fetch(url, {
      method: "PUT", credentials: "same-origin", body: JSON.stringify(layout),
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    });
    return resp.ok;
  }

  window.TriadCharts = { createBoard, colour, ema, mapStep, saveLayout, themeColours, X_AXES };
})();
