// Drawing the room session on the page: the message list, the "load older" button, the
// people list, the typing line, and keeping the view stuck to the bottom while the
// reader is there. Rendering itself (as text) is in view.js.

import { ui } from './dom.js';
import { t } from './i18n.js';
import { app } from './state.js';
import { renderMessages, renderOnline, renderTyping } from './view.js';

export function isNearBottom() {
  const sc = ui.scroller;
  return sc.scrollHeight - sc.scrollTop - sc.clientHeight < 80;
}

export function scrollToBottom() {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
  ui.jump.hidden = true;
}

export function renderAll(s, { stick = false } = {}) {
  const wasNear = isNearBottom();
  renderMessages(ui.log, s.store.timeline(s.outbox.entries.values()), {
    on: s.on, dividerAfter: s.marker.dividerAfter,
  });
  updateOlderButton(s);
  if (stick || wasNear) scrollToBottom();
  s.seen.watch();
  s.onRendered();
}

/** Opening a room with news: the "New messages" divider at the top of the view. */
export function showDivider() {
  const divider = ui.log.querySelector('.new-divider');
  if (!divider) return false;
  ui.scroller.scrollTop = Math.max(0, divider.offsetTop - ui.scroller.offsetTop - 8);
  return true;
}

export function updateOlderButton(s) {
  const h = s.history;
  ui.loadOlder.hidden = !h.canLoadOlder;
  ui.loadOlder.disabled = h.loadingOlder || s.conn.state !== 'online';
  ui.loadOlder.textContent = h.loadingOlder ? t('history.loading') : t('history.loadOlder');
  ui.historyStart.hidden = !h.reachedStart;
  ui.historyStart.textContent = t('history.start', { room: s.room });
  ui.empty.hidden = !(h.reachedStart && s.store.messages.size === 0 && s.outbox.size === 0);
}

export function renderOnlineList(s) {
  renderOnline(ui.online, ui.onlineCount, s.store.online, s.me);
}

export function renderTypingLine(s) {
  renderTyping(ui.typing, s.store.typingNow());
}

// One ticker while someone is typing, so the line disappears 5 s after their last event.
export function ensureTypingTicker(s) {
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

export function showJump() {
  ui.jump.hidden = false;
}

/** Clear everything a room session drew. */
export function clearRoom() {
  ui.log.replaceChildren();
  ui.log.removeAttribute('aria-busy');
  ui.log._nodes = null;
  ui.online.replaceChildren();
  ui.onlineCount.textContent = '';
  ui.typing.textContent = '';
  ui.jump.hidden = true;
}

export function wireScreen() {
  ui.jump.addEventListener('click', () => {
    scrollToBottom();
    ui.text.focus();
  });
  ui.scroller.addEventListener('scroll', () => {
    if (isNearBottom()) ui.jump.hidden = true;
  });
  ui.loadOlder.addEventListener('click', () => app.session?.history.loadOlder());
}
