// canaryd dashboard: plain JS, no build step and no network but this server. Live data comes from
// server-sent events (one watch of the Canaries on the server side); the page never polls.
"use strict";

const main = document.getElementById("main");
const live = document.getElementById("live");
const MARK = { pass: "ok", fail: "FAIL", nodata: "no data", error: "ERROR", inconclusive: "INCONCLUSIVE" };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function bar(c) {
  const pct = Math.max(0, Math.min(100, 100 * c.weight / Math.max(1, c.maxWeight)));
  const b = el("span", { class: "bar" }, el("span", {}));
  b.firstChild.style.width = pct + "%";
  return el("span", {}, b, `${c.weight}% / ${c.maxWeight}%`);
}

function unit(threshold) {
  const t = (threshold || "").trim();
  return t.endsWith("%") ? "%" : t.endsWith("ms") ? "ms" : "";
}

function connect(url, onMessage) {
  const source = new EventSource(url);
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
  source.onmessage = (e) => onMessage(JSON.parse(e.data));
  return source;
}

// ---- the list: every Canary by namespace ----

function listPage() {
  const canaries = new Map();
  const key = (c) => `${c.namespace}/${c.name}`;
  function draw() {
    main.replaceChildren();
    if (!canaries.size) { main.append(el("p", { class: "empty" }, "No canaries.")); return; }
    const byNs = new Map();
    for (const c of [...canaries.values()].sort((a, b) => key(a).localeCompare(key(b)))) {
      if (!byNs.has(c.namespace)) byNs.set(c.namespace, []);
      byNs.get(c.namespace).push(c);
    }
    for (const [ns, rows] of byNs) {
      main.append(el("h2", {}, ns));
      const table = el("table", { class: "canaries" },
        el("tr", {}, el("th", {}, "name"), el("th", {}, "phase"), el("th", {}, "weight"),
          el("th", {}, "failed checks"), el("th", {}, "checks")));
      for (const c of rows) {
        const link = el("a", { href: `/c/${encodeURIComponent(ns)}/${encodeURIComponent(c.name)}` }, c.name);
        const checks = c.checks.map((x) => `${x.name}=${MARK[x.verdict] || x.verdict}`).join(", ") || "-";
        table.append(el("tr", { "data-canary": key(c) }, el("td", {}, link),
          el("td", { class: `phase phase-${c.phase}` }, c.phase), el("td", {}, bar(c)),
          el("td", {}, `${c.failedChecks}/${c.threshold}`), el("td", {}, checks)));
      }
      main.append(table);
    }
  }
  connect("/api/stream", (m) => {
    if (m.type === "snapshot") { canaries.clear(); for (const c of m.canaries) canaries.set(key(c), c); }
    else if (m.type === "canary") canaries.set(key(m.canary), m.canary);
    else if (m.type === "deleted") canaries.delete(`${m.namespace}/${m.name}`);
    draw();
  });
  draw();
}

// ---- one Canary: weight over time, checks, Events ----

