// persona dashboard: plain JavaScript, no build step, no third-party code.
// Everything the server sends is rendered with textContent, never as HTML.
"use strict";

(() => {
  const POLL_MS = 2000;            // personas and status refresh
  const WINDOW_MS = 5 * 60 * 1000; // chart history
  const PAGE = 100;                // messages per history page, newest first
  const GAP_PAGE = 500;            // messages per page filling a reconnect's gap
  const MAX_MESSAGES = 5000;       // kept in the room view; live ones push the oldest out
  const NOTE_ITEMS = 1000;         // messages whose thoughts and decisions are kept
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
    colors: new Map(),   // persona name -> color
    personas: [],
    history: new Map(),  // persona name -> [{t, energy, depth}]
    seeded: false,       // the chart's history came from the server
    stream: null,        // AbortController of the live stream
    view: null,          // the open room (newView)
  };

  // newView is what the page holds of one open room. Replies that arrive
  // for another view (the user switched rooms meanwhile) are dropped.
  function newView(room) {
    return {
      room,
      messages: new Map(), // id -> message
      order: [],           // ids, oldest first (time, then id)
      nodes: new Map(),    // id -> its <li>
      notes: new Map(),    // message id -> [note]: its thoughts and decision, oldest first
      noteKeys: new Set(), // notes shown, so a trail read again adds nothing
      drafts: new Map(),   // draft id -> a reply being written (or how it ended)
      older: false,        // older messages may precede the first one shown
      loadingOlder: false,
      loaded: false,       // the newest page was read
    };
  }

  function colorOf(name) {
    if (!state.colors.has(name)) state.colors.set(name, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(name);
  }
  const isPersona = (name) => state.personas.some((p) => p.name === name);
  const roomPath = (room) => "/api/rooms/" + encodeURIComponent(room);

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
    state.view = newView(room);
    $("room-title").textContent = "# " + room;
    $("content").placeholder = "Message #" + room + " — @name asks a persona";
    const ol = $("messages");
    ol.replaceChildren(olderControl());
    renderOlder(state.view);
    renderMeta(state.view);
    renderRooms();
    connect();
  }

  // ---- messages -----------------------------------------------------------
  // The list is built incrementally: a message's <li> is inserted in time
  // order, its notes (thoughts, decision) right after it; loose notes and
  // drafts are the tail, after every message.
  const byTime = (a, b) => ((Date.parse(a.at) || 0) - (Date.parse(b.at) || 0)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

  function olderControl() {
    const li = el("li", "older");
    li.id = "older";
    const btn = el("button", "link", "Load older messages");
    btn.type = "button";
    btn.addEventListener("click", () => loadOlder(state.view));
    li.append(btn, el("span", "muted"));
    return li;
  }

  function renderOlder(v) {
    const li = $("older");
    if (!li) return;
    const btn = li.querySelector("button"), txt = li.querySelector("span");
    li.hidden = v.order.length === 0;
    btn.hidden = !v.older || v.loadingOlder;
    txt.textContent = v.loadingOlder ? "Loading older messages…" : v.older ? "" : "Beginning of #" + v.room;
  }

  function renderMeta(v) {
    const n = v.order.length;
    $("room-meta").textContent = n + " message" + (n === 1 ? "" : "s") + (v.older ? " shown · scroll up for older" : "");
    const ol = $("messages");
    let empty = ol.querySelector(":scope > li.empty");
    if (n === 0 && v.loaded && !empty) {
      empty = el("li", "empty", "No messages in #" + v.room + " yet. Say hello — try @" +
        (state.personas[0] ? state.personas[0].name : "name") + ".");
      ol.append(empty);
    } else if (n > 0 && empty) empty.remove();
  }

  // keepBottom runs fn, which changes the list, and keeps the view at the
  // bottom if it was there (new messages stay in sight).
  function keepBottom(fn) {
    const ol = $("messages");
    const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
    fn();
    if (atBottom) ol.scrollTop = ol.scrollHeight;
  }

  // keepPlace runs fn, which adds above the view, and keeps what the reader
  // sees where it was.
  function keepPlace(fn) {
    const ol = $("messages");
    const fromBottom = ol.scrollHeight - ol.scrollTop;
    fn();
    ol.scrollTop = ol.scrollHeight - fromBottom;
  }

  const tailStart = () => $("messages").querySelector(":scope > li.tail");

  // insertMessage adds m to the view in time order; false if it is there
  // already or belongs elsewhere.
  function insertMessage(v, m) {
    if (!m || !m.id || m.room !== v.room || v.messages.has(m.id)) return false;
    v.messages.set(m.id, m);
    let lo = 0, hi = v.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byTime(v.messages.get(v.order[mid]), m) <= 0) lo = mid + 1; else hi = mid;
    }
    v.order.splice(lo, 0, m.id);
    const li = renderMessage(v, m);
    v.nodes.set(m.id, li);
    const ol = $("messages");
    ol.insertBefore(li, lo + 1 < v.order.length ? v.nodes.get(v.order[lo + 1]) : tailStart());
    for (const loose of ol.querySelectorAll(":scope > li.loose")) if (loose.dataset.for === m.id) loose.remove();
    let after = li;
    for (const n of v.notes.get(m.id) || []) {
      const nl = renderNote(n);
      after.after(nl);
      after = nl;
    }
    return true;
  }

  // dropOldest keeps the view at MAX_MESSAGES: the oldest go, and can be
  // paged in again.
  function dropOldest(v) {
    while (v.order.length > MAX_MESSAGES) {
      const id = v.order.shift();
      const li = v.nodes.get(id);
      while (li.nextElementSibling && li.nextElementSibling.dataset.for === id) li.nextElementSibling.remove();
      li.remove();
      v.nodes.delete(id);
      v.messages.delete(id);
      v.older = true;
    }
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

  function renderMessage(v, m) {
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
      const to = v.messages.get(m.reply_to);
      const snippet = to ? to.author + ": " + to.content.slice(0, 80) : "an earlier message";
      main.append(el("div", "replyto", "↪ replying to " + snippet));
    }
    const body = el("div", "body");
    body.append(withMentions(m.content || ""));
    main.append(body);
    li.append(av, main);
    return li;
  }

  // A reply being written: the text so far, greyed, with how it stands.
  // One that ended superseded or failed stays a few seconds, marked so.
  const DRAFT_LABELS = { writing: "writing…", superseded: "superseded: will answer again with the newer messages", failed: "failed: see the system note" };
  function renderDraft(d) {
    const li = el("li", "msg persona draft tail draft-" + d.state);
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

  function renderDrafts(v) {
    const ol = $("messages");
    for (const li of ol.querySelectorAll(":scope > li.draft")) li.remove();
    for (const d of v.drafts.values()) ol.append(renderDraft(d));
  }

  function renderNote(n) {
    const li = el("li", "note note-" + n.kind);
    if (n.item) li.dataset.for = n.item;
    li.append(noteFrag(n.parts));
    return li;
  }

  function noteFrag(parts) {
    const f = document.createDocumentFragment();
    for (const p of parts) f.append(typeof p === "string" ? p : el("b", "", p.b));
    return f;
  }

  // addNote shows a thought or decision after the message it is about. One
  // about a message not shown is kept for when that message is paged in; a
  // live one also shows at the end meanwhile (the last five such).
  function addNote(v, n, live) {
    if (v.noteKeys.has(n.key)) return;
    v.noteKeys.add(n.key);
    if (n.item) {
      if (!v.notes.has(n.item)) {
        v.notes.set(n.item, []);
        if (v.notes.size > NOTE_ITEMS) v.notes.delete(v.notes.keys().next().value);
      }
      v.notes.get(n.item).push(n);
    }
    const ol = $("messages");
    const li = v.nodes.get(n.item);
    if (li) {
      let after = li;
      while (after.nextElementSibling && after.nextElementSibling.dataset.for === n.item) after = after.nextElementSibling;
      after.after(renderNote(n));
    } else if (live) {
      const nl = renderNote(n);
      nl.classList.add("tail", "loose");
      ol.insertBefore(nl, ol.querySelector(":scope > li.draft"));
      const loose = ol.querySelectorAll(":scope > li.loose");
      for (let i = 0; i < loose.length - 5; i++) loose[i].remove();
    }
  }

  function thoughtNote(t) {
    const persona = pick(t, "Persona"), item = pick(t, "Item");
    return {
      kind: "thought", item, key: "t|" + persona + "|" + item + "|" + (pick(t, "At") || ""),
      parts: [{ b: persona }, " is thinking: " + (pick(t, "Intent") || "?") + " · confidence " + Number(pick(t, "Confidence") || 0).toFixed(2)],
    };
  }

  function decisionNote(d) {
    const granted = (pick(d, "Granted") || []).join(", ") || "nobody";
    const item = pick(d, "Item");
    return {
      kind: "decision", item, key: "d|" + item + "|" + granted + "|" + !!pick(d, "TimedOut"),
      parts: ["decided: ", { b: granted }, " answers" + (pick(d, "TimedOut") ? " (window closed)" : "")],
    };
  }

  // handleEvent applies one event of the open room: live from the stream,
  // or (live false) read back from the room's trail.
  function handleEvent(v, ev, live) {
    if (!ev || v !== state.view) return;
    if (ev.message) {
      keepBottom(() => {
        if (insertMessage(v, ev.message)) { dropOldest(v); renderOlder(v); renderMeta(v); }
      });
    } else if (ev.thought) {
      keepBottom(() => addNote(v, thoughtNote(ev.thought), live));
    } else if (ev.decision) {
      keepBottom(() => addNote(v, decisionNote(ev.decision), live));
    } else if (ev.draft) {
      const d = ev.draft;
      if (d.room !== v.room) return;
      keepBottom(() => {
        if (d.state === "sent") {
          v.drafts.delete(d.id);
          if (d.message && !v.messages.has(d.message)) {
            // The stored reply's own event follows; until then the draft's
            // final text stands in its place.
            insertMessage(v, { id: d.message, room: d.room, author: d.persona, kind: "persona", content: d.text, at: new Date().toISOString(), reply_to: d.reply_to });
            renderMeta(v);
          }
        } else {
          v.drafts.set(d.id, d);
          if (d.state !== "writing") {
            setTimeout(() => {
              if (v.drafts.get(d.id) !== d) return;
              v.drafts.delete(d.id);
              renderDrafts(v);
            }, 8000);
          }
        }
        renderDrafts(v);
      });
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
    const v = state.view;
    let backoff = 1000;
    const run = async () => {
      while (!ctl.signal.aborted) {
        try {
          setConn("connecting");
          const res = await fetch(roomPath(v.room) + "/events",
            { headers: { "Authorization": "Bearer " + token }, signal: ctl.signal });
          if (res.status === 401) { showLogin(); return; }
          if (!res.ok || !res.body) throw new Error("stream: " + res.status);
          setConn("live");
          backoff = 1000;
          // Subscribed first, then read what came before: nothing falls
          // between the two, and what both bring is shown once.
          catchUp(v).catch(() => {});
          await readStream(res.body, (ev) => handleEvent(v, ev, true), ctl.signal);
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
        let data = [];
        for (const line of frame.split("\n")) {
          if (line === "" || line.startsWith(":")) continue;
          const c = line.indexOf(":");
          const field = c < 0 ? line : line.slice(0, c);
          const val = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
          if (field === "data") data.push(val);
        }
        if (data.length) {
          try { onEvent(JSON.parse(data.join("\n"))); } catch (e) { /* a bad frame is skipped */ }
        }
      }
    }
  }

  // catchUp reads what the stream did not bring: the newest page the first
  // time, then (after a reconnect) the pages after the newest message
  // shown; and the room's trail of thoughts and decisions.
  async function catchUp(v) {
    if (!v.loaded) await loadNewest(v);
    else await fillGap(v);
    await loadTrail(v);
  }

  async function loadNewest(v) {
    const body = await api(roomPath(v.room) + "/messages?order=newest&limit=" + PAGE);
    if (v !== state.view) return;
    const page = body.messages || [];
    for (const m of page) insertMessage(v, m);
    v.older = page.length === PAGE || !!body.truncated; // a page cut by its byte cap has more behind it
    v.loaded = true;
    renderOlder(v);
    renderMeta(v);
    const ol = $("messages");
    ol.scrollTop = ol.scrollHeight;
  }

  // fillGap pages forward from the newest message shown, a bounded number
  // of pages; a view further behind than that starts again from the newest.
  async function fillGap(v) {
    const MAX_PAGES = 4;
    let cursor = v.order[v.order.length - 1];
    if (!cursor) return loadNewest(v);
    for (let i = 0; i < MAX_PAGES; i++) {
      let body;
      try {
        body = await api(roomPath(v.room) + "/messages?limit=" + GAP_PAGE + "&after=" + encodeURIComponent(cursor));
      } catch (e) {
        if (e.status === 404) return restart(v); // the cursor aged out of the stream
        throw e;
      }
      if (v !== state.view) return;
      const page = body.messages || [];
      keepBottom(() => {
        for (const m of page) insertMessage(v, m);
        dropOldest(v);
        renderOlder(v);
        renderMeta(v);
      });
      if (page.length < GAP_PAGE && !body.truncated) return;
      cursor = page[page.length - 1].id;
    }
    return restart(v);
  }

  function restart(v) {
    if (v !== state.view) return;
    openRoom(v.room);
  }

  // loadOlder pages backwards from the oldest message shown.
  async function loadOlder(v) {
    if (!v || v !== state.view || !v.older || v.loadingOlder || v.order.length === 0) return;
    v.loadingOlder = true;
    renderOlder(v);
    try {
      const body = await api(roomPath(v.room) + "/messages?limit=" + PAGE + "&before=" + encodeURIComponent(v.order[0]));
      if (v !== state.view) return;
      const page = body.messages || [];
      keepPlace(() => { for (const m of page) insertMessage(v, m); });
      v.older = page.length === PAGE || !!body.truncated; // a page cut by its byte cap has more behind it
    } catch (e) {
      // The control stays; a click tries again.
    } finally {
      v.loadingOlder = false;
      if (v === state.view) { renderOlder(v); renderMeta(v); }
    }
  }

  async function loadTrail(v) {
    const body = await api(roomPath(v.room) + "/trail");
    for (const ev of body.events || []) handleEvent(v, ev, false);
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
      const v = state.view;
      try {
        const m = await api(roomPath(v.room) + "/messages", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ author: a, content: c }),
        });
        content.value = "";
        handleEvent(v, { message: m }, true);
        const ol = $("messages");
        ol.scrollTop = ol.scrollHeight; // one's own message is in sight
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
    s.append(el("div", "n", n ?? 0), el("div", "k", k));
    return s;
  }

  function ago(t) {
    const ms = Date.now() - Date.parse(t);
    if (!(ms >= 0)) return "";
    if (ms < 60000) return Math.round(ms / 1000) + " s ago";
    if (ms < 3600000) return Math.round(ms / 60000) + " min ago";
    return Math.round(ms / 3600000) + " h ago";
  }

  // where says which daemon of the cluster runs the persona (its lease),
  // and since when; a persona another daemon runs has its counts there.
  function where(p) {
    const r = p.runs;
    let text;
    if (p.here) text = "runs here" + (r ? " (" + r.daemon + ") since " + ago(r.since) : "");
    else if (r) text = "runs on " + r.daemon + (r.addr ? " at " + r.addr : "") + " since " + ago(r.since) + ": its counts are there";
    else text = "runs nowhere right now: its lease is free, and a daemon takes it within seconds";
    const e = el("div", "model where", text);
    e.title = text + ". A persona runs in one daemon of the cluster at a time: the one holding its lease.";
    return e;
  }

  // A card's one state word is its mood; these say what each means.
  const MOODS = {
    idle: "idle: nothing recent, energy fine — answers promptly",
    active: "active: has been working and has energy",
    tired: "tired: energy is low, so it scans its inbox less often",
    overwhelmed: "overwhelmed: its inbox is fuller than it can keep up with; low-priority messages wait or are set aside",
  };

  function renderPersonas() {
    const box = $("personas");
    box.replaceChildren();
    $("persona-count").textContent = "· " + state.personas.length;
    for (const p of state.personas) {
      const s = p.snapshot || {}, c = s.counts || {}, o = p.outcomes || {};
      const color = colorOf(p.name);
      const card = el("div", "card");
      card.dataset.persona = p.name;
      card.style.setProperty("--c", color);
      const top = el("div", "top");
      const names = el("div", "names");
      const cadence = s.cadence_ns ? " · scans every " + (s.cadence_ns / 1e9).toFixed(1) + " s" : "";
      names.append(el("div", "display", p.display_name || p.name), el("div", "handle", "@" + p.name + cadence));
      const mood = el("span", "mood", s.mood || "?");
      mood.dataset.mood = s.mood || "";
      mood.title = MOODS[s.mood] || "";
      top.append(el("div", "avatar", (p.display_name || p.name).slice(0, 1).toUpperCase()), names, mood);
      card.append(top);
      const model = [p.model, (p.expertise || []).join(", ")].filter(Boolean).join(" · ");
      const me = el("div", "model", model || "\u00a0");
      me.title = model;
      card.append(me);
      card.append(where(p));
      card.append(bar("energy", s.energy, color), bar("attention", s.attention, color));
      const stats = el("div", "stats");
      stats.append(
        stat("inbox", pick(c, "Queued"), "messages waiting in its inbox now"),
        stat("in flight", pick(c, "InFlight"), "messages it is handling now"),
        stat("answered", o.answered, "replies it posted"),
        stat("left to a peer", o.left_to_peer, "messages another persona answered: the room's decision chose someone else, or another daemon's persona claimed it first"),
        stat("held back", o.held_back, "messages it was chosen for but did not answer: the room's reply budget was spent"),
        stat("declined", o.declined, "messages not for it: not addressed to it, and under its reply line"),
        stat("deferred", o.deferred, "times a message was set aside under load, to be caught up later; " + (pick(c, "Deferred") ?? 0) + " set aside now"),
        stat("expired", o.expired, "messages that waited past their time to live, unanswered"),
        stat("failed", o.failed, "messages it could not answer: the model failed on every attempt"),
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

  // seedHistory starts the chart from the samples the daemon kept (the
  // first poll asks for them), so it opens with its last minutes.
  function seedHistory(now) {
    for (const p of state.personas) {
      const h = [];
      for (const smp of p.history || []) {
        const t = Date.parse(smp.at);
        if (t >= now - WINDOW_MS && t < now) h.push({ t, energy: Number(smp.energy) || 0, depth: Number(smp.queued) || 0 });
      }
      state.history.set(p.name, h);
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
    let maxDepth = 4, points = 0;
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
        if (pn.key === "energy") points += h.length;
      }
    }
    cv.dataset.points = String(points); // what the chart plots, for tests
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
      const [ps, st] = await Promise.all([api("/api/personas" + (state.seeded ? "" : "?history=true")), api("/api/status")]);
      state.personas = (ps.personas || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      for (const p of state.personas) colorOf(p.name);
      const now = Date.now();
      if (!state.seeded) { seedHistory(now); state.seeded = true; }
      recordHistory(now);
      renderPersonas();
      drawChart(now);
      const th = $("thermal");
      th.dataset.state = st.thermal || "unknown";
      th.textContent = st.thermal || "unknown";
      const pressure = typeof st.pressure === "number" ? "pressure " + st.pressure.toFixed(2) : "";
      $("pressure").textContent = pressure;
      th.title = "system thermal state" + (pressure ? ", " + pressure : "");
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
    // Scrolled to the top, the next older page comes in.
    $("messages").addEventListener("scroll", (e) => {
      if (e.target.scrollTop < 80) loadOlder(state.view);
    }, { passive: true });
    window.addEventListener("resize", () => drawChart(Date.now()));
    setupPost();
    if (state.room) openRoom(state.room);
    poll();
  }

  start();
})();
