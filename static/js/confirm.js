// Confirmations (docs/runs.md, "Organizing runs"): a form with data-confirm="question" asks first, in a
// native <dialog>; only its confirm button submits. data-confirm-button / data-confirm-keep name the two
// buttons. Without scripts the form submits as it is (the server still checks everything).
(function () {
  "use strict";
  let dialog = null;
  function build() {
    dialog = document.createElement("dialog");
    dialog.id = "confirm-dialog";
    dialog.className = "confirm-dialog card";
    dialog.setAttribute("aria-labelledby", "confirm-question");
    const question = document.createElement("p");
    question.id = "confirm-question";
    const buttons = document.createElement("form");
    buttons.method = "dialog";
    buttons.className = "confirm-buttons";
    const keep = document.createElement("button");
    keep.value = "keep";
    keep.className = "secondary";
    keep.dataset.testid = "confirm-keep";
    const go = document.createElement("button");
    go.value = "confirm";
    go.className = "danger";
    go.dataset.testid = "confirm-go";
    buttons.append(keep, go);
    dialog.append(question, buttons);
    document.body.appendChild(dialog);
  }
  document.addEventListener(
    "submit",
    (e) => {
      const form = e.target;
      if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
      if (form.dataset.confirmed === "true") {
        delete form.dataset.confirmed; // asks again next time (a page that stays open)
        return;
      }
      e.preventDefault();
      e.stopImmediatePropagation(); // nor htmx, nor the browser, until confirmed
      if (!dialog) build();
      dialog.querySelector("#confirm-question").textContent = form.dataset.confirm; // text, never HTML
      const [keep, go] = dialog.querySelectorAll("button");
      keep.textContent = form.dataset.confirmKeep || "Keep it";
      go.textContent = form.dataset.confirmButton || "Confirm";
      const submitter = e.submitter;
      dialog.onclose = () => {
        if (dialog.returnValue !== "confirm") return;
        form.dataset.confirmed = "true";
        form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
      };
      dialog.returnValue = "";
      dialog.showModal();
      keep.focus(); // the safe choice is the default: Enter or Escape keeps it
    },
    true,
  );
})();
