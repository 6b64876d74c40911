// mediagw's operator dashboard: reads the admin JSON routes every few seconds and draws them.
// The admin key stays in sessionStorage (this tab); "#key=..." in the URL is taken once and
// removed from the address bar. No library but hls.js (served by the gateway, optional).
"use strict";

const STORE = "mediagw.adminKey";
const REFRESH_MS = 5000;
const USAGE_HOURS = 24;
const SVG = "http://www.w3.org/2000/svg";
const players = new Map(); // stream id -> {card, video, hls}
let timer = null;
let usageRows = [];

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function key() {
  return sessionStorage.getItem(STORE) || "";
}

function status(text, bad = false) {
  $("status").textContent = text;
  $("status").className = bad ? "bad" : "";
}

class HttpError extends Error {
  constructor(code, text) { super(`${code}: ${text}`); this.code = code; }
}

async function api(path) {
  const resp = await fetch(path, {headers: {Authorization: `Bearer ${key()}`}});
  if (!resp.ok) {
    let text = resp.statusText;
    try { text = (await resp.json()).errors.join("; "); } catch (e) { /* not JSON */ }
    throw new HttpError(resp.status, text);
  }
  return resp.json();
}

function showLogin(message) {
  clearInterval(timer);
  timer = null;
  for (const id of [...players.keys()]) dropPlayer(id);
  $("board").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  status(message || "", Boolean(message));
}

function fmt(value, digits = 2) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "–";
}

// -- live streams ---------------------------------------------------------------------------
function playerNote() {
  const note = $("player-note");
  if (typeof Hls !== "undefined") { note.hidden = true; return; }
  const native = document.createElement("video").canPlayType("application/vnd.apple.mpegurl");
  note.textContent = "hls.js is not installed in this gateway (run `make system-deps` where it "
    + "was installed from). " + (native ? "Playing with the browser's own HLS."
                                        : "This browser has no HLS of its own: no player.");
  note.hidden = false;
}

function addPlayer(stream) {
  const video = el("video", {muted: "", playsinline: "", controls: "", "data-stream": stream.id});
  video.muted = true;
  const health = el("table", {class: "health"});
  const card = el("article", {class: "stream", "data-stream": stream.id},
                  el("h3", {}, stream.id), video, health);
  let hls = null;
  if (typeof Hls !== "undefined" && Hls.isSupported()) {
    hls = new Hls({liveSyncDurationCount: 2, enableWorker: true});
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) card.dataset.error = d.details; });
    hls.loadSource(stream.playbackUrl);
    hls.attachMedia(video);
    hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = stream.playbackUrl;
    video.play().catch(() => {});
  }
  players.set(stream.id, {card, video, hls, health});
  return players.get(stream.id);
}

function dropPlayer(id) {
  const p = players.get(id);
  if (!p) return;
  if (p.hls) p.hls.destroy();
  p.card.remove();
  players.delete(id);
}

function renderStreams(streams) {
  const box = $("streams");
  const live = new Set(streams.map((s) => s.id));
  for (const id of [...players.keys()]) if (!live.has(id)) dropPlayer(id);
  box.querySelector(".empty")?.remove();
  if (!streams.length) box.append(el("p", {class: "empty"}, "no live stream"));
  for (const s of streams) {
    const p = players.get(s.id) || addPlayer(s);
    if (!p.card.isConnected) box.append(p.card);
    const h = s.health;
    const rows = [
      ["bitrate", h.bitrate_bps === null ? "–" : `${fmt(h.bitrate_bps / 1000, 0)} kbit/s`],
      ["frame rate", `${fmt(h.fps)} fps`],
      ["keyframe interval", `${fmt(h.keyframe_interval_s)} s`],
      ["segments", `${s.segments} (${fmt(h.segment_duration_min_s)}–${fmt(h.segment_duration_max_s)} s)`],
      ["segment every", `${fmt(h.segment_interval_s)} s`],
      ["last segment", `${fmt(h.last_segment_age_s, 1)} s ago`],
      ["ingest latency p50", `${fmt(h.ingest_latency_p50_s, 3)} s`],
      ["video", h.width ? `${h.codec} ${h.width}x${h.height}` : "–"],
      ["tickets sent", `${s.ticketsSent} (${s.evSentWei} wei EV)`],
    ];
    p.health.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
    if (s.lastError) p.health.append(el("tr", {class: "bad"}, el("th", {}, "error"), el("td", {}, s.lastError)));
  }
}

