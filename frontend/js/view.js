// DOM rendering. Every string that came from a user or the server goes through
// textContent (never parsed as HTML), so `<img onerror=…>` in a message is just text.
// The message list is reconciled by key, so a live message, a history page and a
// catch-up page that overlap never produce two elements for one id, and an optimistic
// message keeps its element when its echo confirms it (it then gains its data-id).

import { el } from './dom.js';
import {
  errorText, formatDay, formatFull, formatList, formatNumber, formatTime, t,
} from './i18n.js';

const GROUP_WINDOW_MS = 5 * 60 * 1000;

function parseTime(iso) {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? null : t;
}

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

function buildMessage() {
  const node = el('div', 'msg');
  const meta = el('div', 'meta');
  meta.append(el('span', 'author'), el('time', 'time'));
  const body = el('p', 'body');
  const state = el('div', 'state');
  state.append(el('span', 'state-text'));
  node.append(meta, body, state);
  return node;
}

function fillMessage(node, item, { own, grouped, onRetry }) {
  if (item.id) node.dataset.id = item.id;
  else delete node.dataset.id;
  if (item.clientId) node.dataset.clientId = item.clientId;
  node.dataset.author = item.username;
  node.classList.toggle('own', own);
  node.classList.toggle('grouped', grouped);
  node.classList.toggle('pending', item.state === 'sending' || item.state === 'queued');
  node.classList.toggle('failed', item.state === 'failed');

  const author = node.querySelector('.author');
  if (author.textContent !== item.username) author.textContent = item.username;
  const time = node.querySelector('.time');
  const date = parseTime(item.createdAt);
  time.textContent = date ? formatTime(date) : '';
  time.dateTime = item.createdAt;
  time.title = date ? formatFull(date) : '';
  const body = node.querySelector('.body');
  if (body.textContent !== item.text) body.textContent = item.text;

  const state = node.querySelector('.state');
  const stateText = state.querySelector('.state-text');
  let retry = state.querySelector('button');
  if (item.state === 'failed') {
    stateText.textContent = item.error
      ? t('messages.notSentWhy', { reason: errorText(item.error) })
      : t('messages.notSent');
    if (!retry) {
      retry = el('button', 'retry');
      retry.type = 'button';
      state.append(retry);
    }
    retry.textContent = t('messages.retry');
    retry.onclick = () => onRetry(item.clientId);
  } else {
    stateText.textContent =
      item.state === 'sending' ? t('messages.sending') : item.state === 'queued' ? t('messages.queued') : '';
    retry?.remove();
  }
}

/** Bring the log's children in line with `items` (from RoomStore.timeline()). */
export function renderMessages(log, items, { me, onRetry }) {
  const old = log._nodes ?? new Map();
  const next = new Map();
  const wanted = [];
  let prev = null;
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
    const key = item.id ? `m:${item.id}` : `c:${item.clientId}`;
    // A confirmed echo of our optimistic message reuses its element.
    const node = old.get(key) ?? (item.clientId && old.get(`c:${item.clientId}`)) ?? buildMessage();
    const grouped =
      prev !== null && prev.username === item.username && date && prevDate &&
      dayKey(date) === dayKey(prevDate) && date - prevDate < GROUP_WINDOW_MS;
    fillMessage(node, item, { own: item.username === me, grouped, onRetry });
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
