// The page's controller: the join form, one chat session per room (a Connection plus a
// RoomStore), and the glue between protocol events and the view. The pieces it wires:
//   protocol.js   the wire contract: validation rules and frames
//   connection.js one resilient WebSocket (backoff, ping, status)
//   store.js      the room's state, deduplicated by message id
//   view.js       DOM rendering, textContent only

import { Connection } from './connection.js';
import {
  DEFAULT_ROOM, MAX_TEXT, checkText, codePoints, frames, newClientId, normalizeRoom,
  normalizeUsername, roomProblem, socketUrl, usernameProblem,
} from './protocol.js';
import { RoomStore } from './store.js';
import { renderMessages, renderOnline, renderStatus, renderTyping } from './view.js';

const TYPING_EVERY_MS = 3000; // PROTOCOL: send `typing` at most every 3 s
const CONFIRM_TIMEOUT_MS = 15000; // no echo by then: mark failed, offer a retry
const HISTORY_TIMEOUT_MS = 15000;
const CATCH_UP_MAX_PAGES = 20; // beyond 1,000 missed messages, stop paging back
// After a `leave`, one `who` for a burst of them, at a random moment so a room full of
// pages does not ask all at once (every page sees every leave: O(N²) reads otherwise).
const WHO_AFTER_LEAVE_MS = 1500;
const WHO_JITTER_MS = 2500;
const NAME_KEY = 'chat.username';

const $ = (id) => document.getElementById(id);
const ui = {
  joinView: $('join-view'), joinForm: $('join-form'), username: $('username'), room: $('room'),
  usernameHint: $('username-hint'), roomHint: $('room-hint'), joinError: $('join-error'),
  chatView: $('chat-view'), roomName: $('room-name'), meName: $('me-name'), leave: $('leave'),
  status: $('status'), retryNow: $('retry-now'), scroller: $('scroller'), log: $('messages'),
  loadOlder: $('load-older'), historyStart: $('history-start'), empty: $('empty'),
  jump: $('jump'), typing: $('typing'), composer: $('composer'), text: $('text'),
  textHint: $('text-hint'), online: $('online'), onlineCount: $('online-count'),
  notice: $('notice'), header: $('session-info'), appTitle: $('app-title'),
};

// config.json is fetched relative to the page: the local gateway and CloudFront both
// serve it next to index.html, each with its own WebSocket URL.
const configPromise = fetch('config.json', { cache: 'no-store' }).then((r) => {
  if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
  return r.json();
});

let session = null;

// ---------------------------------------------------------------- join form

function prefill() {
  const params = new URLSearchParams(location.search);
  ui.username.value = params.get('username') ?? localStorage.getItem(NAME_KEY) ?? '';
  ui.room.value = params.get('room') ?? DEFAULT_ROOM;
  // With a name already known, Enter (or one click) is all it takes to rejoin.
  (ui.username.value ? ui.joinForm.querySelector('button[type=submit]') : ui.username).focus();
}

function showFieldProblem(input, hint, problem, defaultHint) {
  input.setAttribute('aria-invalid', problem ? 'true' : 'false');
  hint.textContent = problem || defaultHint;
  hint.classList.toggle('invalid', Boolean(problem));
}

const USERNAME_HINT = '1–32 letters or digits; _ . - allowed, no spaces.';
const ROOM_HINT = 'Lowercase letters, digits and -; empty means general.';

function validateJoin() {
  const name = normalizeUsername(ui.username.value);
  const room = normalizeRoom(ui.room.value);
  const nameProblem = usernameProblem(name);
  const badRoom = roomProblem(room);
  showFieldProblem(ui.username, ui.usernameHint, nameProblem, USERNAME_HINT);
  showFieldProblem(ui.room, ui.roomHint, badRoom, ROOM_HINT);
  return { name, room, ok: !nameProblem && !badRoom, first: nameProblem ? ui.username : ui.room };
}

// Hints appear while typing, but only once a field has content, to avoid scolding early.
for (const input of [ui.username, ui.room]) {
  input.addEventListener('input', () => {
    if (input.value || input.getAttribute('aria-invalid') === 'true') validateJoin();
  });
}

