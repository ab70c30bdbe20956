// DOM rendering. Every string that came from a user or the server goes through
// textContent (never parsed as HTML), so `<img onerror=…>` in a message is just text.
// The message list is reconciled by key, so a live message, a history page and a
// catch-up page that overlap never produce two elements for one id, and an optimistic
// message keeps its element when its echo confirms it (it then gains its data-id).
// One message's element is message_view.js's.

import { el } from './dom.js';
import {
  formatDay, formatList, formatNumber, t,
} from './i18n.js';
import { buildMessage, fillMessage, parseTime } from './message_view.js';

const GROUP_WINDOW_MS = 5 * 60 * 1000;

function dayKey(date) {
  return date ? `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}` : '';
}

function dayLabel(date) {
  const today = new Date();
  if (dayKey(date) === dayKey(today)) return t('messages.today');
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(date) === dayKey(yesterday)) return t('messages.yesterday');
  return formatDay(date);
}

/**
 * Bring the log's children in line with `items` (from RoomStore.timeline()). `on` has
 * the handlers (me, retry, edit, remove, react); `dividerAfter` is the read marker the
 * room was opened with: "New messages" goes before the first later message of someone else.
 */
export function renderMessages(log, items, { on, dividerAfter = null }) {
  const old = log._nodes ?? new Map();
  const next = new Map();
  const wanted = [];
  let prev = null;
  let divided = !dividerAfter;
  for (const item of items) {
    const date = parseTime(item.createdAt);
    const prevDate = prev && parseTime(prev.createdAt);
    if (date && dayKey(date) !== dayKey(prevDate)) {
      const key = `d:${dayKey(date)}`;
      const divider = old.get(key) ?? el('div', 'day');
      divider.textContent = dayLabel(date);
      next.set(key, divider);
      wanted.push(divider);
    }
    if (!divided && item.id && item.id > dividerAfter && item.username !== on.me) {
      divided = true;
      const divider = old.get('n:new') ?? el('div', 'new-divider');
      divider.setAttribute('role', 'separator');
      divider.replaceChildren(el('span', '', t('messages.newDivider')));
      next.set('n:new', divider);
      wanted.push(divider);
    }
    const key = item.id ? `m:${item.id}` : `c:${item.clientId}`;
    // A confirmed echo of our optimistic message reuses its element.
    const node = old.get(key) ?? (item.clientId && old.get(`c:${item.clientId}`)) ?? buildMessage();
    // Grouped under the previous message of the same author, unless a divider came between.
    const grouped =
      prev !== null && prev.username === item.username && date && prevDate &&
      dayKey(date) === dayKey(prevDate) && date - prevDate < GROUP_WINDOW_MS &&
      wanted[wanted.length - 1]?.classList.contains('msg');
    fillMessage(node, item, { own: item.username === on.me, grouped: Boolean(grouped), on });
    next.set(key, node);
    wanted.push(node);
    prev = item;
  }
  let ref = log.firstChild;
  for (const node of wanted) {
    if (node === ref) ref = ref.nextSibling;
    else log.insertBefore(node, ref);
  }
  while (ref) {
    const after = ref.nextSibling;
    ref.remove();
    ref = after;
  }
  log._nodes = next;
}

export function renderOnline(list, countEl, users, me) {
  const names = [...users].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  list.replaceChildren(
    ...names.map((name) => {
      const li = el('li', name === me ? 'me' : '');
      li.append(el('span', 'dot'), el('span', 'name', name));
      if (name === me) li.append(el('span', 'you', t('people.you')));
      return li;
    }),
  );
  countEl.textContent = formatNumber(names.length);
}

export function renderTyping(node, names) {
  let text = '';
  if (names.length === 1) text = t('typing.one', { name: names[0] });
  else if (names.length === 2) text = t('typing.some', { names: formatList(names) });
  else if (names.length > 2) text = t('typing.many', { count: names.length });
  if (node.textContent !== text) node.textContent = text;
}

/** The status pill. The countdown is aria-hidden so screen readers hear one change, not one per second. */
export function renderStatus(node, state, retryAt) {
  node.dataset.state = state;
  const label = node.querySelector('.label');
  const countdown = node.querySelector('.countdown');
  const text = t(`status.${state}`);
  if (label.textContent !== text) label.textContent = text;
  let extra = '';
  if (state === 'reconnecting') {
    const secs = Math.ceil((retryAt - Date.now()) / 1000);
    extra = retryAt && secs > 0 ? t('status.retryIn', { seconds: secs }) : t('status.retrySoon');
  }
  if (countdown.textContent !== extra) countdown.textContent = extra;
}
