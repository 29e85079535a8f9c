// The dataset page's diversity chart: each measure by version number, one line per measure
// (static/js/inline_chart.js draws it).
window.triadInlineChart("diversity-chart", "diversity-data", 240, (data, axes) => {
  const keys = ["shapes_frac", "ngram_frac", "near_dup_rate", "ancestor_near_dup_rate"];
  const hues = [220, 145, 14, 330];
  return [
    {
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
    },
    [data.versions, ...keys.map((k) => data[k])],
  ];
});