// -- orchestrators --------------------------------------------------------------------------
function renderOrchestrators(rows) {
  const body = $("orchestrators").tBodies[0];
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", {colspan: 11, class: "empty"}, "no orchestrator used yet")));
    return;
  }
  body.replaceChildren(...rows.map((o) => el("tr", {"data-orchestrator": o.orchestrator},
    el("td", {title: o.url}, o.orchestrator), el("td", {}, o.region || "–"),
    el("td", {}, fmt(o.latency_p50_s, 3)), el("td", {}, fmt(o.latency_p99_s, 3)),
    el("td", {}, o.success_rate === null ? "–" : `${fmt(o.success_rate * 100, 1)} %`),
    el("td", {}, o.attempts), el("td", {}, o.price_wei_per_pixel ?? "–"),
    el("td", {}, o.swaps), el("td", {}, o.suspensions),
    el("td", {}, o.suspended_in ? `in ${o.suspended_in} stream(s)`
      : o.suspended_by_node ? `by node ${o.suspended_by_node}` : "no"),
    el("td", {class: "err"}, o.last_error || ""))));
}

// -- usage: spend against charge and margin, an inline SVG chart ----------------------------
function money(row, name) {
  const v = parseFloat(row[name]);
  return Number.isFinite(v) ? v : 0;
}

function renderUsage() {
  const box = $("usage");
  const select = $("usage-key");
  const keys = [...new Set(usageRows.map((r) => r.UserID || r.CreatorID || "").filter(Boolean))];
  const chosen = select.value;
  select.replaceChildren(el("option", {value: ""}, "all keys"),
                         ...keys.map((k) => el("option", {value: k}, k)));
  select.value = keys.includes(chosen) ? chosen : "";
  const rows = usageRows.filter((r) => !select.value || (r.UserID || r.CreatorID) === select.value);
  if (!rows.length) { box.replaceChildren(el("p", {class: "empty"}, "no usage yet")); return; }
  const hours = new Map(); // TimeStamp -> {cost, charge, margin}
  for (const r of rows) {
    const t = r.TimeStamp ?? 0;
    const h = hours.get(t) || {cost: 0, charge: 0, margin: 0};
    h.cost += money(r, "cost"); h.charge += money(r, "charge"); h.margin += money(r, "margin");
    hours.set(t, h);
  }
  const points = [...hours.entries()].sort((a, b) => a[0] - b[0]);
  const currency = rows.find((r) => r.currency)?.currency || "";
  box.replaceChildren(chart(points, currency), usageTable(rows, currency));
}

function chart(points, currency) {
  const W = 760, H = 240, L = 64, R = 12, T = 12, B = 36;
  const series = [["cost", "spend"], ["charge", "charge"], ["margin", "margin"]];
  const values = points.flatMap(([, v]) => series.map(([k]) => v[k]));
  let lo = Math.min(0, ...values), hi = Math.max(0, ...values);
  if (hi === lo) hi = lo + 1;
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  const x = (t) => L + (t1 === t0 ? (W - L - R) / 2 : (t - t0) / (t1 - t0) * (W - L - R));
  const y = (v) => T + (hi - v) / (hi - lo) * (H - T - B);
  const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
                           "aria-label": "spend, charge and margin per hour"});
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    root.append(svg("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid"}),
                svg("text", {x: L - 6, y: y(v) + 4, class: "axis", "text-anchor": "end"}, v.toPrecision(3)));
  }
  root.append(svg("line", {x1: L, x2: W - R, y1: y(0), y2: y(0), class: "zero"}));
  for (const t of [t0, t1]) {
    root.append(svg("text", {x: x(t), y: H - 12, class: "axis", "text-anchor": "middle"},
                    t ? new Date(t).toLocaleString([], {month: "short", day: "numeric", hour: "2-digit"}) : "all"));
  }
  series.forEach(([k, label], i) => {
    const d = points.map(([t, v], j) => `${j ? "L" : "M"}${x(t).toFixed(1)},${y(v[k]).toFixed(1)}`).join(" ");
    root.append(svg("path", {d, class: `line s${i}`}));
    for (const [t, v] of points) {
      const dot = svg("circle", {cx: x(t), cy: y(v[k]), r: 3, class: `dot s${i}`});
      dot.append(svg("title", {}, `${label}: ${v[k]} ${currency}`));
      root.append(dot);
    }
    root.append(svg("rect", {x: L + 8 + i * 190, y: T, width: 10, height: 10, class: `key s${i}`}),
                svg("text", {x: L + 22 + i * 190, y: T + 9, class: "legend"}, `${label} (${currency})`));
  });
  return root;
}

