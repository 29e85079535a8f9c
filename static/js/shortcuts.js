// Keyboard shortcuts on every page, listed by `?`. A page declares its own with attributes on the element
// they act on:  data-shortcut="g r" (one key, or a sequence: `g` then `r`)  and data-shortcut-help="…"
// (what it does; a link's text otherwise). Pressing the keys clicks the element (a link, a button) or
// focuses it (an input). Keys that the page's own script handles (the review page's j/k/1–5/u/c:
// static/js/review.js) carry data-shortcut-handled: they are listed and left to that script.
// Built in: `?` this help, `/` the page's search box. Nothing fires while typing in a field.
(function () {
  "use strict";
  const SEQUENCE_MS = 1500;
  let pending = ""; // the first key of a sequence, while waiting for the second
  let pendingTimer = null;

  const typing = (el) => el && el.closest && el.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]");
  const visible = (el) => !el.closest("[hidden]") && el.getClientRects().length > 0;

  function searchBox() {
    const found = Array.from(document.querySelectorAll("main [data-search], main input[type=search], main input[name=q]"));
    return found.find(visible) || null;
  }

  function declared() {
    return Array.from(document.querySelectorAll("[data-shortcut]")).map((el) => ({
      el,
      keys: el.dataset.shortcut.trim().split(/\s+/),
      help: el.dataset.shortcutHelp || (el.matches("a") ? `Go to ${el.textContent.trim()}` : el.textContent.trim()),
      handled: el.hasAttribute("data-shortcut-handled"),
      global: Boolean(el.closest("header")),
    }));
  }

  function run(shortcut) {
    const el = shortcut.el;
    if (el.matches("input, textarea, select")) el.focus();
    else el.click();
  }

  function row(dl, keys, help) {
    const dt = document.createElement("dt");
    keys.forEach((key, i) => {
      if (i) dt.append(" then ");
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      dt.append(kbd);
    });
    const dd = document.createElement("dd");
    dd.textContent = help; // page-supplied text: never parsed as HTML
    dl.append(dt, dd);
  }

  function section(dialog, title, entries) {
    if (!entries.length) return;
    const h3 = document.createElement("h3");
    h3.textContent = title;
    const dl = document.createElement("dl");
    entries.forEach(([keys, help]) => row(dl, keys, help));
    dialog.append(h3, dl);
  }

  function help() {
    let dialog = document.getElementById("shortcuts-help");
    if (dialog) {
      if (dialog.open) dialog.close();
      else dialog.showModal();
      return;
    }
    dialog = document.createElement("dialog");
    dialog.id = "shortcuts-help";
    dialog.className = "shortcuts";
    dialog.setAttribute("aria-labelledby", "shortcuts-title");
    const h2 = document.createElement("h2");
    h2.id = "shortcuts-title";
    h2.textContent = "Keyboard shortcuts";
    dialog.append(h2);
    const all = declared();
    const everywhere = [[["?"], "Show or hide this help"]];
    if (searchBox()) everywhere.push([["/"], "Search this page"]);
    all.filter((s) => s.global).forEach((s) => everywhere.push([s.keys, s.help]));
    section(dialog, "Everywhere", everywhere);
    section(dialog, "This page", all.filter((s) => !s.global).map((s) => [s.keys, s.help]));
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.addEventListener("click", () => dialog.close());
    const p = document.createElement("p");
    p.append(close);
    dialog.append(p);
    dialog.addEventListener("close", () => dialog.remove()); // rebuilt next time: the page may have changed
    document.body.append(dialog);
    dialog.showModal();
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    const key = event.key;
    if (key === "?") {
      event.preventDefault();
      help();
      return;
    }
    if (document.querySelector("dialog[open]")) return; // keys belong to the open dialog
    if (key === "/" && !pending) {
      const box = searchBox();
      if (box) {
        event.preventDefault();
        box.focus();
        if (box.select) box.select();
      }
      return;
    }
    const typed = pending ? `${pending} ${key}` : key;
    const shortcuts = declared().filter((s) => !s.handled);
    const match = shortcuts.find((s) => s.keys.join(" ") === typed && visible(s.el));
    clearTimeout(pendingTimer);
    pending = "";
    if (match) {
      event.preventDefault();
      run(match);
    } else if (!typed.includes(" ") && shortcuts.some((s) => s.keys.length > 1 && s.keys[0] === typed)) {
      event.preventDefault();
      pending = typed;
      pendingTimer = setTimeout(() => { pending = ""; }, SEQUENCE_MS);
    }
  });
})();
