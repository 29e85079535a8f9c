// The spend dashboard's chart: USD per UTC day, as bars (static/js/inline_chart.js draws it).
window.triadInlineChart("spend-chart", "spend-by-day", 220, (data, axes) => [
  {
    scales: { x: { time: true } },
    series: [
      {},
      { label: "USD", stroke: "#3b6fd8", fill: "rgba(59,111,216,0.25)", width: 1,
        paths: uPlot.paths.bars({ size: [0.6, 40] }), points: { show: false } },
    ],
    axes: [axes(), { ...axes(), label: "USD", values: (u, ticks) => ticks.map((t) => "$" + t.toFixed(2)) }],
  },
  [data.days.map((d) => Date.parse(d + "T00:00:00Z") / 1000), data.usd],
]);
