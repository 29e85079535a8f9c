// A chart whose data comes inline with the page (json_script), no fetch: the spend dashboard's and the
// dataset page's. Draws once, and again when the theme changes (the axes' colours are drawn into the
// canvas, so CSS alone cannot recolour them).
(function () {
  "use strict";
  // build(data, axes) returns [uPlot options without width, the series' arrays].
  window.triadInlineChart = function (figureId, dataId, height, build) {
    const dataEl = document.getElementById(dataId);
    const fig = document.getElementById(figureId);
    if (!dataEl || !fig || !window.uPlot) return;
    const data = JSON.parse(dataEl.textContent);
    const el = fig.querySelector(".plot");
    const axes = () => (window.triadTheme ? window.triadTheme.chartAxes() : {});
    let plot = null;
    function draw() {
      if (plot) plot.destroy();
      const [opts, series] = build(data, axes);
      plot = new uPlot({ width: Math.max(320, el.clientWidth || 720), height, legend: { show: true }, ...opts }, series, el);
    }
    draw();
    document.addEventListener("triad:themechange", draw);
  };
})();
