// One room session: its connection, its state machines (store, history, outbox, our
// edits and reactions, the read marker, the room list) and its lifecycle (start, status,
// open, switch room, leave). Incoming events are applied by incoming.js; drawing is
// screen.js's.

import { messageActions } from './actions.js';
import { showMode, startEdit } from './composer.js';
import { Connection } from './connection.js';
import { showNotice, ui } from './dom.js';
import { HistoryLoader } from './history.js';
import { errorText, t } from './i18n.js';
import { onFrame } from './incoming.js';
import { closeMenu } from './menus.js';
import { Outbox } from './outbox.js';
import { bearerProtocols, frames, newClientId, socketUrl } from './protocol.js';
import { ReadMarker } from './readmarker.js';
import { Requests } from './requests.js';
import { renderRooms } from './room_list.js';
import { RoomList } from './rooms.js';
import { clearRoom, renderAll, updateOlderButton } from './screen.js';
import { SeenWatcher } from './seen.js';
import { SlowDown } from './slowdown.js';
import { app } from './state.js';
import { RoomStore } from './store.js';
import { renderStatus } from './view.js';

const ROOMS_EVERY_MS = 30000; // the room list's unread counts, refreshed while the tab is visible
const CLOSE_AFTER_MARK_MS = 1000;

const hooks = {
  signInGone: () => {}, // the connection found no sign-in to offer (signin.js)
};

export function setChatHooks(h) {
  Object.assign(hooks, h);
}

export function startSession({ websocketUrl, rules: r }, me, room, { roomList = null } = {}) {
  // Signed in, the name is the token's: the URL carries the room only, and each attempt
  // offers a fresh ID token as a subprotocol.
  const signedIn = app.auth;
  const conn = signedIn
    ? new Connection(socketUrl(websocketUrl, null, room), {
      protocols: async () => bearerProtocols(await signedIn.idToken()),
    })
    : new Connection(socketUrl(websocketUrl, me, room));
  const send = (frame) => conn.send(frame);
  const live = () => app.session === s;
  const s = {
    store: new RoomStore(room, me), conn, me, room, rules: r,
    lastTypingSent: 0, unread: 0, timers: new Set(), editing: null,
    whoTimer: 0, // a coalesced `who` after presence leaves (see incoming.js)
    slow: new SlowDown(), // the gateway's throttle answers: how long to back off
    roomList: roomList ?? new RoomList({ unreadMax: r.unreadMax }),
    onRendered: () => labelRoom(s),
    showRooms: () => showRooms(s),
  };
  s.history = new HistoryLoader({
    send, pageSize: r.historyLimit, onChange: () => { if (live()) updateOlderButton(s); },
  });
  s.outbox = new Outbox({ me, send, onChange: () => { if (live()) renderAll(s); } });
  s.requests = new Requests({
    me, send, newId: newClientId,
    onFailed: (_entry, code) => { if (live()) showNotice(t('notice.actionFailed', { reason: errorText(code) })); },
  });
  s.marker = new ReadMarker({ send, onChange: () => { if (live()) labelRoom(s); } });
  s.seen = new SeenWatcher((id) => s.marker.seen(id));
  s.on = messageActions(s, { startEdit });
  app.session = s;

  ui.roomName.textContent = `#${room}`;
  ui.meName.textContent = me;
  ui.text.value = '';
  showMode(s);
  ui.joinView.hidden = true;
  ui.chatView.hidden = false;
  ui.header.hidden = false;
  ui.appTitle.hidden = true;
  renderAll(s, { stick: true });
  showRooms(s);
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
  s.roomsTimer = setInterval(() => {
    if (live() && document.visibilityState === 'visible') conn.send(frames.rooms());
  }, ROOMS_EVERY_MS);
  s.timers.add(s.roomsTimer);
}

/** Stop a session's socket and machines (leaving, or switching to another room). */
function stopSession(s) {
  if (app.session === s) app.session = null;
  closeMenu({ focus: false });
  // What was seen is marked while the socket is still there; a mark_read just sent gets
  // a moment to be handled before its socket closes (the server reads the connection).
  if (s.marker.flush()) setTimeout(() => s.conn.stop(), CLOSE_AFTER_MARK_MS);
  else s.conn.stop();
  s.history.stop();
  s.outbox.stop();
  s.requests.stop();
  s.marker.stop();
  s.seen.stop();
  for (const timer of s.timers) clearInterval(timer);
  clearTimeout(s.whoTimer);
  clearRoom();
  clearInterval(countdownTimer);
}

export function endSession() {
  const s = app.session;
  if (!s) return;
  stopSession(s);
  ui.chatView.hidden = true;
  ui.header.hidden = true;
  ui.appTitle.hidden = false;
  ui.joinView.hidden = false;
  document.title = t('app.title');
}

/** Go to another room without reloading the page: a new connection to it. */
export function switchRoom(room) {
  const s = app.session;
  if (!s || room === s.room) return;
  stopSession(s);
  const params = new URLSearchParams(location.search);
  params.set('room', room);
  history.replaceState(null, '', `${location.pathname}?${params}`);
  startSession(app.config, s.me, room, { roomList: s.roomList });
}

/** The room's words in the current language: its log's label, the placeholder, the title. */
export function labelRoom(s) {
  ui.log.setAttribute('aria-label', t('messages.labelRoom', { room: s.room }));
  ui.text.placeholder = t('composer.placeholder', { room: s.room });
  // Unread: others' messages after the read marker, until they are seen.
  s.unread = s.marker.unread(s.store.messages.values(), s.me);
  document.title = s.unread
    ? t('app.roomTitleUnread', { count: s.unread, room: s.room })
    : t('app.roomTitle', { room: s.room });
}

export function showRooms(s) {
  renderRooms(s.roomList.view(s.room), switchRoom);
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
    s.requests.disconnected();
  }
}

function onOpen(s, reconnect) {
  if (s !== app.session) return;
  clearTimeout(s.whoTimer);
  s.whoTimer = 0;
  s.conn.send(frames.who());
  s.history.connected(s.store.lastId); // the newest page, or a catch-up to the last id seen
  s.outbox.connected(); // messages typed while offline, or cut off by the drop
  s.requests.connected(); // edits, deletes and reactions not answered on the old socket
  s.marker.flush();
  s.conn.send(frames.rooms());
  if (reconnect) showNotice(t('notice.reconnected'), 3000);
}

export function wireChat({ onLeave }) {
  ui.leave.addEventListener('click', () => {
    endSession();
    onLeave();
  });
  ui.retryNow.addEventListener('click', () => app.session?.conn.retryNow());
  document.addEventListener('visibilitychange', () => {
    const s = app.session;
    if (!s || document.visibilityState !== 'visible') return;
    s.seen.report(); // what is on screen now counts as seen
    s.conn.send(frames.rooms());
  });
}
