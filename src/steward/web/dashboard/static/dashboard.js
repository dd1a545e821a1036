// Steward dashboard: clicks only. Pages are rendered by the server; this file fetches a heatmap
// cell's overlay and sends review and approval decisions to the JSON API (charts.js draws the
// charts). No dependencies, no inline handlers: the pages' Content-Security-Policy forbids them.
"use strict";

function say(text, isError) {
  const box = document.getElementById("review-message");
  if (!box) return;
  box.textContent = text;
  box.className = isError ? "message error" : "message ok";
}

// The session's CSRF token, from the cookie only pages of this site can read.
function csrfToken() {
  const found = document.cookie.split("; ").find((item) => item.startsWith("steward_csrf="));
  return found ? decodeURIComponent(found.slice("steward_csrf=".length)) : "";
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRF-Token": csrfToken(),
    },
    body: JSON.stringify(body),
  });
  let payload = {};
  try { payload = await response.json(); } catch (_) { payload = {}; }
  if (!response.ok) {
    throw new Error(payload.detail || payload.title || "request failed (" + response.status + ")");
  }
  return payload;
}

function showOverlay(cell) {
  const box = document.getElementById("overlay");
  const map = document.getElementById("heatmap");
  if (!box || !map) return;
  document.querySelectorAll("#heatmap rect.selected").forEach((r) => r.classList.remove("selected"));
  cell.classList.add("selected");
  const query = new URLSearchParams({
    column: cell.dataset.column, start: cell.dataset.start, end: cell.dataset.end,
  });
  box.innerHTML = '<p class="muted small">Loading…</p>';
  fetch("/ui/systems/" + encodeURIComponent(map.dataset.system) + "/drift/cell?" + query)
    .then((response) => response.text().then((text) => ({ ok: response.ok, text: text })))
    .then((result) => {
      box.innerHTML = result.ok ? result.text : '<p class="error">Could not load the overlay.</p>';
    })
    .catch(() => { box.innerHTML = '<p class="error">Could not load the overlay.</p>'; });
}

// A feature page's window: its distribution against the reference, in place of the newest one's.
function showWindow(button) {
  const table = document.getElementById("windows");
  const box = document.getElementById("window-distribution");
  if (!table || !box) return;
  const query = new URLSearchParams({
    column: table.dataset.column, start: button.dataset.start, end: button.dataset.end,
  });
  box.innerHTML = '<p class="muted small">Loading…</p>';
  fetch("/ui/systems/" + encodeURIComponent(table.dataset.system) + "/drift/cell?" + query)
    .then((response) => response.text().then((text) => ({ ok: response.ok, text: text })))
    .then((result) => {
      box.innerHTML = result.ok ? result.text : '<p class="error">Could not load the window.</p>';
    })
    .catch(() => { box.innerHTML = '<p class="error">Could not load the window.</p>'; });
}

function decide(button, body, verb) {
  const row = button.closest("tr");
  button.disabled = true;
  post(button.dataset.url, body)
    .then(() => {
      say(verb + " #" + row.dataset.id + ".", false);
      row.remove();
    })
    .catch((error) => {
      say(error.message, true);
      button.disabled = false;
    });
}

// Approve every selected review on the page, one request each; rows go as their answers come.
async function approveSelected(button) {
  const rows = Array.from(document.querySelectorAll("#reviews > tbody > tr"))
    .filter((row) => row.querySelector("input.select-review:checked"));
  if (!rows.length) { say("Select the reviews to approve first.", true); return; }
  button.disabled = true;
  let done = 0;
  const failed = [];
  for (const row of rows) {
    const url = row.querySelector("button.approve-review").dataset.url;
    try {
      await post(url, { action: null, note: "" });
      row.remove();
      done += 1;
    } catch (error) {
      failed.push("#" + row.dataset.id + ": " + error.message);
    }
  }
  button.disabled = false;
  if (failed.length) say("Approved " + done + "; failed " + failed.join("; "), true);
  else say("Approved " + done + " selected.", false);
}

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.classList.contains("autosubmit") && target.form) {
    target.form.submit();
    return;
  }
  if (target instanceof HTMLInputElement && target.id === "select-all-reviews") {
    document.querySelectorAll("input.select-review").forEach((box) => { box.checked = target.checked; });
  }
});

document.addEventListener("click", (event) => {
  const target = event.target;
  if (!(target instanceof Element)) return;
  if (target.matches("button#approve-selected")) { approveSelected(target); return; }
  if (target.matches("#windows button.show-window")) { showWindow(target); return; }
  const cell = target.closest("#heatmap rect.cell");
  if (cell) { showOverlay(cell); return; }
  if (target.matches("button.approve-review")) {
    decide(target, { action: null, note: "" }, "Approved");
  } else if (target.matches("button.override-review")) {
    const select = target.closest("td").querySelector("select.override-action");
    decide(target, { action: select ? select.value : null, note: "" }, "Overrode");
  } else if (target.matches("button.approve-approval")) {
    decide(target, { note: "" }, "Approved");
  } else if (target.matches("button.reject-approval")) {
    decide(target, { note: "" }, "Rejected");
  }
});