function chart(points, maxWeight) {
  const W = 600, H = 200, L = 34, B = 20, T = 8, R = 8;
  const box = svg("svg", { id: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  const top = Math.max(maxWeight, ...points.map((p) => p[1]), 10);
  const t0 = points.length ? points[0][0] : 0;
  const t1 = points.length ? Math.max(points[points.length - 1][0], t0 + 1) : 1;
  const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
  const y = (w) => H - B - (H - B - T) * w / top;
  for (const w of [0, top / 2, top]) {
    box.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(w), y2: y(w) }));
    const label = svg("text", { class: "axis", x: 2, y: y(w) + 3 });
    label.textContent = `${Math.round(w)}%`;
    box.append(label);
  }
  const span = svg("text", { class: "axis", x: W - R - 90, y: H - 4 });
  span.textContent = points.length ? `${Math.round(t1 - t0)} s shown` : "no data yet";
  box.append(span);
  // a step line: the weight holds until the next change
  const coords = [];
  points.forEach((p, i) => {
    if (i > 0) coords.push(`${x(p[0]).toFixed(1)},${y(points[i - 1][1]).toFixed(1)}`);
    coords.push(`${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
  });
  const line = svg("polyline", { id: "weight-line", points: coords.join(" "),
    "data-points": String(points.length) });
  box.append(line);
  return box;
}

// the chart's points: the current run's per-step weights kept in status (so a reload still has them),
// then what this page saw live after the first of those
function points(c, live) {
  const kept = (c.weights || []).map((w) => [Date.parse(w.at) / 1000, w.weight, ""])
    .filter((p) => !Number.isNaN(p[0]));
  const first = live.length ? live[0][0] : Infinity;
  return kept.filter((p) => p[0] < first).concat(live);
}

// each check's value against its threshold per step of the current run (status.stepChecks, at most 20
// steps): rows are checks, columns steps (the weight the step measured), failing values marked
function stepTable(c) {
  const steps = c.steps || [];
  const thresholds = new Map(c.checks.map((x) => [x.name, x.threshold || ""]));
  const names = [];
  for (const s of steps) for (const x of s.checks || []) if (!names.includes(x.name)) names.push(x.name);
  const t = el("table", { class: "steps", id: "step-checks" }, el("tr", {}, el("th", {}, "check"),
    el("th", {}, "threshold"), ...steps.map((s, i) => el("th", { title: s.at || "" }, `${i + 1} @${s.weight}%`))));
  for (const name of names) {
    const th = thresholds.get(name) || "";
    const cells = steps.map((s) => {
      const x = (s.checks || []).find((y) => y.name === name);
      if (!x) return el("td", {}, "");
      const value = x.value === null || x.value === undefined ? "no data" : `${x.value.toFixed(2)}${unit(th)}`;
      const bad = x.verdict !== "pass";
      return el("td", { class: `v-${x.verdict}${bad ? " bad" : ""}`, title: MARK[x.verdict] || x.verdict },
        bad ? `${value} ✗` : value);
    });
    t.append(el("tr", { "data-check": name }, el("td", {}, name), el("td", {}, th || "-"), ...cells));
  }
  if (!names.length) t.append(el("tr", {}, el("td", { colspan: "2" }, "no analysis steps in this run yet")));
  return t;
}

// the judge's report of the last step (status.checks[].judge): its score and verdict, then per metric
// the samples per side, both medians, the canary/primary ratio, the p-value and the classification
function num(v, digits) {
  return typeof v === "number" && Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : "n/a";
}

function judgeTable(j) {
  const th = j.thresholds || {};
  const head = el("p", { id: "judge-score" }, `${j.check}: score ${num(j.score, 4)} — `,
    el("span", { class: `v-${j.verdict}` }, MARK[j.verdict] || j.verdict || "?"),
    ` (pass ≥ ${num(th.pass, 4)}, marginal ≥ ${num(th.marginal, 4)})` + (j.reason ? `: ${j.reason}` : ""));
  const t = el("table", { class: "judge", id: "judge-report" }, el("tr", {}, ...["metric", "samples canary/primary",
    "canary median", "primary median", "canary/primary", "p-value", "classification"].map((h) => el("th", {}, h))));
  for (const m of j.metrics || []) {
    const n = m.samples || {};
    const cls = m.classification || "?";
    t.append(el("tr", { "data-metric": m.name }, el("td", {}, m.name + (m.dryRun ? " [dry run]" : "")),
      el("td", {}, `${n.canary ?? 0}/${n.primary ?? 0}`), el("td", {}, num(m.canaryMedian, 4)),
      el("td", {}, num(m.primaryMedian, 4)), el("td", {}, num(m.ratio, 3)), el("td", {}, num(m.pValue, 2)),
      el("td", { class: `c-${cls}`, title: m.reason || "" }, cls + (m.critical ? " (critical)" : ""))));
  }
  return el("div", { class: "card" }, head, t);
}

const ACTIONS = {
  promote: "Skip the rest of the analysis and promote this revision now?",
  abort: "Roll this run back now? Traffic returns to the primary.",
  retry: "Run the analysis again for the revision that failed?",
  pause: "Hold the run where it is until resumed?",
  resume: "Let the paused run go on?",
};

function historyTable(runs) {
  const t = el("table", { class: "history", id: "history" }, el("tr", {}, ...["revision", "image", "started",
    "ended", "outcome", "max weight", "reason"].map((h) => el("th", {}, h))));
  for (const r of runs) {
    const failed = (r.failedChecks || []).map((f) => `${f.name} ${f.value} (${f.threshold})`).join(", ");
    t.append(el("tr", {}, el("td", {}, r.revision || ""), el("td", {}, r.image || ""),
      el("td", {}, (r.startedAt || "").replace("T", " ").replace("Z", "")),
      el("td", {}, (r.endedAt || "-").replace("T", " ").replace("Z", "")),
      el("td", { class: `o-${(r.outcome || "running").replace(/ /g, "-")}` }, r.outcome || "running"),
      el("td", {}, r.maxWeight == null ? "" : `${r.maxWeight}%`),
      el("td", {}, [r.reason, failed].filter(Boolean).join("; "))));
  }
  if (!runs.length) t.append(el("tr", {}, el("td", { colspan: "7" }, "no runs recorded yet")));
  return t;
}

function canaryPage(ns, name) {
  let canary = null, history = [], events = [];
  // the request this page wrote (id, action) and what became of it; kept across redraws
  let pending = null, note = "";
  const base = `/api/canary/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;

  const dialog = el("dialog", { id: "confirm" });
  document.body.append(dialog);
  dialog.addEventListener("close", () => draw());
  function ask(action) {
    const revision = canary && canary.revision ? canary.revision : "";
    const yes = el("button", { id: "confirm-yes", class: "danger" }, action);
    const no = el("button", { id: "confirm-no" }, "cancel");
    dialog.replaceChildren(el("p", {}, `${action} ${ns}/${name}` + (revision ? ` (revision ${revision})` : "")),
      el("p", {}, ACTIONS[action]), yes, no);
    no.onclick = () => dialog.close();
    yes.onclick = () => { dialog.close(); send(action, revision); };
    dialog.showModal();
  }
  async function send(action, revision) {
    note = `writing the ${action} request…`;
    draw();
    try {
      const resp = await fetch(`${base}/${action}`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ revision }), credentials: "same-origin" });
      const answer = await resp.json();
      if (!resp.ok) { pending = null; note = `${action} not requested: ${answer.error || resp.status}`; }
      else { pending = answer; note = `${action} requested (id ${answer.id}); waiting for canaryd…`; }
    } catch (err) {
      pending = null; note = `${action} not requested: ${err}`;
    }
    settle();
    draw();
  }
  function settle() {  // canaryd answered our request: show its result
    const last = canary && canary.lastRequest;
    if (pending && last && last.id === pending.id) {
      note = `${last.action} ${last.result}: ${last.message || ""}`;
      pending = null;
    }
  }

  function draw() {
    main.replaceChildren(el("p", {}, el("a", { href: "/" }, "← all canaries")));
    if (!canary) { main.append(el("p", { class: "empty" }, `Canary ${ns}/${name} not found (yet).`)); return; }
    const c = canary;
    main.append(el("h1", {}, `${ns}/${name} `, el("span", { class: `phase phase-${c.phase}`, id: "phase" }, c.phase)));
    const facts = el("div", { class: "card facts" },
      el("span", {}, "weight ", bar(c)), el("span", {}, `failed checks ${c.failedChecks}/${c.threshold}`));
    if (c.revision) facts.append(el("span", {}, `revision ${c.revision}`));
    if (c.nextStepAt && !["Initialized", "Succeeded", "Failed"].includes(c.phase)) {
      const s = Math.max(0, Math.round((Date.parse(c.nextStepAt) - Date.now()) / 1000));
      facts.append(el("span", {}, `next step in ${s}s`));
    }
    if (c.gate) facts.append(el("div", {}, `gate: ${c.gate}`));
    if (c.message) facts.append(el("div", {}, `message: ${c.message}`));
    main.append(facts);
    main.append(el("h2", {}, "weight over time"), el("div", { class: "card" }, chart(points(c, history), c.maxWeight)));
    main.append(el("h2", {}, "checks (last step)"));
    const checks = el("table", { class: "checks" }, el("tr", {}, el("th", {}, "check"), el("th", {}, "value"),
      el("th", {}, "threshold"), el("th", {}, "verdict"), el("th", {}, "message")));
    for (const x of c.checks) {
      const value = x.value === null ? "no data" : `${x.value.toFixed(2)}${unit(x.threshold)}`;
      checks.append(el("tr", {}, el("td", {}, x.name), el("td", {}, value), el("td", {}, x.threshold || "-"),
        el("td", { class: `v-${x.verdict}` }, (MARK[x.verdict] || x.verdict) + (x.note ? ` (${x.note})` : "")),
        el("td", {}, x.message || "")));
    }
    if (!c.checks.length) checks.append(el("tr", {}, el("td", { colspan: "5" }, "no checks yet")));
    main.append(checks);
    if (c.judge) main.append(el("h2", {}, "judge (last step)"), judgeTable(c.judge));
    main.append(el("h2", {}, "checks per step (value against threshold)"), stepTable(c));
    main.append(el("h2", {}, "actions"));
    const actions = el("div", { class: "card" });
    for (const a of Object.keys(ACTIONS)) {
      const b = el("button", { id: `action-${a}`, title: ACTIONS[a] }, a);
      if (pending) b.setAttribute("disabled", "");
      b.onclick = () => ask(a);
      actions.append(b);
    }
    actions.append(el("div", { class: "note", id: "action-result" }, note ||
      (c.lastRequest ? `last request: ${c.lastRequest.action} ${c.lastRequest.result}: ${c.lastRequest.message || ""}` : "")));
    main.append(actions);
    main.append(el("h2", {}, "run history"), historyTable(c.runs || []));
    main.append(el("h2", {}, "events"));
    const rows = el("table", { class: "events" });
    for (const e of events.slice().reverse()) {
      rows.append(el("tr", {}, el("td", {}, (e.time || "").slice(11, 19)),
        el("td", { class: e.type }, e.type || ""), el("td", {}, e.message + (e.count > 1 ? ` (x${e.count})` : ""))));
    }
    if (!events.length) rows.append(el("tr", {}, el("td", {}, "no events")));
    main.append(rows);
  }
  connect(`/api/canary/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/stream`, (m) => {
    if (m.type === "snapshot") { canary = m.canary; history = m.history || []; }
    else if (m.type === "canary") { canary = m.canary; if (m.point) history.push(m.point); }
    else if (m.type === "deleted") canary = null;
    else if (m.type === "events") events = m.events;
    settle();
    if (!dialog.open) draw();  // a redraw would not close the dialog, but keep the page still under it
  });
  draw();
}

const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
if (parts[0] === "c" && parts.length === 3) canaryPage(parts[1], parts[2]); else listPage();
