// picloud dashboard: the few actions that work without a full reload. Every page works without
// this file (links and plain form posts); with it, dead-letter rows expand in place and Replay /
// Mark resolved update their row and the badges. Text from the server goes in as textContent;
// only the server-rendered (escaped) detail fragment is inserted as HTML.
"use strict";

function alertBox(message) {
  const box = document.querySelector("main > .alert");
  if (!box) return;
  box.textContent = message;
  box.hidden = !message;
}

document.addEventListener("click", async (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[data-expand]") : null;
  if (!link) return;
  event.preventDefault();
  const row = link.closest("tr");
  const detail = row && row.nextElementSibling;
  if (!detail || !detail.classList.contains("detail")) return;
  const open = detail.hidden;
  detail.hidden = !open;
  link.setAttribute("aria-expanded", String(open));
  link.textContent = open ? "▾" : "▸";
  if (!open || detail.dataset.loaded) return;
  const cell = detail.firstElementChild;
  cell.textContent = "Loading…";
  try {
    const res = await fetch(link.dataset.expand, { headers: { accept: "text/html" }, credentials: "same-origin" });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    cell.innerHTML = await res.text();
    detail.dataset.loaded = "1";
  } catch (err) {
    cell.textContent = `Could not load the details: ${err.message}`;
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  if (form.dataset.js !== "dead-letter") return;
  event.preventDefault();
  const buttons = form.closest("[data-field=actions]").querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    const res = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { accept: "application/json" },
      credentials: "same-origin",
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || `${res.status} ${res.statusText}`);
    const d = body.dead_letter;
    const holder = document.querySelector(`[data-dead-letter="${CSS.escape(d.id)}"]`) || document;
    holder.querySelectorAll("[data-field=resolution]").forEach((cell) => {
      cell.textContent = d.resolution || "open";
      cell.className = `resolution ${d.resolution || "open"}`;
    });
    holder.querySelectorAll("[data-field=actions]").forEach((cell) => {
      const note = document.createElement("span");
      note.className = "muted";
      note.textContent = d.replay_execution_id ? `replay ${d.replay_execution_id.slice(0, 8)}` : "—";
      cell.replaceChildren(note);
    });
    document.querySelectorAll("[data-badge]").forEach((badge) => {
      badge.textContent = String(body.unresolved);
      badge.hidden = body.unresolved === 0;
    });
    alertBox("");
  } catch (err) {
    buttons.forEach((b) => (b.disabled = false));
    alertBox(err.message);
  }
});
