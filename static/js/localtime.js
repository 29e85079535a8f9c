// Times in the browser's time zone on every page: {% when %} writes <time class="when"> in UTC (the title
// keeps it, for hover); this rewrites the text, on load and after every htmx swap.
(function () {
  "use strict";
  const pad = (n) => String(n).padStart(2, "0");
  function local(el) {
    const t = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(t.getTime())) return;
    let text = `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}`;
    if (el.hasAttribute("data-seconds")) text += `:${pad(t.getSeconds())}`;
    el.textContent = text;
    el.dataset.local = "true";
  }
  function localize(root) {
    (root || document).querySelectorAll("time.when:not([data-local])").forEach(local);
  }
  window.triadLocalTimes = localize;
  document.addEventListener("DOMContentLoaded", () => localize(document));
  document.addEventListener("htmx:afterSettle", (e) => localize(e.target));
})();