ui.joinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  ui.joinError.textContent = '';
  const { name, room, ok, first } = validateJoin();
  if (!ok) {
    first.focus();
    return;
  }
  let config;
  try {
    config = await configPromise;
    if (typeof config?.websocketUrl !== 'string') throw new Error('config.json has no websocketUrl');
  } catch (err) {
    ui.joinError.textContent = `Cannot start the chat: ${err.message}`;
    return;
  }
  localStorage.setItem(NAME_KEY, name);
  // Keep the room in the address bar so a reload or a shared link lands in the same room.
  const params = new URLSearchParams(location.search);
  params.set('room', room);
  if (params.has('username')) params.set('username', name);
  history.replaceState(null, '', `${location.pathname}?${params}`);
  startSession(config.websocketUrl, name, room);
});

// ---------------------------------------------------------------- session

function startSession(baseUrl, me, room) {
  const store = new RoomStore(room, me);
  const conn = new Connection(socketUrl(baseUrl, me, room));
  const s = {
    store, conn, me, room,
    history: { queue: [], inflight: null }, // one `history` request at a time: replies carry no request id
    lastTypingSent: 0, unread: 0, timers: new Set(),
    inFlight: null, confirmTimer: 0, // our one new_message awaiting its echo (see pumpOutbox)
    whoTimer: 0, // a coalesced `who` after presence leaves (see scheduleWho)
  };
  session = s;

  ui.roomName.textContent = `#${room}`;
  ui.meName.textContent = me;
  ui.log.setAttribute('aria-label', `Messages in #${room}`);
  ui.text.placeholder = `Message #${room}`;
  ui.text.value = '';
  ui.joinView.hidden = true;
  ui.chatView.hidden = false;
  ui.header.hidden = false;
  ui.appTitle.hidden = true;
  document.title = `#${room} · Chat`;
  renderAll(s, { stick: true });
  ui.text.focus();

  conn.addEventListener('status', (e) => onStatus(s, e.detail));
  conn.addEventListener('open', (e) => onOpen(s, e.detail.reconnect));
  conn.addEventListener('frame', (e) => onFrame(s, e.detail));
  conn.addEventListener('refused', () => {
    endSession();
    ui.joinError.textContent =
      `Could not join #${room} as “${me}”: the server refused the connection ` +
      '(it rejects names or rooms outside the rules) or is not reachable. Try again in a moment.';
    ui.username.focus();
  });
  conn.start();
}

function endSession() {
  if (!session) return;
  const s = session;
  session = null;
  s.conn.stop();
  for (const t of s.timers) clearInterval(t);
  clearTimeout(s.confirmTimer);
  clearTimeout(s.whoTimer);
  clearTimeout(s.history.inflight?.timer);
  ui.chatView.hidden = true;
  ui.header.hidden = true;
  ui.appTitle.hidden = false;
  ui.joinView.hidden = false;
  ui.log.replaceChildren();
  ui.log._nodes = null;
  ui.online.replaceChildren();
  ui.onlineCount.textContent = '';
  ui.typing.textContent = '';
  ui.jump.hidden = true;
  clearInterval(countdownTimer);
  document.title = 'Chat';
}

ui.leave.addEventListener('click', () => {
  endSession();
  prefill();
});

ui.retryNow.addEventListener('click', () => session?.conn.retryNow());

let countdownTimer = 0;
function onStatus(s, { state, retryAt }) {
  if (s !== session) return; // a session being left reports its last "offline"
  renderStatus(ui.status, state, retryAt);
  ui.retryNow.hidden = !(state === 'reconnecting' && retryAt) && state !== 'offline';
  clearInterval(countdownTimer);
  if (state === 'reconnecting' && retryAt) {
    countdownTimer = setInterval(() => renderStatus(ui.status, s.conn.state, s.conn.retryAt), 250);
  }
  if (state !== 'online') {
    // Whatever was in flight on the old socket will never be answered.
    clearTimeout(s.history.inflight?.timer);
    s.history.inflight = null;
    s.history.queue = [];
    if (s.inFlight) {
      s.store.setOutboxState(s.inFlight, 'queued');
      settle(s, s.inFlight);
      renderAll(s);
    }
    updateOlderButton(s);
  }
}

