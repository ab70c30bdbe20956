// One room session: its connection, its state machines (store, history, outbox) and
// its lifecycle (start, status, open, leave). Incoming events are applied by
// incoming.js; drawing is screen.js's.

import { Connection } from './connection.js';
import { showNotice, ui } from './dom.js';
import { HistoryLoader } from './history.js';
import { t } from './i18n.js';
import { onFrame } from './incoming.js';
import { Outbox } from './outbox.js';
import { bearerProtocols, frames, socketUrl } from './protocol.js';
import { clearRoom, renderAll, updateOlderButton } from './screen.js';
import { app } from './state.js';
import { SlowDown } from './slowdown.js';
import { RoomStore } from './store.js';
import { renderStatus } from './view.js';

const hooks = {
  signInGone: () => {}, // the connection found no sign-in to offer (signin.js)
};

export function setChatHooks(h) {
  Object.assign(hooks, h);
}

export function startSession({ websocketUrl, rules: r }, me, room) {
  // Signed in, the name is the token's: the URL carries the room only, and each attempt
  // offers a fresh ID token as a subprotocol.
  const signedIn = app.auth;
  const conn = signedIn
    ? new Connection(socketUrl(websocketUrl, null, room), {
      protocols: async () => bearerProtocols(await signedIn.idToken()),
    })
    : new Connection(socketUrl(websocketUrl, me, room));
  const send = (frame) => conn.send(frame);
  const s = {
    store: new RoomStore(room, me), conn, me, room, rules: r,
    lastTypingSent: 0, unread: 0, timers: new Set(),
    whoTimer: 0, // a coalesced `who` after presence leaves (see incoming.js)
    onUnseen: () => bumpUnread(s),
    slow: new SlowDown(), // the gateway's throttle answers: how long to back off
  };
  s.history = new HistoryLoader({
    send, pageSize: r.historyLimit, onChange: () => { if (app.session === s) updateOlderButton(s); },
  });
  s.outbox = new Outbox({ me, send, onChange: () => { if (app.session === s) renderAll(s); } });
  app.session = s;

  ui.roomName.textContent = `#${room}`;
  ui.meName.textContent = me;
  ui.text.value = '';
  ui.joinView.hidden = true;
  ui.chatView.hidden = false;
  ui.header.hidden = false;
  ui.appTitle.hidden = true;
  labelRoom(s);
  renderAll(s, { stick: true });
  ui.text.focus();

  conn.addEventListener('status', (e) => onStatus(s, e.detail));
  conn.addEventListener('open', (e) => onOpen(s, e.detail.reconnect));
  conn.addEventListener('frame', (e) => onFrame(s, e.detail));
  conn.addEventListener('unauthenticated', () => hooks.signInGone());
  conn.addEventListener('refused', () => {
    endSession();
    ui.joinError.textContent = t('join.refused', { room, name: me });
    ui.username.focus();
  });
  conn.start();
}

export function endSession() {
  const s = app.session;
  if (!s) return;
  app.session = null;
  s.conn.stop();
  s.history.stop();
  s.outbox.stop();
  for (const t of s.timers) clearInterval(t);
  clearTimeout(s.whoTimer);
  ui.chatView.hidden = true;
  ui.header.hidden = true;
  ui.appTitle.hidden = false;
  ui.joinView.hidden = false;
  clearRoom();
  clearInterval(countdownTimer);
  document.title = t('app.title');
}

/** The room's words in the current language: its log's label, the placeholder, the title. */
export function labelRoom(s) {
  ui.log.setAttribute('aria-label', t('messages.labelRoom', { room: s.room }));
  ui.text.placeholder = t('composer.placeholder', { room: s.room });
  document.title = s.unread
    ? t('app.roomTitleUnread', { count: s.unread, room: s.room })
    : t('app.roomTitle', { room: s.room });
}

let countdownTimer = 0;
function onStatus(s, { state, retryAt }) {
  if (s !== app.session) return; // a session being left reports its last "offline"
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
  if (s !== app.session) return;
  clearTimeout(s.whoTimer);
  s.whoTimer = 0;
  s.conn.send(frames.who());
  s.history.connected(s.store.lastId); // the newest page, or a catch-up to the last id seen
  s.outbox.connected(); // messages typed while offline, or cut off by the drop
  if (reconnect) showNotice(t('notice.reconnected'), 3000);
}

function bumpUnread(s) {
  s.unread += 1;
  labelRoom(s);
}

export function wireChat({ onLeave }) {
  ui.leave.addEventListener('click', () => {
    endSession();
    onLeave();
  });
  ui.retryNow.addEventListener('click', () => app.session?.conn.retryNow());
  document.addEventListener('visibilitychange', () => {
    const s = app.session;
    if (!document.hidden && s) {
      s.unread = 0;
      labelRoom(s);
    }
  });
}
