// The page's wiring: the join form, one chat session per room, and the glue between
// the socket, the state machines and the DOM. The decisions live in the modules it wires,
// which know nothing of the DOM (and are unit-tested with `node --test`):
//   protocol.js   the wire contract: rules built from config.json, and frames
//   connection.js one resilient WebSocket (backoff, ping, status)
//   store.js      the room's messages, deduplicated and ordered by id; who is online, typing
//   history.js    the newest page, "load older", and the catch-up after a reconnect
//   outbox.js     our messages on their way: one in flight, failures, retries
//   cognito.js    the Cognito API over fetch, and its errors in plain words
//   session.js    who is signed in; a fresh ID token for every connection
//   view.js       DOM rendering, textContent only

import { CognitoClient, plainWords } from './cognito.js';
import { Connection } from './connection.js';
import { HistoryLoader } from './history.js';
import { Outbox } from './outbox.js';
import {
  bearerProtocols, codePoints, frames, newClientId, normalizeUsername, rules, socketUrl,
} from './protocol.js';
import { AuthSession } from './session.js';
import { RoomStore } from './store.js';
import { renderMessages, renderOnline, renderStatus, renderTyping } from './view.js';

const TYPING_EVERY_MS = 3000; // PROTOCOL: send `typing` at most every 3 s
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
  authView: $('auth-view'), signinForm: $('signin-form'), signupForm: $('signup-form'),
  confirmForm: $('confirm-form'), signOut: $('sign-out'),
};

// config.json is fetched relative to the page: the local gateway and CloudFront both
// serve it next to index.html, each with its own WebSocket URL and the protocol's rules.
const configPromise = fetch('config.json', { cache: 'no-store' })
  .then((r) => {
    if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
    return r.json();
  })
  .then((json) => {
    if (typeof json?.websocketUrl !== 'string') throw new Error('config.json has no websocketUrl');
    return { websocketUrl: json.websocketUrl, rules: rules(json.protocol), auth: json.auth ?? { type: 'none' } };
  });

let config = null; // {websocketUrl, rules, auth} once config.json has arrived
let session = null;
let auth = null; // an AuthSession when config.json's auth is cognito
let cognito = null; // its CognitoClient (sign-up and confirmation go straight to it)
let signingOut = false;

// ---------------------------------------------------------------- join form

let roomAwaitsDefault = false; // the room field is to show the default room once it is known

function prefill() {
  const params = new URLSearchParams(location.search);
  ui.username.value = auth?.username ?? params.get('username') ?? localStorage.getItem(NAME_KEY) ?? '';
  ui.room.value = params.get('room') ?? config?.rules.defaultRoom ?? '';
  roomAwaitsDefault = !params.has('room') && !config;
  // With a name already known, Enter (or one click) is all it takes to rejoin.
  (ui.username.value ? ui.joinForm.querySelector('button[type=submit]') : ui.username).focus();
}

/** The rules have arrived: the form's hints and default room come from them. */
function showRules({ rules: r }) {
  if (ui.username.getAttribute('aria-invalid') !== 'true') ui.usernameHint.textContent = r.usernameHint;
  if (ui.room.getAttribute('aria-invalid') !== 'true') ui.roomHint.textContent = r.roomHint;
  ui.room.placeholder = r.defaultRoom;
  if (roomAwaitsDefault && !ui.room.value) ui.room.value = r.defaultRoom;
  roomAwaitsDefault = false;
}

configPromise.then(
  (c) => {
    config = c;
    showRules(c);
    if (c.auth.type === 'cognito') startSignIn(c);
  },
  () => {}, // said on the join form when the user tries to join
);

function showFieldProblem(input, hint, problem, defaultHint) {
  input.setAttribute('aria-invalid', problem ? 'true' : 'false');
  hint.textContent = problem || defaultHint;
  hint.classList.toggle('invalid', Boolean(problem));
}

function validateJoin(r) {
  const name = normalizeUsername(ui.username.value);
  const room = r.normalizeRoom(ui.room.value);
  const nameProblem = r.usernameProblem(name);
  const badRoom = r.roomProblem(room);
  showFieldProblem(ui.username, ui.usernameHint, nameProblem, r.usernameHint);
  showFieldProblem(ui.room, ui.roomHint, badRoom, r.roomHint);
  return { name, room, ok: !nameProblem && !badRoom, first: nameProblem ? ui.username : ui.room };
}

// Hints appear while typing, but only once a field has content, to avoid scolding early.
for (const input of [ui.username, ui.room]) {
  input.addEventListener('input', () => {
    if (input === ui.room) roomAwaitsDefault = false;
    if (!config) return; // the rules are not here yet; submitting waits for them
    if (input.value || input.getAttribute('aria-invalid') === 'true') validateJoin(config.rules);
  });
}

