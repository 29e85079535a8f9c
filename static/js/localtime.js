// Times in the browser's time zone on every page: {% when %} writes <time class="when"> in UTC (the title
// keeps it, for hover); this rewrites the text, on load and after every htmx swap.
(function () {
  "use strict";
  const pad = (n) => String(n).padStart(2, "0");
  // An ISO time (or none: now) as the page shows times, in the browser's zone: the live log's lines use
  // it too, so a line appended live reads like the lines the server rendered.
  function format(iso, seconds) {
    const t = iso ? new Date(iso) : new Date();
    if (Number.isNaN(t.getTime())) return "";
    const text = `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}`;
    return seconds ? `${text}:${pad(t.getSeconds())}` : text;
  }
  function local(el) {
    const text = format(el.getAttribute("datetime"), el.hasAttribute("data-seconds"));
    if (!text) return;
    el.textContent = text;
    el.dataset.local = "true";
  }
  window.triadFormatTime = format;
  function localize(root) {
    (root || document).querySelectorAll("time.when:not([data-local])").forEach(local);
  }
  window.triadLocalTimes = localize;
  document.addEventListener("DOMContentLoaded", () => localize(document));
  document.addEventListener("htmx:afterSettle", (e) => localize(e.target));
})();
