// The launch form: a preset fills the fields; the Advanced YAML counts only while its section is open
// (a closed section's textarea is disabled, so it is not submitted).
(function () {
  "use strict";
  const form = document.getElementById("launch-form");
  const presetsEl = document.getElementById("launch-presets");
  if (!form || !presetsEl) return;
  const presets = JSON.parse(presetsEl.textContent);
  const picker = form.querySelector("#id_preset");
  if (picker) picker.addEventListener("change", () => {
    const values = presets[picker.value];
    if (!values) return;
    for (const [key, value] of Object.entries(values)) {
      const input = form.querySelector("#id_" + key);
      if (!input) continue;
      if (input.type === "checkbox") input.checked = Boolean(value);  // its value is what a tick sends
      else input.value = value;
    }
  });
  const details = document.getElementById("advanced-config");
  const sync = () => {
    const area = form.querySelector("#id_config_yaml");
    if (area) area.disabled = !details.open;
  };
  details.addEventListener("toggle", () => {
    sync();
    // Closed, the YAML no longer counts: the cost estimate follows the fields again (opening fills the
    // YAML from the fields, which changes nothing until it is edited).
    if (!details.open) form.dispatchEvent(new Event("change"));
  });
  document.body.addEventListener("htmx:afterSettle", sync);
  sync();
})();