ui.joinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  ui.joinError.textContent = '';
  let c;
  try {
    c = await configPromise;
  } catch (err) {
    ui.joinError.textContent = `Cannot start the chat: ${err.message}`;
    return;
  }
  const { name, room, ok, first } = validateJoin(c.rules);
  if (!ok) {
    first.focus();
    return;
  }
  if (!auth) localStorage.setItem(NAME_KEY, name);
  // Keep the room in the address bar so a reload or a shared link lands in the same room.
  const params = new URLSearchParams(location.search);
  params.set('room', room);
  if (params.has('username')) params.set('username', name);
  history.replaceState(null, '', `${location.pathname}?${params}`);
  startSession(c, name, room);
});

// ---------------------------------------------------------------- session

function startSession({ websocketUrl, rules: r }, me, room) {
  // Signed in, the name is the token's: the URL carries the room only, and each attempt
  // offers a fresh ID token as a subprotocol.
  const signedIn = auth;
  const conn = signedIn
    ? new Connection(socketUrl(websocketUrl, null, room), {
      protocols: async () => bearerProtocols(await signedIn.idToken()),
    })
    : new Connection(socketUrl(websocketUrl, me, room));
  const send = (frame) => conn.send(frame);
  const s = {
    store: new RoomStore(room, me), conn, me, room, rules: r,
    lastTypingSent: 0, unread: 0, timers: new Set(),
    whoTimer: 0, // a coalesced `who` after presence leaves (see scheduleWho)
  };
  s.history = new HistoryLoader({
    send, pageSize: r.historyLimit, onChange: () => { if (session === s) updateOlderButton(s); },
  });
  s.outbox = new Outbox({ me, send, onChange: () => { if (session === s) renderAll(s); } });
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
  conn.addEventListener('unauthenticated', sessionEnded);
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
  s.history.stop();
  s.outbox.stop();
  for (const t of s.timers) clearInterval(t);
  clearTimeout(s.whoTimer);
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
    s.history.disconnected();
    s.outbox.disconnected();
  }
}

function onOpen(s, reconnect) {
  if (s !== session) return;
  clearTimeout(s.whoTimer);
  s.whoTimer = 0;
  s.conn.send(frames.who());
  s.history.connected(s.store.lastId); // the newest page, or a catch-up to the last id seen
  s.outbox.connected(); // messages typed while offline, or cut off by the drop
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
      if (own) s.outbox.confirm([data]);
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
        s.history.failed();
        showNotice(`The server hit a problem (${data.message}). Try again.`);
      }
  }
}

