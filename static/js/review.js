// Review of failing generations: the chart of failing classes over steps, and keyboard review.
// j/k move between rows (the generation loads on the right), 1–5 label it, u undoes your latest
// label on it, c comments on your latest label. Everything shown comes from the server, escaped.
(function () {
  "use strict";
  const PALETTE = ["#d8453b", "#3b6fd8", "#e0a100", "#2e9d5b", "#8a3bd8", "#d83b9a", "#555", "#1aa3a3", "#a35b1a"];
  const LABELS = ["model_wrong", "bad_test", "bad_reference", "flaky", "reward_hack"];

  const dataEl = document.getElementById("review-chart-data");
  const chartEl = document.querySelector("#review-chart .plot");
  if (dataEl && chartEl && window.uPlot) {
    const data = JSON.parse(dataEl.textContent);
    const classes = Object.keys(data.series);
    if (data.steps.length) {
      const axes = () => (window.triadTheme ? window.triadTheme.chartAxes() : {});
      let plot = null;
      const draw = () => {
        if (plot) plot.destroy();
        plot = new uPlot({
          width: Math.max(320, chartEl.clientWidth || 640), height: 200,
          scales: { x: { time: false } },
          series: [{ label: "step" }].concat(classes.map((c, i) => ({
            label: c, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: data.steps.length < 60 },
          }))),
          axes: [{ ...axes(), label: "step" }, { ...axes(), label: "failing" }],
        }, [data.steps].concat(classes.map((c) => data.series[c])), chartEl);
      };
      draw();
      document.addEventListener("triad:themechange", draw); // the axes' colours are drawn into the canvas
    } else {
      chartEl.textContent = "No failing generations yet.";
    }
  }

  const detail = document.getElementById("detail");
  if (!detail) return;
  let current = -1;
  const rows = () => Array.from(document.querySelectorAll("tr.gen-row"));
  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  function select(index) {
    const all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((r, i) => r.classList.toggle("current", i === current));
    const row = all[current];
    row.scrollIntoView({ block: "nearest" });
    htmx.ajax("GET", row.dataset.url, { target: "#detail", swap: "innerHTML" });
  }

  // Label, undo and comment requests go one after another, in the order of the keys pressed.
  let queue = Promise.resolve();
  function post(url, body) {
    const row = rows()[current];
    queue = queue.then(() => send(row, url, body)).catch(() => {});
  }

  async function send(row, url, body) {
    const resp = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(body || {}),
    });
    if (!resp.ok) return;
    const html = await resp.text();
    const labels = document.getElementById("labels");
    if (labels) labels.outerHTML = html;
    const chips = detail.querySelectorAll("[data-testid=label]");
    // The newest label is listed first; the row shows it.
    row.querySelector(".row-label").textContent = chips.length ? chips[0].textContent : "";
  }

  document.addEventListener("click", (event) => {
    const row = event.target.closest("tr.gen-row");
    if (row) select(rows().indexOf(row));
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select")) return;
    const row = rows()[current];
    if (event.key === "j") select(current + 1);
    else if (event.key === "k") select(current - 1);
    else if (row && /^[1-5]$/.test(event.key)) post(row.dataset.labelUrl, { label: LABELS[Number(event.key) - 1] });
    else if (row && event.key === "u") post(row.dataset.undoUrl);
    else if (row && event.key === "c") {
      const comment = window.prompt("Comment on your latest label of this generation");
      if (comment) post(row.dataset.commentUrl, { comment });
    } else return;
    event.preventDefault();
  });
})();
