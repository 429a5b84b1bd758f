// persona dashboard: plain JavaScript, no build step, no third-party code.
// Everything the server sends is rendered with textContent, never as HTML.
"use strict";

(() => {
  const POLL_MS = 2000;          // personas and status refresh
  const WINDOW_MS = 5 * 60 * 1000; // chart history
  const MAX_MESSAGES = 500;      // kept in the room view
  const PALETTE = ["#4f5bd5", "#e46a1b", "#1f9d63", "#c2409b", "#0e8fb3", "#9a7300", "#7a4fd5", "#d13b3b"];

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };

  // Some server types are encoded without JSON tags (Go field names, e.g.
  // "Confidence"); read either spelling so a later tag does not break the page.
  const pick = (o, name) => {
    if (!o) return undefined;
    const snake = name.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
    return o[name] ?? o[snake] ?? o[name.charAt(0).toLowerCase() + name.slice(1)];
  };

  // ---- token: from #token= (or ?token=) once, then sessionStorage --------
  function takeToken() {
    const frag = new URLSearchParams(location.hash.slice(1));
    const query = new URLSearchParams(location.search);
    const t = frag.get("token") || query.get("token");
    if (t) {
      sessionStorage.setItem("persona.token", t);
      frag.delete("token");
      query.delete("token");
      const q = query.toString(), f = frag.toString();
      history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + (f ? "#" + f : ""));
    }
    return sessionStorage.getItem("persona.token") || "";
  }
  let token = takeToken();

  class AuthError extends Error {}

  async function api(path, init = {}) {
    const headers = Object.assign({ "Authorization": "Bearer " + token }, init.headers || {});
    const res = await fetch(path, Object.assign({}, init, { headers }));
    if (res.status === 401) {
      showLogin();
      throw new AuthError("unauthorized");
    }
    let body = null;
    const ct = res.headers.get("Content-Type") || "";
    if (ct.startsWith("application/json")) body = await res.json();
    if (!res.ok) {
      const msg = body && body.error ? (body.field ? body.field + ": " : "") + body.error : res.statusText;
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function showLogin() {
    $("login").hidden = false;
    $("app").hidden = true;
  }

  // ---- state --------------------------------------------------------------
  const state = {
    room: localStorage.getItem("persona.room") || "",
    rooms: new Set(),
    messages: new Map(), // id -> message, for the current room
    order: [],           // ids in display order
    colors: new Map(),   // persona name -> color
    personas: [],
    history: new Map(),  // persona name -> [{t, energy, depth}]
    stream: null,        // AbortController of the live stream
    cursor: "",          // id of the last message read from history
    drafts: new Map(),   // draft id -> a reply being written (or how it ended)
  };

  function colorOf(name) {
    if (!state.colors.has(name)) state.colors.set(name, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(name);
  }
  const isPersona = (name) => state.personas.some((p) => p.name === name);

  // ---- rooms --------------------------------------------------------------
  function renderRooms() {
    const ul = $("room-list");
    ul.replaceChildren();
    for (const r of [...state.rooms].sort()) {
      const a = el("a", r === state.room ? "active" : "", "# " + r);
      a.href = "#room=" + encodeURIComponent(r);
      a.addEventListener("click", (e) => { e.preventDefault(); openRoom(r); });
      const li = el("li");
      li.append(a);
      ul.append(li);
    }
  }

  function openRoom(room) {
    if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(room)) return;
    state.room = room;
    state.rooms.add(room);
    localStorage.setItem("persona.room", room);
    state.messages.clear();
    state.drafts.clear();
    state.order = [];
    state.cursor = "";
    notes.length = 0;
    $("room-title").textContent = "# " + room;
    $("content").placeholder = "Message #" + room + " — @name asks a persona";
    renderRooms();
    renderMessages();
    connect();
  }

  // ---- messages -----------------------------------------------------------
  function addMessage(m) {
    if (!m || !m.id || m.room !== state.room) return false;
    if (state.messages.has(m.id)) return false;
    state.messages.set(m.id, m);
    state.order.push(m.id);
    // History and live events can interleave: keep time order.
    state.order.sort((a, b) => {
      const ma = state.messages.get(a), mb = state.messages.get(b);
      return (Date.parse(ma.at) || 0) - (Date.parse(mb.at) || 0);
    });
    while (state.order.length > MAX_MESSAGES) state.messages.delete(state.order.shift());
    return true;
  }

  const notes = []; // thoughts and decisions shown between messages, newest last
  function addNote(kind, parts, item) {
    notes.push({ kind, parts, item, at: Date.now() });
    while (notes.length > 40) notes.shift();
  }

  function fmtTime(s) {
    const d = new Date(s);
    if (isNaN(d)) return "";
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function withMentions(text) {
    const frag = document.createDocumentFragment();
    const re = /(^|[^A-Za-z0-9_-])(@[A-Za-z0-9_-]+)/g;
    let last = 0, m;
    while ((m = re.exec(text)) !== null) {
      const start = m.index + m[1].length;
      frag.append(text.slice(last, start), el("span", "mention", m[2]));
      last = start + m[2].length;
    }
    frag.append(text.slice(last));
    return frag;
  }

  function renderMessage(m) {
    const persona = m.kind === "persona" || isPersona(m.author);
    const li = el("li", "msg " + (persona ? "persona" : "human"));
    li.dataset.id = m.id;
    const av = el("div", "avatar", (m.author || "?").slice(0, 1).toUpperCase());
    if (persona) av.style.background = colorOf(m.author);
    const main = el("div", "bubble");
    const head = el("div", "head");
    head.append(el("span", "author", m.author));
    if (persona) head.append(el("span", "kind", "persona"));
    head.append(el("span", "time", fmtTime(m.at)));
    main.append(head);
    if (m.reply_to) {
      const to = state.messages.get(m.reply_to);
      const snippet = to ? to.author + ": " + to.content.slice(0, 80) : "an earlier message";
      main.append(el("div", "replyto", "↪ replying to " + snippet));
    }
    const body = el("div", "body");
    body.append(withMentions(m.content || ""));
    main.append(body);
    li.append(av, main);
    return li;
  }

  function renderMessages() {
    const ol = $("messages");
    const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
    ol.replaceChildren();
    if (state.order.length === 0) {
      ol.append(el("li", "empty", "No messages in #" + state.room + " yet. Say hello — try @" +
        (state.personas[0] ? state.personas[0].name : "name") + "."));
    }
    // Notes are attached after the message they concern, or at the end.
    const byItem = new Map();
    const loose = [];
    for (const n of notes) {
      if (n.item && state.messages.has(n.item)) {
        if (!byItem.has(n.item)) byItem.set(n.item, []);
        byItem.get(n.item).push(n);
      } else loose.push(n);
    }
    for (const id of state.order) {
      ol.append(renderMessage(state.messages.get(id)));
      for (const n of byItem.get(id) || []) ol.append(renderNote(n));
    }
    for (const n of loose.slice(-5)) ol.append(renderNote(n));
    for (const d of state.drafts.values()) ol.append(renderDraft(d));
    $("room-meta").textContent = state.order.length + " message" + (state.order.length === 1 ? "" : "s");
    if (atBottom || state.order.length < 20) ol.scrollTop = ol.scrollHeight;
  }

  // A reply being written: the text so far, greyed, with how it stands.
  // One that ended superseded or failed stays a few seconds, marked so.
  const DRAFT_LABELS = { writing: "writing…", superseded: "superseded: will answer again with the newer messages", failed: "failed: see the system note" };
  function renderDraft(d) {
    const li = el("li", "msg persona draft draft-" + d.state);
    const av = el("div", "avatar", (d.persona || "?").slice(0, 1).toUpperCase());
    av.style.background = colorOf(d.persona);
    const main = el("div", "bubble");
    const head = el("div", "head");
    head.append(el("span", "author", d.persona), el("span", "kind", DRAFT_LABELS[d.state] || d.state));
    const body = el("div", "body");
    body.append(withMentions(d.text || ""));
    main.append(head, body);
    li.append(av, main);
    return li;
  }

  function renderNote(n) {
    const li = el("li", "note note-" + n.kind);
    li.append(noteFrag(n.parts));
    return li;
  }

  function noteFrag(parts) {
    const f = document.createDocumentFragment();
    for (const p of parts) f.append(typeof p === "string" ? p : el("b", "", p.b));
    return f;
  }

  function handleEvent(type, ev) {
    if (!ev) return;
    if (ev.message) {
      if (addMessage(ev.message)) renderMessages();
    } else if (ev.thought) {
      const t = ev.thought;
      addNote("thought", ([{ b: pick(t, "Persona") }, " is thinking: " + (pick(t, "Intent") || "?") +
        " · confidence " + Number(pick(t, "Confidence") || 0).toFixed(2)]), pick(t, "Item"));
      renderMessages();
    } else if (ev.draft) {
      const d = ev.draft;
      if (d.room !== state.room) return;
      if (d.state === "sent") {
        state.drafts.delete(d.id);
        if (d.message && !state.messages.has(d.message)) {
          // The stored reply's own event follows; until then the draft's
          // final text stands in its place.
          addMessage({ id: d.message, room: d.room, author: d.persona, kind: "persona", content: d.text, at: new Date().toISOString(), reply_to: d.reply_to });
        }
      } else {
        state.drafts.set(d.id, d);
        if (d.state !== "writing") setTimeout(() => { state.drafts.delete(d.id); renderMessages(); }, 8000);
      }
      renderMessages();
    } else if (ev.decision) {
      const d = ev.decision;
      const granted = (pick(d, "Granted") || []).join(", ") || "nobody";
      addNote("decision", (["decided: ", { b: granted }, " answers" + (pick(d, "TimedOut") ? " (window closed)" : "")]), pick(d, "Item"));
      renderMessages();
    }
  }

  // ---- live stream: SSE over fetch, so the token stays in a header --------
  function setConn(s) {
    const c = $("conn");
    c.dataset.state = s;
    c.textContent = s;
  }

  function connect() {
    if (state.stream) state.stream.abort();
    const ctl = new AbortController();
    state.stream = ctl;
    const room = state.room;
    let backoff = 1000;
    const run = async () => {
      while (!ctl.signal.aborted) {
        try {
          setConn("connecting");
          const res = await fetch("/api/rooms/" + encodeURIComponent(room) + "/events",
            { headers: { "Authorization": "Bearer " + token }, signal: ctl.signal });
          if (res.status === 401) { showLogin(); return; }
          if (!res.ok || !res.body) throw new Error("stream: " + res.status);
          setConn("live");
          backoff = 1000;
          loadHistory(room).catch(() => {});
          await readStream(res.body, handleEvent, ctl.signal);
        } catch (e) {
          if (ctl.signal.aborted) return;
        }
        setConn("offline");
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 15000);
      }
    };
    run();
  }

  async function readStream(body, onEvent, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    signal.addEventListener("abort", () => reader.cancel().catch(() => {}));
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, "\n");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let type = "message", data = [];
        for (const line of frame.split("\n")) {
          if (line === "" || line.startsWith(":")) continue;
          const c = line.indexOf(":");
          const field = c < 0 ? line : line.slice(0, c);
          const val = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
          if (field === "event") type = val;
          else if (field === "data") data.push(val);
        }
        if (data.length) {
          try { onEvent(type, JSON.parse(data.join("\n"))); } catch (e) { /* a bad frame is skipped */ }
        }
      }
    }
  }

  // History comes oldest first after a cursor, so the page walks forward
  // from where it last read (the start, the first time), a bounded number of
  // pages; on reconnect that is usually one short page filling the gap.
  async function loadHistory(room) {
    const PAGE = 500, MAX_PAGES = 8;
    for (let i = 0; i < MAX_PAGES; i++) {
      const q = "limit=" + PAGE + (state.cursor ? "&after=" + encodeURIComponent(state.cursor) : "");
      const body = await api("/api/rooms/" + encodeURIComponent(room) + "/messages?" + q);
      if (room !== state.room) return;
      const page = body.messages || [];
      for (const m of page) addMessage(m);
      if (page.length) state.cursor = page[page.length - 1].id;
      renderMessages();
      if (page.length < PAGE) return;
    }
  }

  // ---- posting ------------------------------------------------------------
  function setupPost() {
    const author = $("author"), content = $("content"), form = $("post-form"), err = $("post-error");
    author.value = localStorage.getItem("persona.author") || "";
    author.addEventListener("change", () => localStorage.setItem("persona.author", author.value.trim()));
    content.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.textContent = "";
      const a = author.value.trim(), c = content.value.trim();
      if (!a) { err.textContent = "Enter your name first."; author.focus(); return; }
      if (!c) return;
      localStorage.setItem("persona.author", a);
      $("post-button").disabled = true;
      try {
        const m = await api("/api/rooms/" + encodeURIComponent(state.room) + "/messages", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ author: a, content: c }),
        });
        content.value = "";
        if (addMessage(m)) renderMessages();
      } catch (ex) {
        if (!(ex instanceof AuthError)) err.textContent = "Not posted: " + ex.message;
      } finally {
        $("post-button").disabled = false;
        content.focus();
      }
    });
  }

  // ---- personas -----------------------------------------------------------
  function bar(label, v, color) {
    const row = el("div", "bar");
    const track = el("div", "track"), fill = el("div", "fill");
    const pct = Math.max(0, Math.min(1, Number(v) || 0));
    fill.style.width = (pct * 100).toFixed(1) + "%";
    fill.style.setProperty("--c", color);
    track.append(fill);
    row.append(el("span", "", label), track, el("span", "val", pct.toFixed(2)));
    return row;
  }

  function stat(k, n, title) {
    const s = el("div", "stat");
    if (title) s.title = title;
    s.append(el("div", "n", n), el("div", "k", k));
    return s;
  }

  function ago(t) {
    const ms = Date.now() - Date.parse(t);
    if (!(ms >= 0)) return "";
    if (ms < 60000) return Math.round(ms / 1000) + " s ago";
    if (ms < 3600000) return Math.round(ms / 60000) + " min ago";
    return Math.round(ms / 3600000) + " h ago";
  }

  function renderPersonas() {
    const box = $("personas");
    box.replaceChildren();
    $("persona-count").textContent = "· " + state.personas.length;
    for (const p of state.personas) {
      const s = p.snapshot || {}, c = s.counts || {};
      const color = colorOf(p.name);
      const card = el("div", "card");
      card.dataset.persona = p.name;
      card.style.setProperty("--c", color);
      const top = el("div", "top");
      const names = el("div", "names");
      names.append(el("div", "display", p.display_name || p.name), el("div", "handle", "@" + p.name + (s.awake === false ? " · asleep" : "")));
      const mood = el("span", "mood", s.mood || "?");
      mood.dataset.mood = s.mood || "";
      top.append(el("div", "avatar", (p.display_name || p.name).slice(0, 1).toUpperCase()), names, mood);
      card.append(top);
      const model = [p.model, (p.expertise || []).join(", ")].filter(Boolean).join(" · ");
      card.append(el("div", "model", model || "\u00a0"));
      card.append(bar("energy", s.energy, color), bar("attention", s.attention, color));
      const cadence = s.cadence_ns ? (s.cadence_ns / 1e9).toFixed(1) + " s" : "–";
      const stats = el("div", "stats");
      stats.append(
        stat("inbox", pick(c, "Queued") ?? 0, "items waiting now"),
        stat("in flight", pick(c, "InFlight") ?? 0, "items being handled now"),
        stat("cadence", cadence, "time between scans"),
        stat("handled", pick(c, "Handled") ?? 0),
        stat("declined", pick(c, "Declined") ?? 0),
        stat("failed", pick(c, "Failed") ?? 0, "messages it could not answer (the model failed on every attempt)"),
        stat("deferred", pick(c, "Deferrals") ?? 0, "times an item was deferred under load; " + (pick(c, "Deferred") ?? 0) + " kept for catch-up now"),
      );
      card.append(stats);
      const f = p.last_model_failure;
      if (f) {
        const fe = el("div", "failure", "model error " + ago(f.at) + ": " + f.reason + (f.model ? " — " + f.model + (f.backend ? " on " + f.backend : "") : ""));
        fe.title = "the latest failed model call; the message's room has a system note once its last attempt failed";
        card.append(fe);
      }
      const t = p.last_thought;
      const th = el("div", "thought");
      if (t) {
        th.append("last thought: ", el("b", "", pick(t, "Intent") || "?"),
          " · " + Number(pick(t, "Confidence") || 0).toFixed(2) + (pick(t, "At") ? " · " + ago(pick(t, "At")) : ""));
      } else th.textContent = "no thought yet";
      card.append(th);
      box.append(card);
    }
  }

  function recordHistory(now) {
    for (const p of state.personas) {
      const s = p.snapshot || {}, c = s.counts || {};
      if (!state.history.has(p.name)) state.history.set(p.name, []);
      const h = state.history.get(p.name);
      h.push({ t: now, energy: Number(s.energy) || 0, depth: Number(pick(c, "Queued")) || 0 });
      while (h.length && h[0].t < now - WINDOW_MS) h.shift();
    }
  }

  // ---- chart (canvas, drawn by hand) ---------------------------------------
  function drawChart(now) {
    const cv = $("chart");
    const dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth || 600, hgt = cv.clientHeight || 300;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(hgt * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(hgt * dpr);
    }
    const g = cv.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    g.font = "11px system-ui, sans-serif";
    const left = 40, right = 10, top = 18, gap = 34, bottom = 22;
    const plotH = (hgt - top - gap - bottom) / 2;
    const panels = [
      { title: "energy", top, key: "energy", max: 1, fmt: (v) => v.toFixed(2) },
      { title: "inbox depth", top: top + plotH + gap, key: "depth", max: 0, fmt: (v) => String(Math.round(v)) },
    ];
    let maxDepth = 4;
    for (const h of state.history.values()) for (const pt of h) maxDepth = Math.max(maxDepth, pt.depth);
    panels[1].max = Math.ceil(maxDepth / 4) * 4;
    const x = (t) => left + (w - left - right) * (1 - (now - t) / WINDOW_MS);
    for (const pn of panels) {
      const y = (v) => pn.top + plotH * (1 - v / pn.max);
      g.strokeStyle = "#e3e6ef";
      g.fillStyle = "#6b7186";
      g.lineWidth = 1;
      g.textAlign = "right";
      g.textBaseline = "middle";
      for (let i = 0; i <= 4; i++) {
        const v = pn.max * i / 4, yy = Math.round(y(v)) + 0.5;
        g.beginPath(); g.moveTo(left, yy); g.lineTo(w - right, yy); g.stroke();
        g.fillText(pn.fmt(v), left - 6, yy);
      }
      g.textAlign = "left";
      g.textBaseline = "bottom";
      g.fillStyle = "#1c2033";
      g.fillText(pn.title, left, pn.top - 2);
      for (const [name, h] of state.history) {
        if (h.length === 0) continue;
        g.strokeStyle = colorOf(name);
        g.fillStyle = colorOf(name);
        g.lineWidth = 2;
        g.lineJoin = "round";
        g.beginPath();
        h.forEach((pt, i) => { const px = x(pt.t), py = y(Math.min(pt[pn.key], pn.max)); i ? g.lineTo(px, py) : g.moveTo(px, py); });
        g.stroke();
        const lastPt = h[h.length - 1];
        g.beginPath(); g.arc(x(lastPt.t), y(Math.min(lastPt[pn.key], pn.max)), 3, 0, 2 * Math.PI); g.fill();
      }
    }
    g.fillStyle = "#6b7186";
    g.textBaseline = "alphabetic";
    for (const [label, ago] of [["-5 min", WINDOW_MS], ["-4", 240000], ["-3", 180000], ["-2", 120000], ["-1", 60000], ["now", 0]]) {
      g.textAlign = ago === WINDOW_MS ? "left" : ago === 0 ? "right" : "center";
      g.fillText(label, x(now - ago), hgt - 4);
    }
    const legend = $("legend");
    legend.replaceChildren();
    for (const p of state.personas) {
      const item = el("span");
      const sw = el("span", "sw");
      sw.style.background = colorOf(p.name);
      item.append(sw, p.display_name || p.name);
      legend.append(item);
    }
  }

  // ---- polling --------------------------------------------------------------
  async function poll() {
    try {
      const [ps, st] = await Promise.all([api("/api/personas"), api("/api/status")]);
      state.personas = (ps.personas || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      for (const p of state.personas) colorOf(p.name);
      const now = Date.now();
      recordHistory(now);
      renderPersonas();
      drawChart(now);
      const th = $("thermal");
      th.dataset.state = st.thermal || "unknown";
      th.textContent = st.thermal || "unknown";
      $("pressure").textContent = typeof st.pressure === "number" ? "pressure " + st.pressure.toFixed(2) : "";
      let changed = false;
      for (const r of st.rooms || []) if (!state.rooms.has(r)) { state.rooms.add(r); changed = true; }
      if (!state.room) { openRoom((st.rooms && st.rooms[0]) || "lobby"); changed = false; }
      if (changed) renderRooms();
    } catch (e) {
      if (e instanceof AuthError) return;
    }
    setTimeout(poll, POLL_MS);
  }

  function start() {
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      token = $("login-token").value.trim();
      sessionStorage.setItem("persona.token", token);
      location.reload();
    });
    if (!token) { showLogin(); return; }
    $("room-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = $("room-input").value.trim().toLowerCase();
      if (/^[a-z0-9][a-z0-9_-]{0,63}$/.test(v)) { $("room-input").value = ""; openRoom(v); }
    });
    window.addEventListener("resize", () => drawChart(Date.now()));
    setupPost();
    if (state.room) openRoom(state.room);
    poll();
  }

  start();
})();
