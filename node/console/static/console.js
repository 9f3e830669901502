// kpnet console: small enhancements; every page works without them.
"use strict";

// Live inbox: new inbound alerts arrive over Server-Sent Events as rendered rows.
function startAlertStream(table) {
  const body = table.querySelector("tbody");
  const status = document.getElementById("live-status");
  const source = new EventSource(table.dataset.stream);
  source.addEventListener("alert", (event) => {
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    const template = document.createElement("template");
    template.innerHTML = event.data.trim();
    const row = template.content.firstElementChild;
    if (!row) return;
    const existing = row.id ? document.getElementById(row.id) : null;
    if (existing) existing.replaceWith(row); else body.prepend(row);
    row.classList.add("new");
    if (status) status.textContent = (status.dataset.template || "%s").replace("%s", row.dataset.title || "");
  });
  source.addEventListener("open", () => table.setAttribute("data-live", "on"));
  source.addEventListener("error", () => table.setAttribute("data-live", "retrying"));
}

// Compose: show which peers the sharing agreement will leave out, before sending.
function startRecipientPreview(form) {
  const target = document.getElementById("recipient-preview");
  if (!target) return;
  let pending = null;
  const refresh = () => {
    const params = new URLSearchParams();
    for (const name of ["category", "handling"]) {
      const field = form.elements[name];
      if (field) params.set(name, field.value);
    }
    for (const box of form.querySelectorAll("input[name=recipients]:checked")) params.append("recipients", box.value);
    if (pending) pending.abort();
    pending = new AbortController();
    fetch(form.dataset.preview + "?" + params.toString(), {signal: pending.signal, credentials: "same-origin"})
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((html) => { target.innerHTML = html; })
      .catch(() => {});
  };
  form.addEventListener("change", (event) => {
    const name = event.target && event.target.name;
    if (name === "category" || name === "handling" || name === "recipients") refresh();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table[data-stream]")) startAlertStream(table);
  for (const form of document.querySelectorAll("form[data-preview]")) startRecipientPreview(form);
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
