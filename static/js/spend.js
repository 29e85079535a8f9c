// The spend dashboard's chart: USD per UTC day, as bars. Data comes inline (json_script), no fetch.
(function () {
  "use strict";
  const dataEl = document.getElementById("spend-by-day");
  const fig = document.getElementById("spend-chart");
  if (!dataEl || !fig) return;
  const data = JSON.parse(dataEl.textContent);
  const xs = data.days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
  const el = fig.querySelector(".plot");
  const axes = () => (window.triadTheme ? window.triadTheme.chartAxes() : {});
  let plot = null;
  function draw() {
    if (plot) plot.destroy();
    plot = new uPlot({
      width: Math.max(320, el.clientWidth || 720), height: 220,
      scales: { x: { time: true } },
      series: [
        {},
        { label: "USD", stroke: "#3b6fd8", fill: "rgba(59,111,216,0.25)", width: 1,
          paths: uPlot.paths.bars({ size: [0.6, 40] }), points: { show: false } },
      ],
      axes: [axes(), { ...axes(), label: "USD", values: (u, ticks) => ticks.map((t) => "$" + t.toFixed(2)) }],
      legend: { show: true },
    }, [xs, data.usd], el);
  }
  draw();
  document.addEventListener("triad:themechange", draw); // the axes' colours are drawn into the canvas
})();
