// The review page's behaviour: move through the queue, decide by key or by click, bulk-apply.
// Hand-written, no libraries: the page must work with nothing fetched from outside.
"use strict";

(function () {
  const token = document.querySelector('meta[name="review-token"]').content;
  const rows = Array.from(document.querySelectorAll("tr.row"));
  const details = Array.from(document.querySelectorAll("section.detail"));
  let current = -1;

  function select(index) {
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0) {
      rows[current].classList.remove("selected");
      details[current].hidden = true;
    }
    current = index;
    rows[current].classList.add("selected");
    details[current].hidden = false;
    rows[current].scrollIntoView({ block: "nearest" });
    history.replaceState(null, "", "#" + current);
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", "x-review-token": token },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      alert(answer.error || "the decision was not stored");
      return null;
    }
    return answer;
  }

  function said(decision) {
    let what = decision.action;
    if (decision.action === "correct") what = "correct → " + decision.label;
    if (decision.action === "reject" && decision.reason) what += " (" + decision.reason + ")";
    return what + " · " + decision.by;
  }

  async function decide(body) {
    const index = current;
    if (index < 0) return;
    body.record_id = rows[index].dataset.id;
    const decision = await post("/api/decisions", body);
    if (!decision) return;
    rows[index].querySelector(".decision").textContent = said(decision);
    details[index].querySelector(".decision").textContent = said(decision);
    rows[index].classList.add("decided");
    if (index === current) select(index + 1);
  }

  function ask(dialog, then) {
    dialog.returnValue = "";
    dialog.addEventListener("close", function once() {
      dialog.removeEventListener("close", once);
      if (dialog.returnValue) then(dialog.returnValue);
    });
    dialog.showModal();
  }

  const correctDialog = document.getElementById("correct-dialog");
  const editDialog = document.getElementById("edit-dialog");
  const rejectDialog = document.getElementById("reject-dialog");
  const bulkDialog = document.getElementById("bulk-dialog");

  function correct() {
    ask(correctDialog, (label) => decide({ action: "correct", label: label }));
  }

  function edit() {
    if (current < 0) return;
    const fields = JSON.parse(rows[current].dataset.fields);
    const box = document.getElementById("edit-fields");
    box.replaceChildren();
    for (const [name, value] of Object.entries(fields)) {
      if (typeof value !== "string") continue;
      const label = document.createElement("label");
      label.textContent = name;
      const area = document.createElement("textarea");
      area.name = name;
      area.value = value;
      area.rows = Math.min(12, 2 + Math.floor(value.length / 80));
      label.appendChild(area);
      box.appendChild(label);
    }
    ask(editDialog, () => {
      const changed = {};
      for (const area of box.querySelectorAll("textarea")) {
        if (area.value !== fields[area.name]) changed[area.name] = area.value;
      }
      if (Object.keys(changed).length) decide({ action: "edit", fields: changed });
    });
  }

  function reject() {
    const input = document.getElementById("reject-reason");
    input.value = "";
    ask(rejectDialog, () => decide({ action: "reject", reason: input.value }));
  }

  function bulk() {
    const count = Number(document.body.dataset.total);
    const filters = JSON.parse(document.body.dataset.filters);
    ask(bulkDialog, async () => {
      const action = document.getElementById("bulk-action").value;
      const body = { action: action, filters: filters, count: count };
      if (action === "correct") body.label = document.getElementById("bulk-label").value;
      if (action === "reject") body.reason = document.getElementById("bulk-reason").value;
      if (await post("/api/bulk", body)) location.reload();
    });
  }

  const actions = { accept: () => decide({ action: "accept" }), correct, edit, reject };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey && event.key === "Enter" && editDialog.open) {
      editDialog.close("save");
      return;
    }
    if (document.querySelector("dialog[open]")) {
      if (correctDialog.open && /^[1-9]$/.test(event.key)) {
        const choice = correctDialog.querySelectorAll(".label-choice")[Number(event.key) - 1];
        if (choice) correctDialog.close(choice.value);
      }
      return;
    }
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey) return;
    const keys = {
      j: () => select(current + 1),
      ArrowDown: () => select(current + 1),
      k: () => select(current - 1),
      ArrowUp: () => select(current - 1),
      a: actions.accept,
      c: correct,
      e: edit,
      r: reject,
      n: () => document.getElementById("next")?.click(),
      p: () => document.getElementById("prev")?.click(),
    };
    const run = keys[event.key];
    if (run) {
      event.preventDefault();
      run();
    }
  });

  rows.forEach((row, index) => row.addEventListener("click", () => select(index)));
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => actions[button.dataset.action]());
  }
  document.getElementById("bulk-open").addEventListener("click", bulk);
  select(Number(location.hash.slice(1)) || 0);
})();