function onOpen(s, reconnect) {
  if (s !== session) return;
  clearTimeout(s.whoTimer);
  s.whoTimer = 0;
  s.conn.send(frames.who());
  const store = s.store;
  if (store.lastId && (store.olderCursor || store.reachedStart)) {
    // Catch up: page back from the newest message until we reach the last one we saw.
    requestHistory(s, { kind: 'catchup', target: store.lastId, pages: 1 });
  } else {
    // No history page has arrived yet (a live message or our own echo may have): only the
    // newest page decides "load older" and "start of the room". Overlaps merge by id.
    requestHistory(s, { kind: 'latest' });
  }
  // Messages typed while offline, or sent just before the drop: resending with the same
  // client_id is safe (the server stores each once and echoes the original).
  pumpOutbox(s);
  if (reconnect) showNotice('Reconnected.', 3000);
}

// ---------------------------------------------------------------- incoming events

function onFrame(s, data) {
  if (s !== session) return;
  if (data.room !== undefined && data.room !== s.store.room) return; // never another room's event
  switch (data.type) {
    case 'message': {
      const own = data.username === s.me;
      const stick = own || isNearBottom();
      const added = s.store.merge([data]);
      s.store.stopTyping(data.username);
      if (own) settle(s, data.client_id);
      renderAll(s, { stick });
      if (added.length && !own && !stick) showJump();
      if (added.length && !own && document.hidden) bumpUnread(s);
      break;
    }
    case 'history':
      onHistory(s, data);
      break;
    case 'who':
      s.store.setOnline(Array.isArray(data.users) ? data.users.map(String) : []);
      renderOnlineList(s);
      break;
    case 'presence':
      if (data.event === 'join') s.store.online.add(String(data.username));
      if (data.event === 'leave') {
        // One user may have several tabs: drop the name now, then let a `who` a little
        // later say who is really left (it lists each username once however many
        // connections it has). One `who` covers a whole burst of leaves.
        s.store.online.delete(String(data.username));
        s.store.stopTyping(String(data.username));
        scheduleWho(s);
        renderTypingLine(s);
      }
      renderOnlineList(s);
      break;
    case 'typing':
      s.store.markTyping(String(data.username));
      renderTypingLine(s);
      ensureTypingTicker(s);
      break;
    case 'pong':
      break;
    case 'error':
      onError(s, data);
      break;
    default:
      if (data.type === undefined && typeof data.message === 'string') {
        // API Gateway's own failure frame ({"message": "Internal server error", ...}) has
        // no type and no client_id; a history request in flight is the likely victim.
        failHistory(s);
        showNotice(`The server hit a problem (${data.message}). Try again.`);
      }
  }
}

function onError(s, data) {
  const message = String(data.message ?? data.code ?? 'error');
  if (data.client_id && s.store.outbox.has(data.client_id)) {
    settle(s, data.client_id);
    const reason = data.code === 'rate_limited' ? 'sending too fast, wait a moment' : message;
    s.store.setOutboxState(data.client_id, 'failed', reason);
    renderAll(s);
    return;
  }
  const loading = s.history.inflight;
  if (loading && data.code === 'internal' && loading.kind !== 'older') {
    // The room cannot be loaded on this connection (on the local gateway a connection can
    // lose its server-side record, and every frame then fails): a new connection heals it.
    failHistory(s, { retry: false });
    s.conn.reconnect();
    if (s.conn.state === 'offline') {
      showNotice(`#${s.room} cannot be loaded: the server keeps failing. Use “Retry now” to try again.`, 60000);
    }
    return;
  }
  if (loading && (data.code === 'invalid_message' || data.code === 'internal')) failHistory(s);
  showNotice(`Server: ${message}`);
}

function scheduleWho(s) {
  if (s.whoTimer) return;
  s.whoTimer = setTimeout(() => {
    s.whoTimer = 0;
    if (session === s) s.conn.send(frames.who()); // offline: onOpen asks anyway
  }, WHO_AFTER_LEAVE_MS + Math.random() * WHO_JITTER_MS);
}

// ---------------------------------------------------------------- history

function requestHistory(s, req) {
  s.history.queue.push(req);
  pumpHistory(s);
}

