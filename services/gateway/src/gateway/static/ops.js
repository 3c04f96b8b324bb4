"use strict";
// Nexo ops dashboard: periodic fetch of /ops/api/summary + live events over SSE (fetch stream).
(() => {
  const KEY = "nexo.ops.token";
  const REFRESH_MS = 2000;
  const MAX_EVENTS = 100;
  const $ = (sel) => document.querySelector(sel);
  let token = sessionStorage.getItem(KEY) || "";
  let streamAbort = null;
  let refreshTimer = null;
  let historyTimer = null;
  let config = null;

  const STATUS_BY_ID = { 19: "PENDIENTE", 20: "CARGADO", 21: "EN_REVISION", 22: "VALIDADO", 23: "RECHAZADO" };
  const LABEL = { PENDIENTE: "Pendiente", CARGADO: "Cargado", EN_REVISION: "En Revisión", VALIDADO: "Validado", RECHAZADO: "Rechazado" };

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("data-") || k.startsWith("aria-") || k === "title" || k === "scope" || k === "type") node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function message(text) {
    const m = $("#message");
    m.textContent = text || "";
    m.hidden = !text;
  }

  async function api(path, options = {}) {
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (token) headers.Authorization = "Bearer " + token;
    const res = await fetch(path, Object.assign({}, options, { headers }));
    let body = null;
    const type = res.headers.get("content-type") || "";
    if (type.includes("json")) body = await res.json();
    if (!res.ok) {
      const err = new Error((body && (body.detail || body.title)) || res.status + " " + res.statusText);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 1) return "0 s";
    if (seconds < 120) return Math.round(seconds) + " s";
    return Math.round(seconds / 60) + " min";
  }

  function renderHealth(h) {
    const ul = $("#services");
    ul.replaceChildren();
    for (const [name, s] of Object.entries(h.services)) {
      const extra = s.proxy && s.proxy.circuit === "open" ? " (circuit open)" : "";
      ul.append(el("li", { "data-service": name, "data-status": s.status, title: JSON.stringify(s.detail).slice(0, 400) }, `${name}: ${s.status}${extra}`));
    }
    const b = h.kafka;
    $("#broker").replaceChildren(el("span", { class: b.status === "ok" ? "ok" : "bad", "data-status": b.status }, `${b.kind}: ${b.status}`));
    const pg = h.postgresql;
    const dbs = Object.entries(pg.databases).map(([s, d]) => `${s} ${d.kind} ${d.status}`).join(", ");
    $("#postgres").replaceChildren(el("span", { class: String(pg.status).startsWith("fail") ? "bad" : "ok" }, `${pg.status}`), el("span", { class: "muted" }, ` — ${dbs}`));
    const f = h.ops_feed;
    $("#feed").textContent = `${f.running ? "running" : "stopped"}, ${f.buffered} buffered${f.last_error ? " — " + f.last_error : ""}`;
  }

  function renderRates(rates) {
    const tb = $("#rates tbody");
    tb.replaceChildren();
    const entries = Object.entries(rates);
    if (!entries.length) tb.append(el("tr", {}, el("td", { colSpan: 3, class: "muted" }, "no events yet")));
    for (const [type, r] of entries) {
      tb.append(el("tr", { "data-type": type }, el("td", { text: type }), el("td", { class: "num rate", text: r.per_minute }), el("td", { class: "num total", text: r.total })));
    }
  }

  function renderOutbox(outbox) {
    const tb = $("#outbox tbody");
    tb.replaceChildren();
    for (const [svc, o] of Object.entries(outbox)) {
      const backlog = o.status === "ok" ? o.backlog : "?";
      tb.append(el("tr", { "data-service": svc }, el("td", { text: svc }), el("td", { class: "num backlog", text: backlog }), el("td", { class: "num", text: o.status === "ok" ? age(o.oldest_age_s) : (o.error || "unknown") })));
    }
  }

  function renderTopics(topics) {
    const tb = $("#topics tbody");
    tb.replaceChildren();
    for (const t of topics) {
      const lags = el("td", { class: "groups" });
      for (const [g, info] of Object.entries(t.groups)) {
        lags.append(el("span", { class: "lag" + (info.lag > 0 ? " behind" : ""), "data-group": g, "data-lag": info.lag, title: JSON.stringify(info.partitions) }, `${g}: ${info.lag ?? "?"}`));
      }
      tb.append(el("tr", { "data-topic": t.topic },
        el("th", { scope: "row", text: t.topic }),
        el("td", { class: "num", text: t.partitions.length }),
        el("td", { class: "num end", "data-end": t.end_offset_total, title: t.partitions.map((p) => `p${p.partition}=${p.end_offset}`).join(" "), text: t.end_offset_total }),
        lags));
    }
  }

  function renderDlq(letters) {
    const tb = $("#dlq tbody");
    tb.replaceChildren();
    $("#dlq-empty").hidden = letters.length > 0;
    for (const d of letters) {
      const id = `${d.dlq_topic}:${d.partition}:${d.offset}`;
      const actions = el("td");
      if (d.status === "pending") {
        const replay = el("button", { type: "button", class: "replay", "aria-label": `Replay ${id}` }, "Replay");
        const discard = el("button", { type: "button", class: "discard", "aria-label": `Discard ${id}` }, "Discard");
        replay.addEventListener("click", () => act("replay", d, replay));
        discard.addEventListener("click", () => act("discard", d, discard));
        actions.append(replay, " ", discard);
      } else actions.append(el("span", { class: "muted", text: "—" }));
      tb.append(el("tr", { "data-dlq": id, "data-status": d.status },
        el("td", { text: `${d.original_topic || d.dlq_topic} [${d.original_partition ?? "?"}]@${d.original_offset ?? "?"}` }),
        el("td", { text: d.type || "(undecodable)" }),
        el("td", { class: "error", title: d.error || "", text: `${d.reason || ""}: ${(d.error || "").slice(0, 160)}` }),
        el("td", { text: d.consumer_group || "" }),
        el("td", { class: "status", text: d.status }),
        actions,
        el("td", {}, d.id ? traceLink(d.id) : "–")));
    }
  }

  async function act(kind, d, button) {
    button.disabled = true;
    try {
      await api(`/ops/api/dlq/${kind}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ dlq_topic: d.dlq_topic, partition: d.partition, offset: d.offset, note: `${kind} from dashboard` }),
      });
      message("");
    } catch (e) {
      message(`${kind} failed: ${e.message}`);
    }
    refresh();
  }

  function eventItem(e) {
    const li = el("li", { class: e.dlq ? "dlq" : "", "data-type": e.type, "data-topic": e.topic, "data-seq": e.seq });
    const t = (e.time || "").replace("T", " ").slice(0, 19);
    li.append(el("span", { class: "muted", text: t + " " }), el("span", { class: "t", text: e.type }),
      ` ${e.topic}[${e.partition}]@${e.offset} key=${e.key ?? "–"}`);
    const sh = e.shortage;
    if (sh) li.append(el("span", { class: "shortage bad", text: ` shortage: ${sh.faltante} × ${sh.nombre} (balance ${sh.stock_actual}, origen ${sh.origen ?? "unknown"})` }));
    if (e.correlation_id) li.dataset.correlation = e.correlation_id;
    if (e.trace_id) li.dataset.trace = e.trace_id;
    li.tabIndex = 0;
    li.title = "Show this action's trace";
    const open = () => showTrace(e.correlation_id || e.trace_id || e.id);
    li.addEventListener("click", open);
    li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
    return li;
  }

  function addEvent(e) {
    const ol = $("#events");
    if (ol.querySelector(`li[data-seq="${e.seq}"]`)) return;
    ol.prepend(eventItem(e));
    while (ol.children.length > MAX_EVENTS) ol.lastChild.remove();
  }

  async function loadEvents() {
    const data = await api("/ops/api/events?limit=50");
    const ol = $("#events");
    ol.replaceChildren(...data.events.map(eventItem));
  }

  function traceLink(q) {
    const b = el("button", { type: "button", class: "trace-link", "aria-label": `Trace of ${q}` }, "trace");
    b.addEventListener("click", () => showTrace(q));
    return b;
  }

  // --- charts (uPlot, vendored under /ops/static) ------------------------------------------
  const HISTORY_MS = 5000;
  const COLORS = ["#1976d2", "#2e7d32", "#d32f2f", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#c2185b", "#455a64", "#afb42b"];
  const per = (key) => (obj) => Object.fromEntries(Object.entries(obj || {}).map(([k, v]) => [k, v ? v[key] : null]));
  const CHARTS = [
    { id: "events", title: "Events / s by type", pick: (s) => s.events, short: (k) => k.split(".").slice(-2, -1)[0] || k },
    { id: "lag", title: "Consumer lag by group (records)", pick: (s) => s.lag },
    { id: "outbox-backlog", title: "Outbox backlog (rows)", pick: (s) => per("backlog")(s.outbox) },
    { id: "outbox-age", title: "Outbox oldest unpublished (s)", pick: (s) => per("oldest_age_s")(s.outbox) },
    { id: "rps", title: "Requests / s by service", pick: (s) => per("rps")(s.http) },
    { id: "p50", title: "Latency p50 (ms) by service", pick: (s) => per("p50_ms")(s.http) },
    { id: "p99", title: "Latency p99 (ms) by service", pick: (s) => per("p99_ms")(s.http) },
    { id: "errors", title: "5xx / s by service", pick: (s) => per("errors_per_s")(s.http) },
  ];
  const plots = {};

  function renderCharts(samples) {
    const box = $("#charts");
    if (typeof uPlot === "undefined") return;
    const xs = samples.map((s) => s.t);
    // every holder first: the grid's columns (hence each chart's width) depend on their count
    for (const c of CHARTS) {
      if (!box.querySelector(`[data-chart="${c.id}"]`)) box.append(el("div", { class: "chart", "data-chart": c.id }));
    }
    for (const c of CHARTS) {
      const keys = [...new Set(samples.flatMap((s) => Object.keys(c.pick(s) || {})))].sort();
      const data = [xs, ...keys.map((k) => samples.map((s) => { const v = (c.pick(s) || {})[k]; return v === undefined ? null : v; }))];
      const holder = box.querySelector(`[data-chart="${c.id}"]`);
      const last = samples.length ? c.pick(samples[samples.length - 1]) || {} : {};
      const peak = data.slice(1).reduce((m, ys) => Math.max(m, ...ys.map((v) => v || 0)), 0);
      holder.dataset.points = String(xs.length);
      holder.dataset.series = keys.join(",");
      holder.dataset.peak = String(peak);
      holder.dataset.last = String(Object.values(last).reduce((a, v) => a + (v || 0), 0));
      const plot = plots[c.id];
      if (plot && plot.keys === keys.join("|")) { plot.u.setData(data); continue; }
      if (plot) plot.u.destroy();
      const width = Math.max(300, holder.clientWidth || 420);
      const opts = {
        title: c.title, width, height: 180,
        scales: { x: { time: true } },
        legend: { live: false },
        series: [{}, ...keys.map((k, i) => ({ label: c.short ? c.short(k) : k, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
      };
      plots[c.id] = { keys: keys.join("|"), u: new uPlot(opts, data, holder) };
    }
  }

  async function refreshHistory() {
    if (!token) return;
    try { renderCharts((await api("/ops/api/history")).samples); }
    catch (e) { /* the summary refresh reports auth and availability problems */ }
  }

  // --- trace view -------------------------------------------------------------------------
  async function showTrace(q) {
    if (!q) return;
    $("#trace-q").value = q;
    const status = $("#trace-status");
    const list = $("#trace");
    status.textContent = "loading…";
    try {
      const t = await api("/ops/api/trace?q=" + encodeURIComponent(q));
      list.dataset.source = t.source;
      list.dataset.traceIds = t.trace_ids.join(",");
      if (t.spans.length) renderSpans(list, t.spans);
      else renderTraceEvents(list, t.events);
      status.textContent = `${t.spans.length ? t.spans.length + " spans from Jaeger" : t.events.length + " events kept by the board"}` +
        (t.trace_ids.length ? ` · trace ${t.trace_ids.join(", ")}` : "") + (t.backend_error ? ` · tracing backend: ${t.backend_error}` : "");
      list.scrollIntoView({ block: "nearest" });
    } catch (e) {
      status.textContent = "";
      message(`Trace: ${e.message}`);
    }
  }

  function renderSpans(list, spans) {
    const t0 = Math.min(...spans.map((s) => s.start_us));
    const t1 = Math.max(...spans.map((s) => s.start_us + s.duration_us));
    const total = Math.max(1, t1 - t0);
    list.replaceChildren(...spans.map((s) => {
      const bar = el("span", { class: "span-bar" });
      bar.style.left = ((s.start_us - t0) / total * 100).toFixed(2) + "%";
      bar.style.width = (s.duration_us / total * 100).toFixed(2) + "%";
      const label = el("span", { class: "label", title: `${s.service}: ${s.name}` }, el("span", { class: "svc", text: s.service }), " ".repeat(s.depth * 2) + s.name);
      return el("li", { class: s.error ? "error" : "", "data-service": s.service, "data-name": s.name, "data-kind": s.kind || "" },
        label, el("span", { class: "track" }, bar), el("span", { class: "dur", text: (s.duration_us / 1000).toFixed(1) + " ms" }));
    }));
  }

  function renderTraceEvents(list, events) {
    const times = events.map((e) => Date.parse(e.time) || 0);
    const t0 = Math.min(...times);
    const total = Math.max(1, Math.max(...times) - t0);
    list.replaceChildren(...events.map((e, i) => {
      const service = (e.source || "").split("/").pop() || "?";
      const bar = el("span", { class: "span-bar" });
      bar.style.left = ((times[i] - t0) / total * 95).toFixed(2) + "%";
      return el("li", { class: e.dlq ? "error" : "", "data-service": service, "data-name": e.type },
        el("span", { class: "label", title: e.type }, el("span", { class: "svc", text: service }), `${e.type} → ${e.topic}`),
        el("span", { class: "track" }, bar), el("span", { class: "dur", text: "+" + ((times[i] - t0) / 1000).toFixed(2) + " s" }));
    }));
  }

  async function refresh() {
    if (!token) return;
    try {
      const s = await api("/ops/api/summary");
      renderHealth(s.health);
      renderRates(s.rates);
      renderOutbox(s.outbox);
      renderTopics(s.topics);
      renderDlq(s.dead_letters);
      $("#last-update").textContent = "updated " + new Date().toLocaleTimeString();
      $("#last-update").dataset.at = s.at;
      if ($("#message").textContent.startsWith("Summary")) message("");
    } catch (e) {
      message(`Summary: ${e.message}${e.status === 401 || e.status === 403 ? " — paste a token with the ops role" : ""}`);
    }
  }

  async function stream() {
    if (streamAbort) streamAbort.abort();
    const ctrl = new AbortController();
    streamAbort = ctrl;
    const conn = $("#conn");
    while (!ctrl.signal.aborted && token) {
      try {
        const res = await fetch("/ops/api/events/stream", { headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" }, signal: ctrl.signal });
        if (!res.ok) throw new Error("stream " + res.status);
        conn.textContent = "stream: live"; conn.className = "pill on";
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let idx;
          while ((idx = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, idx); buf = buf.slice(idx + 2);
            let kind = "message"; const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) kind = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
            }
            if (kind === "nexo" && data.length) addEvent(JSON.parse(data.join("\n")));
          }
        }
      } catch (e) {
        if (ctrl.signal.aborted) return;
      }
      conn.textContent = "stream: reconnecting"; conn.className = "pill off";
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  function statusOf(cell) {
    const text = String(cell.estatus_texto || cell.estatus || "").toUpperCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/\s+/g, "_");
    if (LABEL[text]) return text;
    return STATUS_BY_ID[cell.estatus_id] || "PENDIENTE";
  }

  async function loadGrid(ev) {
    if (ev) ev.preventDefault();
    const status = $("#grid-status");
    if (!config || !config.grid_url) { status.textContent = "the evidence service has no grid endpoint"; return; }
    const q = new URLSearchParams({ id_ot: $("#grid-ot").value, mes: $("#grid-mes").value, anio: $("#grid-anio").value });
    status.textContent = "loading…";
    try {
      const body = await api(`${config.grid_url}?${q}`);
      const rows = Array.isArray(body) ? body : body.data || [];
      const mes = Number($("#grid-mes").value), anio = Number($("#grid-anio").value);
      const days = new Date(anio, mes, 0).getDate();
      const head = el("tr", {}, el("th", { scope: "col", text: "Código" }), el("th", { scope: "col", text: "Descripción" }), el("th", { scope: "col", text: "Unidad" }), el("th", { scope: "col", text: "Anexo" }));
      for (let d = 1; d <= days; d++) head.append(el("th", { scope: "col", text: d }));
      $("#grid thead").replaceChildren(head);
      const tb = $("#grid tbody");
      tb.replaceChildren();
      for (const r of rows) {
        const tr = el("tr", { "data-partida": r.id_partida_anexo }, el("th", { scope: "row", text: r.codigo }), el("td", { text: r.descripcion }), el("td", { text: r.unidad }), el("td", { text: r.anexo }));
        for (let d = 1; d <= days; d++) {
          const td = el("td", { class: "day", "data-day": d });
          let cells = r[`dia_${d}`];
          if (cells && !Array.isArray(cells)) cells = [cells];
          for (const c of cells || []) {
            const st = statusOf(c);
            td.append(el("span", { class: `gpu st-${st}`, "data-status": st, "data-gpu": c.id_gpu ?? "", title: `${LABEL[st]} — ${c.tipo_tiempo || ""} vol ${c.volumen ?? ""}${c.archivo ? " — " + c.archivo : ""}` }, LABEL[st][0]));
          }
          tr.append(td);
        }
        tb.append(tr);
      }
      status.textContent = `${rows.length} line(s)`;
    } catch (e) {
      status.textContent = "grid: " + e.message;
    }
  }

  async function start() {
    if (!token) { message("Paste a token with the ops role" + (config && config.env === "dev" ? " or use Dev login" : "") + "."); return; }
    try {
      config = await api("/ops/api/config");
      message("");
    } catch (e) {
      message(`Token rejected: ${e.message}`);
      return;
    }
    await refresh();
    loadEvents().catch(() => {});
    stream();
    clearInterval(refreshTimer);
    refreshTimer = setInterval(refresh, REFRESH_MS);
    refreshHistory();
    clearInterval(historyTimer);
    historyTimer = setInterval(refreshHistory, HISTORY_MS);
  }

  function setToken(t) {
    token = (t || "").trim();
    if (token) sessionStorage.setItem(KEY, token); else sessionStorage.removeItem(KEY);
    start();
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const now = new Date();
    $("#grid-mes").value = now.getMonth() + 1;
    $("#grid-anio").value = now.getFullYear();
    $("#auth").addEventListener("submit", (e) => { e.preventDefault(); setToken($("#token").value); $("#token").value = ""; });
    $("#logout").addEventListener("click", () => { if (streamAbort) streamAbort.abort(); setToken(""); });
    $("#grid-form").addEventListener("submit", loadGrid);
    $("#trace-form").addEventListener("submit", (e) => { e.preventDefault(); showTrace($("#trace-q").value.trim()); });
    const dev = $("#dev-login");
    dev.addEventListener("click", async () => {
      try { const r = await api("/ops/dev-login", { method: "POST" }); setToken(r.access_token); }
      catch (e) { message("Dev login: " + e.message); }
    });
    // offer the dev login only where the endpoint exists (dev mode)
    fetch("/ops/dev-login").then((r) => r.json()).then((b) => { dev.hidden = !b.available; }).catch(() => {});
    start();
  });
})();