function onError(s, data) {
  const message = String(data.message ?? data.code ?? 'error');
  const reason = data.code === 'rate_limited' ? 'sending too fast, wait a moment' : message;
  if (data.client_id && s.outbox.rejected(data.client_id, reason)) return;
  const loading = s.history.inFlight;
  if (loading && data.code === 'internal' && loading.kind !== 'older') {
    // The room cannot be loaded on this connection (on the local gateway a connection can
    // lose its server-side record, and every frame then fails): a new connection heals it.
    s.history.failed({ retry: false });
    s.conn.reconnect();
    if (s.conn.state === 'offline') {
      showNotice(`#${s.room} cannot be loaded: the server keeps failing. Use “Retry now” to try again.`, 60000);
    }
    return;
  }
  if (loading && (data.code === 'invalid_message' || data.code === 'internal')) s.history.failed();
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

function onHistory(s, data) {
  const stick = isNearBottom();
  const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
  const page = s.history.received(data);
  if (!page) return; // nothing asked (a late reply after a timeout): nobody to give it to
  s.conn.markHealthy(); // this connection serves the room: only now reset the backoff
  const store = s.store;
  if (page.kind === 'older') {
    // Keep what the reader was looking at still while older messages land above it.
    ui.log.setAttribute('aria-busy', 'true');
    store.merge(page.messages);
    renderAll(s);
    ui.scroller.scrollTop = ui.scroller.scrollHeight - fromBottom;
    ui.log.setAttribute('aria-busy', 'false');
  } else if (page.kind === 'latest') {
    ui.log.setAttribute('aria-busy', 'true');
    store.merge(page.messages);
    renderAll(s, { stick: true });
    ui.log.setAttribute('aria-busy', 'false');
  } else {
    const added = store.merge(page.messages);
    renderAll(s, { stick });
    if (added.length && !stick) showJump();
  }
  // Our message in flight may be confirmed by this page rather than by its echo.
  s.outbox.confirm(page.messages);
}

function updateOlderButton(s) {
  const h = s.history;
  ui.loadOlder.hidden = !h.canLoadOlder;
  ui.loadOlder.disabled = h.loadingOlder || s.conn.state !== 'online';
  ui.loadOlder.textContent = h.loadingOlder ? 'Loading…' : 'Load older messages';
  ui.historyStart.hidden = !h.reachedStart;
  ui.historyStart.textContent = `This is the start of #${s.room}.`;
  ui.empty.hidden = !(h.reachedStart && s.store.messages.size === 0 && s.outbox.size === 0);
}

ui.loadOlder.addEventListener('click', () => session?.history.loadOlder());

// ---------------------------------------------------------------- sending

function submitComposer() {
  const s = session;
  if (!s) return;
  const { text, problem } = s.rules.checkText(ui.text.value);
  if (problem === 'empty') return;
  if (problem) {
    ui.textHint.textContent = problem;
    return;
  }
  ui.text.value = '';
  autoGrow();
  updateTextHint();
  s.lastTypingSent = 0;
  s.outbox.add(newClientId(), text); // shown at once, sent when its turn comes
  renderAll(s, { stick: true });
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
  const max = session?.rules.textMaxLength;
  if (!max) return;
  const n = codePoints(ui.text.value.trim());
  ui.textHint.textContent = n > max - 200 ? `${n}/${max}` : '';
  ui.textHint.classList.toggle('invalid', n > max);
}

// ---------------------------------------------------------------- rendering helpers

function isNearBottom() {
  const sc = ui.scroller;
  return sc.scrollHeight - sc.scrollTop - sc.clientHeight < 80;
}

function renderAll(s, { stick = false } = {}) {
  const wasNear = isNearBottom();
  renderMessages(ui.log, s.store.timeline(s.outbox.entries.values()), {
    me: s.me,
    onRetry: (clientId) => s.outbox.retry(clientId),
  });
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

// ---------------------------------------------------------------- sign-in (auth: cognito)

const authUi = {
  signin: ui.signinForm, signup: ui.signupForm, confirm: ui.confirmForm,
};
let pendingSignUp = null; // {username, password} between sign-up and its confirmation

async function startSignIn(c) {
  cognito = new CognitoClient({ endpoint: c.auth.endpoint, clientId: c.auth.clientId });
  auth = new AuthSession({
    client: cognito,
    storage: globalThis.sessionStorage,
    onChange: () => {
      // The refresh token was refused (revoked, expired): back to signing in.
      if (!auth.signedIn && !signingOut && (session || ui.authView.hidden)) sessionEnded();
    },
  });
  ui.username.readOnly = true;
  $('signup-username-hint').textContent = c.rules.usernameHint;
  if (await auth.restore()) showJoin();
  else showAuth('signin');
}

// The sign-in is gone (its tokens refused): leave the room, ask to sign in again.
function sessionEnded() {
  endSession();
  showAuth('signin', 'Your session has ended: sign in again.');
}

function showAuth(which, message = '') {
  ui.signOut.hidden = true;
  ui.joinView.hidden = true;
  ui.authView.hidden = false;
  for (const [name, form] of Object.entries(authUi)) form.hidden = name !== which;
  for (const id of ['signin-error', 'signup-error', 'confirm-error']) $(id).textContent = '';
  if (message) $(`${which}-error`).textContent = message;
  authUi[which].querySelector('input:not([readonly])')?.focus();
}

function showJoin() {
  ui.authView.hidden = true;
  ui.joinView.hidden = false;
  ui.signOut.hidden = false;
  prefill();
}

async function busy(form, errorId, work) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  $(errorId).textContent = '';
  try {
    await work();
  } catch (err) {
    $(errorId).textContent = plainWords(err);
    return err;
  } finally {
    button.disabled = false;
  }
  return null;
}

ui.signinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const username = normalizeUsername($('signin-username').value);
  const password = $('signin-password').value;
  const err = await busy(ui.signinForm, 'signin-error', () => auth.signIn(username, password));
  if (!err) {
    $('signin-password').value = '';
    showJoin();
  } else if (err.type === 'UserNotConfirmedException') {
    pendingSignUp = { username, password };
    showConfirm(username, plainWords(err));
  }
});

ui.signupForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const username = normalizeUsername($('signup-username').value);
  const problem = config.rules.usernameProblem(username);
  if (problem) {
    $('signup-error').textContent = problem;
    return;
  }
  const email = $('signup-email').value.trim();
  const password = $('signup-password').value;
  const err = await busy(ui.signupForm, 'signup-error',
    () => cognito.signUp(username, password, email));
  if (!err) {
    pendingSignUp = { username, password };
    $('signup-password').value = '';
    showConfirm(username);
  }
});

function showConfirm(username, message = '') {
  showAuth('confirm', message);
  $('confirm-info').textContent = `We emailed a code to the address of “${username}”. Enter it here.`;
  $('confirm-code').value = '';
}

ui.confirmForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const pending = pendingSignUp;
  if (!pending) return showAuth('signin');
  const code = $('confirm-code').value.trim();
  const err = await busy(ui.confirmForm, 'confirm-error', async () => {
    await cognito.confirmSignUp(pending.username, code);
    await auth.signIn(pending.username, pending.password);
  });
  if (!err) {
    pendingSignUp = null; // the password is not kept a moment longer than needed
    showJoin();
  }
});

$('resend-code').addEventListener('click', async () => {
  if (!pendingSignUp) return;
  const err = await busy(ui.confirmForm, 'confirm-error', () => cognito.resendCode(pendingSignUp.username));
  if (!err) $('confirm-error').textContent = 'A new code is on its way.';
});

$('show-signup').addEventListener('click', () => showAuth('signup'));
$('show-signin').addEventListener('click', () => showAuth('signin'));

ui.signOut.addEventListener('click', async () => {
  endSession();
  signingOut = true;
  try {
    await auth?.signOut();
  } finally {
    signingOut = false;
  }
  showAuth('signin');
});

prefill();
