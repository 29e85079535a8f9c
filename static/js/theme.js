// The colour theme: light, dark, or the system's (no choice saved). Loaded in <head> without defer, so
// the saved choice is on <html data-theme> before the first paint and a dark page never flashes white.
// The header's button (#theme-toggle) and the `t` shortcut cycle system → light → dark → system; the
// choice lives in localStorage ("triad-theme"). Charts take their axis colours from
// triadTheme.chartAxes() and listen for "triad:themechange" to redraw.
(function () {
  "use strict";
  const KEY = "triad-theme";
  const ORDER = ["system", "light", "dark"];
  const root = document.documentElement;

  function saved() {
    try {
      const value = window.localStorage.getItem(KEY);
      return value === "light" || value === "dark" ? value : "system";
    } catch (e) {
      return "system"; // storage refused (privacy settings): follow the system
    }
  }

  function apply(choice) {
    if (choice === "system") root.removeAttribute("data-theme");
    else root.setAttribute("data-theme", choice);
  }

  // What the page shows now, whatever the choice: "light" or "dark".
  function effective() {
    const choice = saved();
    if (choice !== "system") return choice;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function label(button) {
    const choice = saved();
    button.textContent = `Theme: ${choice}`;
    button.title = choice === "system" ? `Following the system (${effective()} now); click to change` : "Click to change";
    button.dataset.themeChoice = choice;
  }

  function set(choice) {
    try {
      if (choice === "system") window.localStorage.removeItem(KEY);
      else window.localStorage.setItem(KEY, choice);
    } catch (e) {
      /* not saved; this page still changes */
    }
    apply(choice);
    const button = document.getElementById("theme-toggle");
    if (button) label(button);
    document.dispatchEvent(new CustomEvent("triad:themechange", { detail: { choice, theme: effective() } }));
  }

  function cycle() {
    set(ORDER[(ORDER.indexOf(saved()) + 1) % ORDER.length]);
  }

  // Axis and grid colours for a uPlot chart, from the theme's --chart-axis and --chart-grid (uPlot draws on
  // a canvas, which CSS does not reach); uPlot's own colours where they are unset.
  function chartAxes() {
    const style = getComputedStyle(root);
    const axis = style.getPropertyValue("--chart-axis").trim() || "#000";
    const grid = style.getPropertyValue("--chart-grid").trim() || "rgba(0,0,0,0.07)";
    return { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  }

  apply(saved());
  window.triadTheme = { saved, effective, set, cycle, chartAxes };

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    label(button);
    button.addEventListener("click", cycle);
  });
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      if (saved() !== "system") return;
      const button = document.getElementById("theme-toggle");
      if (button) label(button);
      document.dispatchEvent(new CustomEvent("triad:themechange", { detail: { choice: "system", theme: effective() } }));
    });
  }
})();
