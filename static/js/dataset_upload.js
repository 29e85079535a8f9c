// Drag-and-drop onto the dataset upload form, and its progress bar: the bytes as they upload, then an
// indeterminate bar while the server imports. Listeners are delegated, so they survive htmx swaps.
(() => {
  const zone = (el) => el && el.closest && el.closest("#drop-zone");
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => {
      if (!zone(e.target)) return;
      e.preventDefault();
      zone(e.target).classList.add("dragover");
    });
  }
  document.addEventListener("dragleave", (e) => { if (zone(e.target)) zone(e.target).classList.remove("dragover"); });
  document.addEventListener("drop", (e) => {
    const dropZone = zone(e.target);
    if (!dropZone) return;
    e.preventDefault();
    dropZone.classList.remove("dragover");
    const form = document.getElementById("upload-form");
    const input = form && form.querySelector("input[type=file]");
    if (!input || !e.dataTransfer.files.length) return;
    input.files = e.dataTransfer.files;
    const name = form.querySelector("input[name=name]");
    if (name && !name.value) name.value = e.dataTransfer.files[0].name.replace(/\.jsonl(\.gz)?$/i, "");
    document.getElementById("drop-zone-file").textContent = e.dataTransfer.files[0].name;
    form.requestSubmit();
  });
  document.addEventListener("change", (e) => {
    if (e.target.matches && e.target.matches("#upload-form input[type=file]") && e.target.files.length) {
      const label = document.getElementById("drop-zone-file");
      if (label) label.textContent = e.target.files[0].name;
    }
  });
  document.body.addEventListener("htmx:xhr:progress", (e) => {
    const bar = document.getElementById("upload-progress");
    const text = document.getElementById("upload-progress-text");
    if (!bar || !e.detail.lengthComputable) return;
    bar.hidden = false;
    if (e.detail.loaded >= e.detail.total) {
      bar.removeAttribute("value");  // indeterminate: the server is importing
      if (text) text.textContent = "Uploaded; importing…";
    } else {
      bar.value = (e.detail.loaded / e.detail.total) * 100;
      if (text) text.textContent = `Uploading… ${Math.round(bar.value)}%`;
    }
  });
})();
