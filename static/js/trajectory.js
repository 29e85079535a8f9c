// A repository episode's trajectory (docs/review.md, "Repository episodes"), on its own page and in the
// review page's detail pane: `]`/`[` move to the next/previous turn, `o` opens or folds the current
// turn's long observation. Only classes and scrolling change: every text is the server's, escaped.
(function () {
  "use strict";
  let current = -1;
  const turns = () => Array.from(document.querySelectorAll(".trajectory .turn"));

  function go(delta) {
    const all = turns();
    if (!all.length) return;
    // Another episode loaded into the review page's pane: start again from its first turn.
    if (!all[current] || !all[current].classList.contains("current")) current = -1;
    current = Math.max(0, Math.min(all.length - 1, current + delta));
    all.forEach((t, i) => t.classList.toggle("current", i === current));
    all[current].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select")) return;
    if (event.key === "]") go(1);
    else if (event.key === "[") go(-1);
    else if (event.key === "o") {
      const turn = turns()[current];
      const fold = turn && turn.querySelector("details");
      if (!fold) return;
      fold.open = !fold.open;
    } else return;
    event.preventDefault();
  });
})();
