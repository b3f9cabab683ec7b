// The LHCIE hub's operations dashboard: plain JavaScript, no framework.
// It uses only the API of docs/dashboard-api.md. Every value from the API
// reaches the page through textContent or setAttribute, never parsed as HTML.
"use strict";

(function () {
  const POLL_MS = 2000;
  const STREAM_RETRY_MS = 30000;

  let me = null;              // {user, role}
  let stream = null;          // EventSource
  let pollTimer = null;
  let streamRetryTimer = null;
  let lastPending = null;     // totals.dead_letters_pending last rendered
  let lastReviews = null;     // totals.emergency_reviews_pending last rendered
  let emergencyLoad = null;   // in-flight emergency review list request
  let deadLetterLoad = null;  // in-flight list request

  const $ = (id) => document.getElementById(id);
  const ROLES = { viewer: 1, operator: 2, admin: 3 };
  const atLeast = (role) => me !== null && (ROLES[me.role] || 0) >= ROLES[role];

  // ---------- DOM helpers (text only) ----------

  // el("td", {class: "num", "data-testid": "x"}, "text", childNode, ...)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null && value !== false) {
        node.setAttribute(name, String(value));
      }
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(id, value) {
    const node = $(id);
    const text = value === undefined || value === null ? "—" : String(value);
    if (node.textContent !== text) node.textContent = text;
  }

  function replaceRows(tbodyId, rows, emptyText, columns) {
    const body = $(tbodyId);
    if (rows.length === 0 && emptyText) {
      rows = [el("tr", { class: "empty" }, el("td", { colspan: columns }, emptyText))];
    }
    body.replaceChildren(...rows);
  }

  const count = (n) => (typeof n === "number" ? n.toLocaleString("en-GB") : "—");
  const ms = (n) => (typeof n === "number" ? n.toFixed(1) : "—");
  const rate = (n) => (typeof n === "number" ? n.toFixed(1) : "—");
  const time = (s) => (s ? String(s).replace("T", " ") : "—");

  function age(seconds) {
    if (typeof seconds !== "number") return "—";
    if (seconds < 120) return `${Math.round(seconds)} s ago`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
    return `${Math.round(seconds / 3600)} h ago`;
  }

  function showError(text) {
    const banner = $("error-banner");
    banner.textContent = text || "";
    banner.hidden = !text;
  }

  // ---------- API ----------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, body) {
    const options = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.method = "POST";
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const message = data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`;
      if (response.status === 401 && me !== null) {
        loggedOut("Your session has ended; please log in again.");
      }
      throw new ApiError(response.status, message);
    }
    return data;
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && String(value).trim() !== "") {
        search.set(name, String(value).trim());
      }
    }
    const text = search.toString();
    return text ? `?${text}` : "";
  }

  // ---------- Session ----------

  function showLogin(message) {
    $("main").hidden = true;
    $("session").hidden = true;
    $("login").hidden = false;
    const error = $("login-error");
    error.textContent = message || "";
    error.hidden = !message;
    $("login-username").focus();
  }

  function loggedOut(message) {
    me = null;
    stopLive();
    resetPage();
    showLogin(message);
  }

  // Forget everything the last user saw (a trace may name a patient).
  function resetPage() {
    lastPending = null;
    lastReviews = null;
    deadLetterLoad = null;
    emergencyLoad = null;
    for (const form of ["trace-form", "dead-letter-filter", "emergency-filter"]) $(form).reset();
    for (const body of document.querySelectorAll("main tbody")) body.replaceChildren();
    $("matrix-head").replaceChildren();
    for (const id of ["timeline-message-id", "timeline-patient", "timeline-records", "trace-message", "dead-letter-message", "emergency-message"]) {
      $(id).textContent = "";
    }
    for (const node of document.querySelectorAll("main dd")) {
      node.textContent = "—";
      node.className = "";
    }
    $("overview-at").textContent = "—";
    $("timeline").hidden = true;
    $("timeline-patient").hidden = true;
    $("replay-results").hidden = true;
    $("registry-banner").hidden = true;
    $("dry-run").checked = true;
    $("replay-rate").value = "10";
    showError("");
  }

  async function loggedIn(who) {
    me = who;
    $("login").hidden = true;
    $("login-password").value = "";
    $("login-error").hidden = true;
    $("session").hidden = false;
    $("whoami").textContent = `${who.user} (${who.role})`;
    $("whoami").setAttribute("data-user", who.user);
    $("whoami").setAttribute("data-role", who.role);
    for (const node of document.querySelectorAll(".operator-only")) node.hidden = !atLeast("operator");
    for (const node of document.querySelectorAll(".admin-only")) node.hidden = !atLeast("admin");
    $("main").hidden = false;
    showError("");
    startLive();
    // A first picture at once, without waiting for the stream's first event.
    api("/api/overview").then(render, () => {});
    loadDeadLetters();
    loadEmergencyReviews();
  }

  async function onLogin(event) {
    event.preventDefault();
    const submit = $("login-submit");
    submit.disabled = true;
    // A message from before (e.g. "You have logged out.") is not an answer
    // to this attempt.
    $("login-error").hidden = true;
    try {
      const who = await api("/api/login", {
        username: $("login-username").value,
        password: $("login-password").value,
      });
      await loggedIn(who);
    } catch (error) {
      const text = error.status === 401 ? "Wrong user name or password." : error.message;
      const box = $("login-error");
      box.textContent = text;
      box.hidden = false;
    } finally {
      submit.disabled = false;
    }
  }

  async function onLogout() {
    try {
      await api("/api/logout", {});
    } catch (_) {
      // Logged out either way.
    }
    $("login-username").value = "";
    loggedOut("You have logged out.");
  }

  // ---------- Live overview ----------

  function setLive(text, ok) {
    const node = $("live-status");
    node.textContent = text;
    node.className = ok ? "live ok" : "live warn";
  }

  function startLive() {
    stopLive();
    if (typeof EventSource !== "function") {
      startPolling();
      return;
    }
    setLive("connecting…", false);
    const source = new EventSource("/api/stream");
    stream = source;
    const onEvent = (event) => {
      try {
        render(JSON.parse(event.data));
        setLive("● live", true);
      } catch (_) {
        // Ignore a malformed event; the next one replaces it.
      }
    };
    source.addEventListener("overview", onEvent);
    source.onmessage = onEvent;
    source.onerror = () => {
      if (stream !== source) return;
      source.close();
      stream = null;
      startPolling();
    };
  }

  function startPolling() {
    if (me === null || pollTimer !== null) return;
    setLive("polling every 2 s", false);
    const poll = async () => {
      try {
        render(await api("/api/overview"));
        showError("");
      } catch (error) {
        if (error.status !== 401) showError(`Cannot read the overview: ${error.message}`);
      }
    };
    poll();
    pollTimer = setInterval(poll, POLL_MS);
    // Try the stream again now and then; it replaces the polling if it works.
    streamRetryTimer = setTimeout(() => {
      if (me !== null) startLive();
    }, STREAM_RETRY_MS);
  }

  function stopLive() {
    if (stream) {
      stream.close();
      stream = null;
    }
    clearInterval(pollTimer);
    pollTimer = null;
    clearTimeout(streamRetryTimer);
    streamRetryTimer = null;
  }

  function render(o) {
    if (!o || typeof o !== "object" || me === null) return;
    const totals = o.totals || {};
    setText("overview-at", time(o.at));
    setText("total-received", count(totals.received));
    setText("total-routed", count(totals.routed));
    setText("total-denied", count(totals.denied));
    setText("total-rejected", count(totals.rejected));
    setText("total-dead-letters", count(totals.dead_letters_pending));
    $("total-dead-letters").className = totals.dead_letters_pending > 0 ? "bad" : "";
    renderRegistry(o.registry);
    renderExchanges(o.exchanges || []);
    renderFlows(o.flows || [], o.regions || []);
    renderAdapters(o.adapters || []);
    replaceRows("queues-body", (o.queues || []).map((q) =>
      el("tr", { "data-testid": "queue-row" },
        el("th", { scope: "row" }, q.queue),
        el("td", { class: "num" }, count(q.messages)),
        el("td", { class: q.consumers === 0 ? "num bad" : "num" }, q.consumers === 0 ? "0 — no consumer" : count(q.consumers)))),
    "No queues reported.", 3);
    replaceRows("denials-body", reasonRows(o.denials || []), "None.", 2);
    replaceRows("rejections-body", reasonRows(o.rejections || []), "None.", 2);
    replaceRows("dead-letter-destinations-body", (o.dead_letters || []).map((d) =>
      el("tr", {},
        el("th", { scope: "row" }, d.destination),
        el("td", { class: d.pending > 0 ? "num bad" : "num" }, count(d.pending)))),
    "None.", 2);
    if (lastPending !== null && totals.dead_letters_pending !== lastPending) loadDeadLetters();
    lastPending = totals.dead_letters_pending;
    setText("total-emergency-reviews", count(totals.emergency_reviews_pending));
    $("total-emergency-reviews").className = totals.emergency_reviews_pending > 0 ? "bad" : "";
    if (lastReviews !== null && totals.emergency_reviews_pending !== lastReviews) loadEmergencyReviews();
    lastReviews = totals.emergency_reviews_pending;
  }

  function reasonRows(list) {
    return list.map((r) => el("tr", {}, el("th", { scope: "row" }, r.reason), el("td", { class: "num" }, count(r.count))));
  }

  function renderRegistry(r) {
    const banner = $("registry-banner");
    if (!r) {
      banner.hidden = true;
      return;
    }
    setText("registry-source", r.source);
    setText("registry-revision", count(r.revision));
    setText("registry-age", typeof r.proven_age_ms === "number" ? `${(r.proven_age_ms / 1000).toFixed(1)} s ago` : "—");
    const fresh = $("registry-fresh");
    fresh.textContent = r.fresh ? "✔ yes, proven current" : "✖ NO — messages are being held";
    fresh.className = r.fresh ? "good" : "bad";
    if (r.fresh) {
      banner.hidden = true;
    } else {
      const ageText = typeof r.proven_age_ms === "number" ? `${(r.proven_age_ms / 1000).toFixed(0)} s ago` : "never";
      banner.textContent = `⚠ Consent registry copy is not proven current: messages are being held. ` +
        `Revision ${r.revision ?? "?"}, last proof ${ageText}.`;
      banner.hidden = false;
    }
  }

  function renderExchanges(list) {
    replaceRows("exchanges-body", list.map((x) =>
      el("tr", { "data-testid": "exchange-row", "data-exchange": x.exchange },
        el("th", { scope: "row" }, x.exchange),
        el("td", {}, x.region),
        el("td", { class: "num" }, rate(x.rate_per_second)),
        el("td", { class: "num" }, ms(x.routing_p50_ms)),
        el("td", { class: "num" }, ms(x.routing_p99_ms)),
        el("td", { class: "num" }, count(x.received)),
        el("td", { class: "num" }, count(x.routed)),
        el("td", { class: x.rejected > 0 ? "num warn" : "num" }, count(x.rejected)),
        el("td", { class: "num" }, count(x.copies_in)))),
    "No traffic yet.", 9);
  }

  function renderFlows(flows, regions) {
    const names = regions.slice();
    for (const f of flows) {
      for (const r of [f.from_region, f.to_region]) if (r && !names.includes(r)) names.push(r);
    }
    const cells = new Map();
    let max = 0;
    for (const f of flows) {
      const key = `${f.from_region}\u0000${f.to_region}`;
      const total = (cells.get(key) || 0) + (f.count || 0);
      cells.set(key, total);
      max = Math.max(max, total);
    }
    $("matrix-head").replaceChildren(
      el("th", { scope: "col" }, "From ↓ / to →"),
      ...names.map((r) => el("th", { scope: "col", class: "num" }, r)));
    $("matrix-body").replaceChildren(...names.map((from) =>
      el("tr", {},
        el("th", { scope: "row" }, from),
        ...names.map((to) => {
          const n = cells.get(`${from}\u0000${to}`) || 0;
          const shade = n === 0 || max === 0 ? 0 : Math.max(1, Math.ceil((n / max) * 4));
          return el("td", { class: `num shade-${shade}`, "data-testid": "flow-cell", "data-from": from, "data-to": to }, count(n));
        }))));
    const top = flows.slice().sort((a, b) => (b.count || 0) - (a.count || 0)).slice(0, 10);
    replaceRows("top-flows-body", top.map((f) =>
      el("tr", { "data-testid": "flow-row" },
        el("td", {}, `${f.from} (${f.from_region})`),
        el("td", {}, `${f.to} (${f.to_region})`),
        el("td", { class: "num" }, count(f.count)))),
    "No flows yet.", 3);
  }

  function renderAdapters(list) {
    replaceRows("adapters-body", list.map((a) =>
      el("tr", { "data-testid": "adapter-row", "data-exchange": a.exchange, class: a.up ? "" : "down" },
        el("th", { scope: "row" }, a.exchange),
        el("td", { class: a.up ? "good" : "bad", "data-testid": "adapter-status" }, a.up ? "▲ UP" : "▼ DOWN"),
        el("td", {}, a.kind),
        el("td", {}, a.version),
        el("td", { class: a.outbox_depth > 100 ? "num warn" : "num" }, count(a.outbox_depth)),
        el("td", { class: "num" }, age(a.seconds_since_heartbeat)))),
    "No adapter has sent a heartbeat.", 6);
  }

  // ---------- Dead letters ----------

  function deadLetterFilter() {
    return {
      destination: $("dl-destination").value,
      reason: $("dl-reason").value,
      category: $("dl-category").value,
      state: $("dl-state").value,
    };
  }

  function selectedIds() {
    return Array.from(document.querySelectorAll("#dead-letters-body input[type=checkbox]:checked"))
      .map((box) => box.getAttribute("data-id"));
  }

  async function loadDeadLetters() {
    if (me === null) return;
    const load = api(`/api/dead-letters${query(deadLetterFilter())}`);
    deadLetterLoad = load;
    let data;
    try {
      data = await load;
    } catch (error) {
      if (error.status !== 401) $("dead-letter-message").textContent = `Cannot list dead letters: ${error.message}`;
      return;
    }
    if (deadLetterLoad !== load) return; // a newer request replaced this one
    const kept = new Set(selectedIds());
    const operator = atLeast("operator");
    const list = data.dead_letters || [];
    $("dead-letter-count").textContent = String(list.length);
    replaceRows("dead-letters-body", list.map((d) => {
      const cells = [];
      if (operator) {
        const box = el("input", {
          type: "checkbox", "data-testid": "dead-letter-checkbox", "data-id": d.id,
          "aria-label": `Select dead letter ${d.id} (message ${d.message_id})`,
        });
        box.checked = kept.has(String(d.id));
        cells.push(el("td", {}, box));
      }
      const last = d.last_replay;
      const lastText = last === null || last === undefined ? "—"
        : typeof last === "object" ? [last.at, last.outcome, last.user, last.detail].filter(Boolean).join(" · ")
        : String(last);
      cells.push(
        el("td", {}, d.id),
        el("td", {}, d.destination),
        el("td", { class: "mono" }, d.message_id),
        el("td", {}, d.reason),
        el("td", {}, d.detail),
        el("td", {}, d.category),
        el("td", {}, d.sender),
        el("td", {}, d.submitted_by),
        el("td", {}, time(d.dead_lettered_at)),
        el("td", {}, d.state),
        el("td", {}, lastText));
      return el("tr", { "data-testid": "dead-letter-row", "data-id": d.id, "data-message-id": d.message_id, "data-state": d.state }, ...cells);
    }), "No dead letters match.", operator ? 12 : 11);
    $("dl-select-all").checked = false;
  }

  async function replaySelected() {
    const ids = selectedIds();
    const message = $("dead-letter-message");
    if (ids.length === 0) {
      message.textContent = "Select at least one dead letter first.";
      return;
    }
    const dryRun = $("dry-run").checked;
    const perSecond = Math.min(100, Math.max(1, Number($("replay-rate").value) || 10));
    const button = $("replay");
    button.disabled = true;
    message.textContent = dryRun ? "Dry run in progress…" : `Replaying ${ids.length}…`;
    try {
      const answer = await api("/api/dead-letters/replay", { ids, dry_run: dryRun, rate_per_second: perSecond });
      showReplayResults(answer);
      message.textContent = answer.dry_run ? "Dry run done: nothing was published." : "Replay done.";
    } catch (error) {
      message.textContent = `Replay failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
    loadDeadLetters();
  }

  function showReplayResults(answer) {
    $("replay-caption").textContent = answer.dry_run ? "Dry-run results (nothing published)" : "Replay results";
    replaceRows("replay-results-body", (answer.results || []).map((r) => {
      const good = r.outcome === "forwarded" || r.outcome === "would-forward";
      const bad = r.outcome === "failed" || r.outcome === "denied" || r.outcome === "would-deny";
      return el("tr", { "data-testid": "replay-result", "data-id": r.id, "data-outcome": r.outcome },
        el("td", {}, r.id),
        el("td", { class: "mono" }, r.message_id),
        el("td", { class: good ? "good" : bad ? "bad" : "", "data-testid": "replay-outcome" }, r.outcome),
        el("td", {}, r.detail));
    }), "No dead letter was replayed.", 4);
    $("replay-results").hidden = false;
  }

  async function discardSelected() {
    const ids = selectedIds();
    const message = $("dead-letter-message");
    if (ids.length === 0) {
      message.textContent = "Select at least one dead letter first.";
      return;
    }
    if (!window.confirm(`Discard ${ids.length} dead letter(s)? They will not be delivered.`)) return;
    try {
      const answer = await api("/api/dead-letters/discard", { ids });
      message.textContent = `Discarded ${answer.discarded}.`;
    } catch (error) {
      message.textContent = `Discard failed: ${error.message}`;
    }
    loadDeadLetters();
  }

  // ---------- Emergency access ----------

  async function loadEmergencyReviews() {
    if (me === null) return;
    const load = api(`/api/emergency-access${query({ state: $("emergency-state").value })}`);
    emergencyLoad = load;
    let data;
    try {
      data = await load;
    } catch (error) {
      if (error.status !== 401) $("emergency-message").textContent = `Cannot list emergency access: ${error.message}`;
      return;
    }
    if (emergencyLoad !== load) return; // a newer request replaced this one
    const list = data.reviews || [];
    $("emergency-count").textContent = String(list.length);
    replaceRows("emergency-body", list.map(emergencyRow), "Nothing to review.", 8);
  }

  function emergencyRow(r) {
    const open = el("button", { type: "button", class: "link mono", "data-testid": "emergency-open" }, r.message_id);
    open.addEventListener("click", () => openTimeline(r.message_id));
    return el("tr", { "data-testid": "emergency-row", "data-id": r.id, "data-message-id": r.message_id, "data-state": r.state },
      el("td", {}, time(r.decided_at)),
      el("td", {}, open),
      el("td", {}, r.sender),
      el("td", {}, `${r.recipient} (${r.exchange})`),
      el("td", {}, r.category),
      el("td", {}, r.submitted_by),
      el("td", { class: r.notify_patient ? "warn" : "" }, r.notify_patient ? "yes — the patient is told" : "no"),
      el("td", {}, reviewCell(r)));
  }

  function reviewCell(r) {
    const c = r.closure;
    if (c) {
      return el("span", { "data-testid": "emergency-closure" }, `${c.outcome} — ${c.note} (${c.by}, ${time(c.at)})`);
    }
    if (!atLeast("operator")) return "pending";
    const outcomeId = `emergency-outcome-${r.id}`;
    const noteId = `emergency-note-${r.id}`;
    const form = el("form", { class: "review", "data-testid": "emergency-close-form" },
      el("label", { for: outcomeId }, "Outcome"),
      el("select", { id: outcomeId, name: "outcome", "data-testid": "emergency-outcome" },
        el("option", { value: "appropriate" }, "appropriate"),
        el("option", { value: "inappropriate" }, "inappropriate")),
      el("label", { for: noteId }, "Note (why)"),
      el("textarea", { id: noteId, name: "note", rows: 2, maxlength: 2000, required: true, "data-testid": "emergency-note" }),
      el("button", { type: "submit", "data-testid": "emergency-close" }, "Close review"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      closeReview(r, $(outcomeId).value, $(noteId).value);
    });
    return form;
  }

  async function closeReview(r, outcome, note) {
    const message = $("emergency-message");
    if (!note.trim()) {
      message.textContent = "Say why in the note before closing the review.";
      return;
    }
    try {
      await api("/api/emergency-access/close", { id: r.id, outcome, note });
      message.textContent = `Review of ${r.message_id} → ${r.recipient} closed as ${outcome}.`;
    } catch (error) {
      message.textContent = `Closing failed: ${error.message}`;
    }
    loadEmergencyReviews();
  }

  // ---------- Trace ----------

  function rfc3339(local) {
    if (!local) return "";
    const date = new Date(local);
    return Number.isNaN(date.getTime()) ? "" : date.toISOString();
  }

  async function onTraceSearch(event) {
    event.preventDefault();
    const params = {
      message_id: $("trace-message-id").value,
      nhs_number: $("trace-nhs-number").value.replace(/\s+/g, ""),
      org: $("trace-org").value,
      category: $("trace-category").value,
      from: rfc3339($("trace-from").value),
      to: rfc3339($("trace-to").value),
    };
    const status = $("trace-message");
    if (!params.message_id.trim() && !params.nhs_number && !params.org.trim() && !params.category.trim() && !params.from) {
      status.textContent = "Give a message id, NHS number, organisation, category or start time.";
      return;
    }
    status.textContent = "Searching…";
    $("timeline").hidden = true;
    let data;
    try {
      data = await api(`/api/trace${query(params)}`);
    } catch (error) {
      status.textContent = `Search failed: ${error.message}`;
      return;
    }
    const results = data.results || [];
    status.textContent = `${results.length} message(s) found.`;
    replaceRows("trace-results-body", results.map((r) => {
      const open = el("button", { type: "button", class: "link mono", "data-testid": "trace-open" }, r.message_id);
      const row = el("tr", { "data-testid": "trace-result", "data-message-id": r.message_id, class: "clickable" },
        el("td", {}, open),
        el("td", {}, time(r.decided_at)),
        el("td", {}, r.submitted_by),
        el("td", {}, r.sender),
        el("td", {}, r.category),
        el("td", {}, r.outcome),
        el("td", {}, (r.recipients || []).map((p) =>
          `${p.recipient} → ${p.exchange}: ${p.decision}${p.reason ? ` (${p.reason})` : ""}`).join("; ")));
      row.addEventListener("click", () => openTimeline(r.message_id));
      return row;
    }), "No message matches.", 7);
  }

  async function openTimeline(messageId) {
    const status = $("trace-message");
    status.textContent = "Loading the timeline…";
    let data;
    try {
      data = await api(`/api/trace/${encodeURIComponent(messageId)}`);
    } catch (error) {
      status.textContent = error.status === 404 ? "The hub knows nothing of this message." : `Cannot load the timeline: ${error.message}`;
      return;
    }
    status.textContent = "";
    $("timeline-message-id").textContent = data.message_id || messageId;
    const patient = $("timeline-patient");
    if (data.patient) {
      patient.textContent = `Patient NHS number: ${data.patient}`;
      patient.hidden = false;
    } else {
      patient.textContent = "";
      patient.hidden = true;
    }
    replaceRows("timeline-body", (data.timeline || []).map((t) =>
      el("tr", { "data-testid": "timeline-row", "data-stage": t.stage, "data-layer": t.layer },
        el("td", {}, time(t.at)),
        el("td", {}, t.layer),
        el("td", {}, t.exchange),
        el("td", { "data-testid": "timeline-stage" }, t.stage),
        el("td", {}, t.code),
        el("td", {}, t.detail))),
    "No events.", 6);
    $("timeline-records").textContent = JSON.stringify(data.records || [], null, 2);
    $("timeline").hidden = false;
    $("timeline").scrollIntoView({ block: "start" });
  }

  // ---------- Access log (admin) ----------

  async function loadAccessLog() {
    let data;
    try {
      data = await api("/api/access-log?limit=100");
    } catch (error) {
      replaceRows("access-body", [], `Cannot read the access log: ${error.message}`, 5);
      return;
    }
    replaceRows("access-body", (data.entries || []).map((e) =>
      el("tr", { "data-testid": "access-row" },
        el("td", {}, time(e.at)),
        el("td", {}, e.user),
        el("td", {}, e.action),
        el("td", {}, e.subject),
        el("td", {}, e.patient ? "yes" : "no"))),
    "No entries.", 5);
  }

  // ---------- Start ----------

  function init() {
    $("login-form").addEventListener("submit", onLogin);
    $("logout").addEventListener("click", onLogout);
    $("dead-letter-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      loadDeadLetters();
    });
    $("dl-select-all").addEventListener("change", (event) => {
      for (const box of document.querySelectorAll("#dead-letters-body input[type=checkbox]")) {
        box.checked = event.target.checked;
      }
    });
    $("emergency-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      loadEmergencyReviews();
    });
    $("replay").addEventListener("click", replaySelected);
    $("discard").addEventListener("click", discardSelected);
    $("trace-form").addEventListener("submit", onTraceSearch);
    $("access-refresh").addEventListener("click", loadAccessLog);
    api("/api/me").then(loggedIn, (error) => {
      showLogin(error.status === 401 ? "" : `Cannot reach the hub: ${error.message}`);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
