// System metrics charts (docs/runs.md, "System metrics"): CPU, memory and per-GPU utilisation, memory and
// temperature over time, for the node page and the run page's System card. The root element names the
// JSON to read (data-samples-url): one node's samples ({node, times, series}) or a run's nodes'
// ({nodes: [...]}); it is read again every data-refresh-s seconds while the page is open.
// Text from the server (node names, keys) is written with textContent only.
(function () {
  "use strict";

  const PALETTE = ["#3b6fd8", "#d8713b", "#2f9e5b", "#a43bd8", "#d83b6f", "#8a7a1f", "#1f8a8a", "#555"];

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // What is charted: one chart per entry, its series picked from the sample's keys.
  const CHARTS = [
    { id: "cpu", title: "CPU %", unit: "%", max: 100, pick: (k) => k === "cpu_percent" ? "CPU" : null },
    { id: "memory", title: "Memory %", unit: "%", max: 100, pick: (k) => k === "memory_percent" ? "memory" : null },
    { id: "gpu-util", title: "GPU utilisation %", unit: "%", max: 100, pick: (k) => gpuLabel(k, "util_percent") },
    { id: "gpu-memory", title: "GPU memory GB", unit: "GB", pick: (k) => gpuLabel(k, "memory_used_gb") },
    { id: "gpu-temperature", title: "GPU temperature °C", unit: "°C", pick: (k) => gpuLabel(k, "temperature_c") },
  ];

  function gpuLabel(key, field) {
    const match = /^gpu(\d+)\/(.+)$/.exec(key);
    return match && match[2] === field ? `GPU ${match[1]}` : null;
  }

  function latestText(values, unit) {
    for (let i = values.length - 1; i >= 0; i--) {
      if (values[i] !== null && values[i] !== undefined) return `${Number(values[i]).toFixed(1)} ${unit}`;
    }
    return "";
  }

  function figure(container, nodeName, spec) {
    const fig = document.createElement("figure");
    fig.className = "chart card system-chart";
    fig.dataset.key = spec.id;
    fig.dataset.node = nodeName;
    fig.dataset.points = "0";
    const caption = document.createElement("figcaption");
    caption.textContent = spec.title + " ";
    const latest = document.createElement("span");
    latest.className = "muted latest";
    caption.appendChild(latest);
    const plot = document.createElement("div");
    plot.className = "plot";
    fig.append(caption, plot);
    container.appendChild(fig);
    return fig;
  }

  function draw(state, spec, read) {
    const keys = Object.keys(read.series).filter((k) => spec.pick(k) !== null).sort();
    if (!keys.length) return;  // no GPU on this node: no GPU charts
    let chart = state.charts.get(spec.id);
    if (!chart) {
      chart = { fig: figure(state.grid, read.node, spec), plot: null, keys: [] };
      state.charts.set(spec.id, chart);
    }
    const data = [read.times, ...keys.map((k) => read.series[k])];
    chart.fig.dataset.points = String(read.times.length);
    const extra = spec.id === "memory" ? latestText(read.series.memory_used_gb || [], "GB used · ") : "";
    chart.fig.querySelector(".latest").textContent =
      extra + keys.map((k) => `${spec.pick(k)} ${latestText(read.series[k], spec.unit)}`).join(" · ");
    if (chart.plot && chart.keys.join() === keys.join()) {
      chart.plot.setData(data);
    } else {
      if (chart.plot) chart.plot.destroy();
      chart.keys = keys;
      const el = chart.fig.querySelector(".plot");
      const axis = { stroke: cssVar("--chart-axis", "#666"), grid: { stroke: cssVar("--chart-grid", "#eee") } };
      chart.plot = new uPlot({
        width: Math.max(260, el.clientWidth || 360), height: 180,
        scales: { x: { time: true }, y: spec.max ? { range: () => [0, spec.max] } : { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        series: [{ label: "time" }, ...keys.map((k, i) => ({
          label: spec.pick(k),
          stroke: i === 0 ? cssVar("--accent", PALETTE[0]) : PALETTE[i % PALETTE.length],
          width: 2,
          spanGaps: false,
          points: { show: read.times.length < 60 },
        }))],
        axes: [axis, axis],
        legend: { show: keys.length > 1 },
      }, data, el);
    }
    if (read.times.length) chart.fig.dataset.drawn = "true";
  }

  function section(root, read, several) {
    let state = root._systemNodes.get(read.node);
    if (!state) {
      const wrap = document.createElement("div");
      wrap.className = "system-node";
      wrap.dataset.node = read.node;
      if (several) {
        const heading = document.createElement("h3");
        heading.textContent = read.node;
        wrap.appendChild(heading);
      }
      const grid = document.createElement("div");
      grid.className = "system-grid";
      wrap.appendChild(grid);
      root.querySelector(".system-nodes").appendChild(wrap);
      state = { grid, charts: new Map() };
      root._systemNodes.set(read.node, state);
    }
    for (const spec of CHARTS) draw(state, spec, read);
  }

  async function load(root) {
    let answer;
    try {
      const response = await fetch(root.dataset.samplesUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      answer = await response.json();
    } catch (err) {
      return;  // the server is away for a moment: the next refresh tries again
    }
    const reads = answer.nodes || [answer];
    const withPoints = reads.filter((read) => read.times.length);
    root.querySelector(".system-empty").hidden = withPoints.length > 0;
    for (const read of withPoints) section(root, read, reads.length > 1);
    root.dataset.loaded = "true";
  }

  function resize(root) {
    for (const state of root._systemNodes.values()) {
      for (const chart of state.charts.values()) {
        if (!chart.plot) continue;
        const width = Math.max(260, chart.fig.querySelector(".plot").clientWidth || 360);
        if (width !== chart.plot.width) chart.plot.setSize({ width, height: 180 });
      }
    }
  }

  function start(root) {
    root._systemNodes = new Map();
    load(root);
    const every = Number(root.dataset.refreshS || 0);
    if (every > 0) setInterval(() => { if (!document.hidden) load(root); }, every * 1000);
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => resize(root), 150);
    });
  }

  document.querySelectorAll("[data-system-charts]").forEach(start);
})();
