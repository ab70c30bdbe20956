// What the server sends, applied to the room session: messages, history pages, who is
// online and typing, and errors. Each event is checked against the session's room, so
// another room's event can never show here.

import { showNotice, ui } from './dom.js';
import { errorText, t } from './i18n.js';
import { frames } from './protocol.js';
import {
  ensureTypingTicker, isNearBottom, renderAll, renderOnlineList, renderTypingLine, showDivider, showJump,
} from './screen.js';
import { SlowDown } from './slowdown.js';
import { app } from './state.js';

// After a `leave`, one `who` for a burst of them, at a random moment so a room full of
// pages does not ask all at once (every page sees every leave: O(N²) reads otherwise).
const WHO_AFTER_LEAVE_MS = 1500;
const WHO_JITTER_MS = 2500;

export function onFrame(s, data) {
  if (s !== app.session) return;
  if (data.room !== undefined && data.room !== s.store.room) return; // never another room's event
  if (data.type === 'history' || data.type === 'error' || data.username === s.me) s.slow.served();
  switch (data.type) {
    case 'message': {
      const own = data.username === s.me;
      const stick = own || isNearBottom();
      const added = s.store.merge([data]);
      s.store.stopTyping(data.username);
      if (own) s.outbox.confirm([data]);
      renderAll(s, { stick });
      if (added.length && !own && !stick) showJump();
      break;
    }
    case 'message_updated':
    case 'message_deleted':
    case 'reactions': {
      const stick = isNearBottom();
      const apply = { message_updated: 'updated', message_deleted: 'deleted', reactions: 'reacted' }[data.type];
      s.requests.event(data);
      if (s.store[apply](data) === 'applied') renderAll(s, { stick });
      break;
    }
    case 'read_marker':
      s.marker.fromOtherTab(data.id); // another tab of ours read this far
      break;
    case 'rooms':
      s.roomList.received(data);
      s.showRooms();
      break;
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
      if (SlowDown.isThrottle(data)) {
        // The gateway dropped one of our frames, without saying which: every frame not
        // answered yet goes again after a backoff (slowdown.js).
        const delay = s.slow.hit();
        s.outbox.throttled(delay);
        s.history.throttled(delay);
        s.requests.throttled(delay);
        s.marker.throttled(delay);
      } else if (data.type === undefined && typeof data.message === 'string') {
        // API Gateway's own failure frame ({"message": "Internal server error", ...}) has
        // no type and no client_id; a history request in flight is the likely victim.
        s.history.failed();
        showNotice(t('notice.gatewayProblem', { message: data.message }));
      }
  }
}

function onError(s, data) {
  const code = String(data.code ?? '');
  if (data.client_id && s.outbox.rejected(data.client_id, code)) return;
  if (data.client_id && s.requests.rejected(data.client_id, code)) return; // it says so itself
  const loading = s.history.inFlight;
  if (loading && data.code === 'internal' && loading.kind !== 'older') {
    // The room cannot be loaded on this connection (on the local gateway a connection can
    // lose its server-side record, and every frame then fails): a new connection heals it.
    s.history.failed({ retry: false });
    s.conn.reconnect();
    if (s.conn.state === 'offline') {
      showNotice(t('notice.cannotLoad', { room: s.room }), 60000);
    }
    return;
  }
  if (loading && (data.code === 'invalid_message' || data.code === 'internal')) s.history.failed();
  showNotice(t('notice.server', { message: errorText(code, data.message) }));
}

export function scheduleWho(s) {
  if (s.whoTimer) return;
  s.whoTimer = setTimeout(() => {
    s.whoTimer = 0;
    if (app.session === s) s.conn.send(frames.who()); // offline: onOpen asks anyway
  }, WHO_AFTER_LEAVE_MS + Math.random() * WHO_JITTER_MS);
}

function onHistory(s, data) {
  const stick = isNearBottom();
  const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
  const page = s.history.received(data);
  if (!page) return; // nothing asked (a late reply after a timeout): nobody to give it to
  s.conn.markHealthy(); // this connection serves the room: only now reset the backoff
  const store = s.store;
  s.marker.fromHistory(data.read_marker ?? null, page.messages, s.me); // the first places "New messages"
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
    showDivider(); // opening the room with news: start reading where they start
    ui.log.setAttribute('aria-busy', 'false');
  } else {
    const added = store.merge(page.messages);
    renderAll(s, { stick });
    if (added.length && !stick) showJump();
  }
  // Our message in flight may be confirmed by this page rather than by its echo.
  s.outbox.confirm(page.messages);
}