function pumpHistory(s) {
  const h = s.history;
  if (h.inflight || !h.queue.length) return;
  const req = h.queue.shift();
  if (!s.conn.send(frames.history(req.before))) return; // offline: onOpen will ask again
  req.timer = setTimeout(() => failHistory(s), HISTORY_TIMEOUT_MS);
  h.inflight = req;
  updateOlderButton(s);
}

function failHistory(s, { retry = true } = {}) {
  const req = s.history.inflight;
  if (!req) return;
  clearTimeout(req.timer);
  s.history.inflight = null;
  // "Load older" has a button to press again; the first page and the catch-up do not,
  // so they retry by themselves a few times (a fresh connection starts them over anyway).
  const retries = req.retries ?? 0;
  if (retry && req.kind !== 'older' && retries < 3) {
    const again = { ...req, timer: 0, retries: retries + 1 };
    setTimeout(() => { if (session === s && s.conn.state === 'online') requestHistory(s, again); }, 2000);
  }
  updateOlderButton(s);
  pumpHistory(s);
}

function onHistory(s, data) {
  const req = s.history.inflight;
  if (!req) return;
  clearTimeout(req.timer);
  s.history.inflight = null;
  s.conn.markHealthy(); // this connection serves the room: only now reset the backoff
  const messages = Array.isArray(data.messages) ? data.messages : [];
  const before = data.before ?? null;
  const store = s.store;
  if (req.kind === 'older') {
    // Keep what the reader was looking at still while older messages land above it.
    const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
    ui.log.setAttribute('aria-busy', 'true');
    store.merge(messages);
    store.olderCursor = before;
    store.reachedStart = before === null;
    renderAll(s);
    ui.scroller.scrollTop = ui.scroller.scrollHeight - fromBottom;
    ui.log.setAttribute('aria-busy', 'false');
  } else if (req.kind === 'latest') {
    ui.log.setAttribute('aria-busy', 'true');
    store.merge(messages);
    store.olderCursor = before;
    store.reachedStart = before === null;
    renderAll(s, { stick: true });
    ui.log.setAttribute('aria-busy', 'false');
  } else {
    // catch-up: the older cursor still describes the far end of what we hold, keep it.
    const stick = isNearBottom();
    const added = store.merge(messages);
    renderAll(s, { stick });
    if (added.length && !stick) showJump();
    const oldest = messages[0]?.id;
    if (before && oldest && oldest > req.target && req.pages < CATCH_UP_MAX_PAGES) {
      s.history.queue.unshift({ kind: 'catchup', target: req.target, before, pages: req.pages + 1 });
    }
  }
  // Our in-flight message may have been confirmed by this page rather than its echo.
  if (s.inFlight && !store.outbox.has(s.inFlight)) settle(s, s.inFlight);
  updateOlderButton(s);
  pumpHistory(s);
}

function updateOlderButton(s) {
  const store = s.store;
  const loading = s.history.inflight?.kind === 'older';
  ui.loadOlder.hidden = store.reachedStart || !store.olderCursor;
  ui.loadOlder.disabled = loading || s.conn.state !== 'online';
  ui.loadOlder.textContent = loading ? 'Loading…' : 'Load older messages';
  ui.historyStart.hidden = !store.reachedStart;
  ui.historyStart.textContent = `This is the start of #${store.room}.`;
  ui.empty.hidden = !(store.reachedStart && store.messages.size === 0 && store.outbox.size === 0);
}

ui.loadOlder.addEventListener('click', () => {
  const s = session;
  if (!s || !s.store.olderCursor) return;
  if (s.history.queue.some((r) => r.kind === 'older') || s.history.inflight?.kind === 'older') return;
  requestHistory(s, { kind: 'older', before: s.store.olderCursor });
  updateOlderButton(s);
});

// ---------------------------------------------------------------- sending

// One new_message in flight at a time. The server may handle frames of one connection
// concurrently (one Lambda invocation each), so a burst sent at once can be stored, and
// ordered by id, out of the order it was typed; waiting for each echo keeps our own
// messages in the order we wrote them.
function pumpOutbox(s) {
  if (s.inFlight || s.conn.state !== 'online') return;
  const next = [...s.store.outbox.values()].find((e) => e.state === 'queued');
  if (!next || !s.conn.send(frames.newMessage(next.text, next.clientId))) return;
  s.inFlight = next.clientId;
  s.store.setOutboxState(next.clientId, 'sending');
  s.confirmTimer = setTimeout(() => {
    const clientId = s.inFlight;
    settle(s, clientId);
    if (s.store.setOutboxState(clientId, 'failed', 'no reply from the server')) renderAll(s);
  }, CONFIRM_TIMEOUT_MS);
  renderAll(s);
}

