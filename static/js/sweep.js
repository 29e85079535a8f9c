// The sweep page's parallel-coordinates plot: one vertical axis per swept setting, then best and final
// pass rate; one polyline per run. Plain SVG, no library. Text goes in with textContent only (setting
// values and run names are the user's). Colours come from the theme's CSS variables, with fallbacks.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";

  function themeColour(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function el(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  // An axis's scale: numbers linearly (log when every value is positive and they span 100×), anything
  // else as evenly spaced categories in order of first appearance.
  function scaleFor(values) {
    const present = values.filter((v) => v !== null && v !== undefined);
    const numeric = present.length > 0 && present.every((v) => typeof v === "number" && isFinite(v));
    if (numeric) {
      let lo = Math.min(...present), hi = Math.max(...present);
      const log = lo > 0 && hi / lo >= 100;
      const f = log ? Math.log10 : (v) => v;
      let a = f(lo), b = f(hi);
      if (a === b) { a -= 1; b += 1; }
      return {
        at: (v) => (v === null || v === undefined ? null : (f(v) - a) / (b - a)),
        ticks: [lo, hi].filter((v, i, all) => all.indexOf(v) === i),
        label: (v) => (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(1) : String(+v.toPrecision(4))),
      };
    }
    const cats = [];
    for (const v of present) if (!cats.includes(String(v))) cats.push(String(v));
    return {
      at: (v) => (v === null || v === undefined ? null : cats.length === 1 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1)),
      ticks: cats,
      label: (v) => String(v),
    };
  }

  function draw(root, data) {
    root.replaceChildren();
    const width = Math.max(320, root.clientWidth || 640), height = 280;
    const pad = { left: 40, right: 40, top: 28, bottom: 24 };
    const axes = data.axes, runs = data.runs;
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}` }, root);
    const fg = themeColour("--fg", "#222"), muted = themeColour("--muted", "#777");
    const axisColour = themeColour("--chart-axis", muted), accent = themeColour("--accent", "#2563eb");
    const dim = themeColour("--chart-grid", "#bbb");
    const x = (i) => pad.left + (axes.length === 1 ? 0 : (i * (width - pad.left - pad.right)) / (axes.length - 1));
    const y = (t) => pad.top + (1 - t) * (height - pad.top - pad.bottom);
    const scales = axes.map((_, i) => scaleFor(runs.map((r) => r.values[i])));

    axes.forEach((name, i) => {
      el("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), stroke: axisColour }, svg);
      const title = el("text", { x: x(i), y: 14, "text-anchor": "middle", fill: fg, "font-size": 12 }, svg);
      title.textContent = name;
      for (const tick of scales[i].ticks) {
        const t = scales[i].at(tick);
        const label = el("text", { x: x(i) + 4, y: y(t) + 4, fill: muted, "font-size": 10 }, svg);
        label.textContent = scales[i].label(tick);
      }
    });
    // The best run last, so it is drawn on top.
    const ordered = runs.filter((r) => !r.best).concat(runs.filter((r) => r.best));
    for (const run of ordered) {
      const points = [];
      run.values.forEach((v, i) => {
        const t = scales[i].at(v);
        if (t !== null) points.push(`${x(i)},${y(t)}`);
      });
      const line = el("polyline", {
        points: points.join(" "),
        fill: "none",
        stroke: run.best ? accent : dim,
        "stroke-width": run.best ? 3 : 1.5,
        "stroke-dasharray": run.halted ? "4 3" : "none",
        "data-run": run.id,
      }, svg);
      const tip = el("title", {}, line);
      tip.textContent = run.name + (run.best ? " (best)" : "");
    }
    root.dataset.lines = String(runs.length);
    root.dataset.drawn = "true";
  }

  // The data sits in the runs table's part, which htmx refreshes while the sweep is active: read it
  // afresh for every drawing.
  function redraw() {
    const root = document.getElementById("sweep-plot");
    const source = document.getElementById("sweep-plot-data");
    if (root && source) draw(root, JSON.parse(source.textContent));
  }

  function start() {
    redraw();
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(redraw, 150);
    });
    // htmx:load fires on content htmx has just put in (the refreshed runs part), once it is in place.
    document.body.addEventListener("htmx:load", (event) => {
      if (event.target && event.target.id === "sweep-runs") redraw();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
