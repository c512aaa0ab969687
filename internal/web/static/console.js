// Ferry console: live progress over server-sent events, and small conveniences. Every page works
// without this file; it only saves reloads.
"use strict";

// fmtBytes matches humanBytes in the Go templates.
function fmtBytes(n) {
  if (n < 1024) return n + " B";
  let div = 1024, exp = 0;
  for (let m = Math.floor(n / 1024); m >= 1024 && exp < 4; m = Math.floor(m / 1024)) { div *= 1024; exp++; }
  return (n / div).toFixed(1) + " " + "KMGTP"[exp] + "iB";
}

function label(status) { return status.replace(/(?!^)([A-Z])/g, (c) => " " + c.toLowerCase()); }

function badge(status) {
  const s = document.createElement("span");
  s.className = "badge s-" + status.toLowerCase();
  s.textContent = label(status);
  return s;
}

function utc(d) {
  const p = (x) => String(x).padStart(2, "0");
  return d.getUTCFullYear() + "-" + p(d.getUTCMonth() + 1) + "-" + p(d.getUTCDate()) + " " + p(d.getUTCHours()) + ":" + p(d.getUTCMinutes()) + ":" + p(d.getUTCSeconds()) + " UTC";
}

function liveProject(summary) {
  const status = document.getElementById("live-status");
  const es = new EventSource(summary.dataset.stream);
  es.addEventListener("counts", (ev) => {
    const counts = JSON.parse(ev.data);
    let total = 0;
    summary.querySelectorAll("[data-count]").forEach((el) => {
      const k = el.dataset.count;
      if (k === "total") return;
      el.textContent = counts[k] || 0;
      total += counts[k] || 0;
    });
    const t = summary.querySelector('[data-count="total"]');
    if (t) t.textContent = total;
    const running = (counts.Running || 0) + (counts.Queued || 0);
    status.textContent = running ? running + " items queued or running; this page updates live." : "";
  });
  es.addEventListener("items", (ev) => {
    for (const it of JSON.parse(ev.data)) {
      const row = document.getElementById("item-" + it.id);
      if (!row) continue;
      const set = (f, v) => { const c = row.querySelector('[data-field="' + f + '"]'); if (c) c.textContent = v; };
      const st = row.querySelector('[data-field="status"]');
      if (st) st.replaceChildren(badge(it.status));
      set("folders", it.stats.folders);
      set("objects", it.stats.objects);
      set("bytes", fmtBytes(it.stats.bytes));
      set("errors", it.stats.errors);
      set("error", it.last_error || "");
      set("updated", utc(new Date()));
      row.classList.remove("flash-row");
      void row.offsetWidth; // restart the highlight
      row.classList.add("flash-row");
    }
  });
  es.onerror = () => { status.textContent = "Live updates interrupted; reconnecting…"; };
  es.onopen = () => { if (status.textContent.startsWith("Live updates interrupted")) status.textContent = ""; };
}

document.addEventListener("DOMContentLoaded", () => {
  const summary = document.querySelector("[data-stream]");
  if (summary && window.EventSource) liveProject(summary);

  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll('input[name="items"][form="bulk"]').forEach((c) => { c.checked = all.checked; });
    });
  }

  document.querySelectorAll("[data-tz]").forEach((el) => { el.value = new Date().getTimezoneOffset(); });

  document.querySelectorAll("[data-confirm]").forEach((b) => {
    b.addEventListener("click", (ev) => { if (!confirm(b.dataset.confirm)) ev.preventDefault(); });
  });

  const kind = document.querySelector("[data-kind]");
  if (kind) {
    const show = () => {
      document.querySelectorAll("fieldset[data-for]").forEach((fs) => {
        fs.hidden = !fs.dataset.for.split(" ").includes(kind.value) && !(fs.dataset.for.includes("imap") && kind.value !== "m365");
      });
    };
    kind.addEventListener("change", show);
    show();
  }
});