/** The in-flight message got its answer (echo, error or timeout): send the next one. */
function settle(s, clientId) {
  if (!clientId || clientId !== s.inFlight) return;
  clearTimeout(s.confirmTimer);
  s.inFlight = null;
  queueMicrotask(() => { if (session === s) pumpOutbox(s); });
}

function retry(clientId) {
  const s = session;
  if (s && s.store.setOutboxState(clientId, 'queued')) {
    renderAll(s);
    pumpOutbox(s);
  }
}

function submitComposer() {
  const s = session;
  if (!s) return;
  const { text, problem } = checkText(ui.text.value);
  if (problem === 'empty') return;
  if (problem) {
    ui.textHint.textContent = problem;
    return;
  }
  const clientId = newClientId();
  s.store.queue(clientId, text, 'queued');
  ui.text.value = '';
  autoGrow();
  updateTextHint();
  s.lastTypingSent = 0;
  renderAll(s, { stick: true });
  pumpOutbox(s);
}

ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  submitComposer();
});

ui.text.addEventListener('keydown', (ev) => {
  // Enter sends, Shift+Enter is a new line; never interrupt an IME composition.
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    submitComposer();
  }
});

ui.text.addEventListener('input', () => {
  autoGrow();
  updateTextHint();
  const s = session;
  if (!s || !ui.text.value.trim()) return;
  const now = Date.now();
  if (now - s.lastTypingSent >= TYPING_EVERY_MS && s.conn.send(frames.typing())) s.lastTypingSent = now;
});

function autoGrow() {
  // Empty: back to the stylesheet's one line (a long placeholder must not grow it).
  ui.text.style.height = 'auto';
  ui.text.style.height = ui.text.value ? `${Math.min(ui.text.scrollHeight + 2, 160)}px` : '';
}

function updateTextHint() {
  const n = codePoints(ui.text.value.trim());
  ui.textHint.textContent = n > MAX_TEXT - 200 ? `${n}/${MAX_TEXT}` : '';
  ui.textHint.classList.toggle('invalid', n > MAX_TEXT);
}

// ---------------------------------------------------------------- rendering helpers

function isNearBottom() {
  const sc = ui.scroller;
  return sc.scrollHeight - sc.scrollTop - sc.clientHeight < 80;
}

function renderAll(s, { stick = false } = {}) {
  const wasNear = isNearBottom();
  renderMessages(ui.log, s.store.timeline(), { me: s.me, onRetry: retry });
  updateOlderButton(s);
  if (stick || wasNear) {
    ui.scroller.scrollTop = ui.scroller.scrollHeight;
    ui.jump.hidden = true;
  }
}

function renderOnlineList(s) {
  renderOnline(ui.online, ui.onlineCount, s.store.online, s.me);
}

function renderTypingLine(s) {
  renderTyping(ui.typing, s.store.typingNow());
}

// One ticker while someone is typing, so the line disappears 5 s after their last event.
function ensureTypingTicker(s) {
  if (s.typingTicker) return;
  s.typingTicker = setInterval(() => {
    renderTypingLine(s);
    if (!s.store.typing.size) {
      clearInterval(s.typingTicker);
      s.timers.delete(s.typingTicker);
      s.typingTicker = 0;
    }
  }, 500);
  s.timers.add(s.typingTicker);
}

function showJump() {
  ui.jump.hidden = false;
}

ui.jump.addEventListener('click', () => {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
  ui.jump.hidden = true;
  ui.text.focus();
});

ui.scroller.addEventListener('scroll', () => {
  if (isNearBottom()) ui.jump.hidden = true;
});

function bumpUnread(s) {
  s.unread += 1;
  document.title = `(${s.unread}) #${s.room} · Chat`;
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && session) {
    session.unread = 0;
    document.title = `#${session.room} · Chat`;
  }
});

let noticeTimer = 0;
function showNotice(text, ms = 8000) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { ui.notice.hidden = true; }, ms);
}

prefill();