function usageTable(rows, currency) {
  const per = new Map();
  for (const r of rows) {
    const k = r.UserID || r.CreatorID || "–";
    const p = per.get(k) || {cost: 0, charge: 0, margin: 0, mins: 0};
    p.cost += money(r, "cost"); p.charge += money(r, "charge"); p.margin += money(r, "margin");
    p.mins += money(r, "TotalUsageMins");
    per.set(k, p);
  }
  return el("table", {class: "usage"},
    el("thead", {}, el("tr", {}, ...["key", "minutes in", `spend (${currency})`, `charge (${currency})`,
                                      `margin (${currency})`].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...[...per.entries()].map(([k, p]) => el("tr", {},
      el("td", {}, k), el("td", {}, fmt(p.mins)), el("td", {}, fmt(p.cost, 6)),
      el("td", {}, fmt(p.charge, 6)), el("td", {}, fmt(p.margin, 6))))));
}

async function loadUsage() {
  const to = Date.now(), from = to - USAGE_HOURS * 3600 * 1000;
  try {
    const doc = await api(`/api/data/usage/query?from=${from}&to=${to}&timeStep=hour`
                          + "&breakdownBy[]=userId&breakdownBy[]=creatorId");
    usageRows = Array.isArray(doc) ? doc : (doc.rows || doc.data || []);
  } catch (e) {
    if (!(e instanceof HttpError) || e.code !== 404) throw e;
    usageRows = []; // the usage API is not there (yet): nothing to draw
  }
  renderUsage();
}

// -- webhook deliveries and the audit log ---------------------------------------------------
function renderDeliveries(rows) {
  const body = $("deliveries").tBodies[0];
  if (!rows.length) { body.replaceChildren(el("tr", {}, el("td", {colspan: 5, class: "empty"}, "no delivery yet"))); return; }
  body.replaceChildren(...rows.map((d) => el("tr", {class: d.success ? "" : "bad"},
    el("td", {}, when(d.createdAt)), el("td", {}, d.event), el("td", {title: d.url}, d.webhookName || d.webhookId),
    el("td", {}, d.success ? `delivered${d.statusCode ? ` (${d.statusCode})` : ""}`
                           : (d.nextAttemptAt ? "retrying" : "failed") + (d.error ? `: ${d.error}` : "")),
    el("td", {}, d.attempts))));
}

function renderAudit(rows) {
  const body = $("audit").tBodies[0];
  if (!rows.length) { body.replaceChildren(el("tr", {}, el("td", {colspan: 5, class: "empty"}, "no entry yet"))); return; }
  body.replaceChildren(...rows.map((a) => el("tr", {},
    el("td", {}, when(a.at)), el("td", {}, a.action),
    el("td", {}, [a.targetType, a.targetId].filter(Boolean).join(" ")),
    el("td", {}, a.actorKeyId || "–"), el("td", {}, a.ip || "–"))));
}

// -- the loop -------------------------------------------------------------------------------
async function refresh() {
  try {
    const [streams, orchs, deliveries, audit] = await Promise.all([
      api("/api/admin/streams/live"), api("/api/admin/orchestrators"),
      api("/api/admin/webhook-deliveries?limit=20"), api("/api/audit?limit=20")]);
    renderStreams(streams);
    renderOrchestrators(orchs);
    renderDeliveries(deliveries);
    renderAudit(audit);
    await loadUsage();
    status(`updated ${new Date().toLocaleTimeString()}`);
    document.body.dataset.loaded = "1";
  } catch (e) {
    if (e instanceof HttpError && (e.code === 401 || e.code === 403)) {
      sessionStorage.removeItem(STORE);
      showLogin(`the key was refused: ${e.message}`);
    } else {
      status(`update failed: ${e.message}`, true);
    }
  }
}

function open() {
  $("login").hidden = true;
  $("board").hidden = false;
  $("signout").hidden = false;
  playerNote();
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(STORE, $("key").value.trim());
  $("key").value = "";
  open();
});
$("signout").addEventListener("click", () => { sessionStorage.removeItem(STORE); showLogin(""); });
$("usage-key").addEventListener("change", renderUsage);

const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
if (fromHash) {
  sessionStorage.setItem(STORE, fromHash);
  history.replaceState(null, "", location.pathname + location.search);
}
if (key()) open(); else showLogin("");
