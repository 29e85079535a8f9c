// Overlaid charts of several runs: one uPlot per metric, one series per run, aligned on step.
(function () {
  "use strict";
  const root = document.getElementById("compare-charts");
  if (!root) return;
  const runIds = root.dataset.runs.split(",").filter(Boolean);
  const urlFor = (id) => root.dataset.metricsUrlTemplate.replace("/0/", `/${id}/`);
  const PALETTE = ["#3b6fd8", "#d8573b", "#2f9e5b", "#9b59b6", "#e0a100", "#16a2b8", "#c2185b", "#6d4c41",
                   "#455a64", "#7cb342"];
  const colour = (i) => PALETTE[i % PALETTE.length];
  document.querySelectorAll("[data-swatch]").forEach((el) => {
    el.style.background = colour(Number(el.dataset.swatch));
  });
  const figures = Array.from(root.querySelectorAll("figure.chart"));
  const keys = figures.map((f) => f.dataset.key);

  Promise.all(runIds.map((id) =>
    fetch(`${urlFor(id)}?max_points=2000&keys=${encodeURIComponent(keys.join(","))}`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : { series: {} }))
  )).then((answers) => {
    for (const fig of figures) {
      const key = fig.dataset.key;
      const perRun = answers.map((a) => new Map((a.series[key] || []).map(([s, v]) => [s, v])));
      const steps = Array.from(new Set(perRun.flatMap((m) => Array.from(m.keys())))).sort((a, b) => a - b);
      const present = perRun.filter((m) => m.size).length;
      fig.dataset.series = String(present);
      if (!steps.length) { fig.querySelector(".plot").textContent = "No points in any of these runs."; continue; }
      const data = [steps, ...perRun.map((m) => steps.map((s) => (m.has(s) ? m.get(s) : null)))];
      const el = fig.querySelector(".plot");
      new uPlot({
        width: Math.max(260, el.clientWidth || 360), height: 200,
        scales: { x: { time: false } },
        series: [{ label: "step" }, ...runIds.map((id, i) => ({ label: `#${id}`, stroke: colour(i), width: 1.5,
                                                                 spanGaps: true }))],
        legend: { show: true },
      }, data, el);
    }
  });
})();
