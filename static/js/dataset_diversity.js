// The dataset page's diversity chart: each measure by version number, one line per measure. Data comes
// inline (json_script "diversity-data"), no fetch; redrawn when the theme changes (axes' colours).
(function () {
  "use strict";
  const dataEl = document.getElementById("diversity-data");
  const fig = document.getElementById("diversity-chart");
  if (!dataEl || !fig || !window.uPlot) return;
  const data = JSON.parse(dataEl.textContent);
  const keys = ["shapes_frac", "ngram_frac", "near_dup_rate", "ancestor_near_dup_rate"];
  const hues = [220, 145, 14, 330];
  const el = fig.querySelector(".plot");
  const axes = () => (window.triadTheme ? window.triadTheme.chartAxes() : {});
  let plot = null;
  function draw() {
    if (plot) plot.destroy();
    plot = new uPlot({
      width: Math.max(320, el.clientWidth || 720), height: 240,
      scales: { x: { time: false }, y: { range: [0, 1] } },
      series: [
        { label: "version", value: (u, v) => (v == null ? "–" : "v" + v) },
        ...keys.map((key, i) => ({
          label: data.labels[i], stroke: `hsl(${hues[i]}, 60%, 45%)`, width: 2, spanGaps: true,
          points: { show: true, size: 6 },
        })),
      ],
      axes: [{ ...axes(), label: "version", incrs: [1, 2, 5, 10, 20, 50], values: (u, t) => t.map((v) => "v" + v) },
             { ...axes(), label: "share" }],
      legend: { show: true },
    }, [data.versions, ...keys.map((k) => data[k])], el);
  }
  draw();
  document.addEventListener("triad:themechange", draw);
})();
