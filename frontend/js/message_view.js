// One message on the page, as text only: author, time, "(edited)", the body (or the
// deleted placeholder), reactions as chips, and its actions (a menu for our own: edit,
// delete; a reaction picker for others'). The element is built once per message and
// filled again on every render, so focus and an open menu survive updates.

import { el } from './dom.js';
import {
  errorText, formatFull, formatList, formatNumber, formatTime, t,
} from './i18n.js';
import { menuButton } from './menus.js';
import { chips, othersNotListed, PICKER, toggleOn } from './reactions.js';

export function parseTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function buildMessage() {
  const node = el('div', 'msg');
  const meta = el('div', 'meta');
  meta.append(el('span', 'author'), el('time', 'time'), el('span', 'edited'));
  const body = el('p', 'body');
  const reactions = el('div', 'reactions');
  reactions.setAttribute('role', 'group');
  const actions = el('div', 'actions');
  const more = el('button', 'act more', '⋯');
  more.type = 'button';
  const react = el('button', 'act react', '☺');
  react.type = 'button';
  actions.append(more, react);
  const state = el('div', 'state');
  state.append(el('span', 'state-text'));
  node.append(meta, body, reactions, actions, state);
  // Handlers read the message from the node at click time: it changes with each render.
  menuButton(more, () => node._items.own, () => ({ label: t('actions.menu') }));
  menuButton(react, () => node._items.picker, () => ({ label: t('reactions.picker'), horizontal: true, className: 'picker' }));
  return node;
}

function pickerItems(item, on) {
  return PICKER.map(([emoji, key]) => ({
    text: emoji, label: t(key), onSelect: () => on.react(item.id, emoji, toggleOn(item.reactions, emoji, on.me)),
  }));
}

function fillReactions(box, item, on) {
  box.setAttribute('aria-label', t('reactions.label'));
  const list = item.id && !item.deleted ? chips(item.reactions, on.me) : [];
  const old = new Map([...box.children].map((c) => [c.dataset.emoji, c]));
  const wanted = list.map((c) => {
    const chip = old.get(c.emoji) ?? el('button', 'chip');
    chip.type = 'button';
    chip.dataset.emoji = c.emoji;
    chip.classList.toggle('mine', c.mine);
    chip.setAttribute('aria-pressed', String(c.mine));
    const more = othersNotListed(c);
    const names = more ? t('reactions.more', { names: formatList(c.users), count: more }) : formatList(c.users);
    chip.title = names;
    chip.setAttribute('aria-label', t('reactions.chip', { emoji: c.emoji, count: c.count, names }));
    chip.replaceChildren(el('span', 'emoji', c.emoji), el('span', 'n', formatNumber(c.count)));
    chip.onclick = () => on.react(item.id, c.emoji, !c.mine);
    return chip;
  });
  box.replaceChildren(...wanted);
  box.hidden = wanted.length === 0;
}

export function fillMessage(node, item, { own, grouped, on }) {
  if (item.id) node.dataset.id = item.id;
  else delete node.dataset.id;
  if (item.clientId) node.dataset.clientId = item.clientId;
  node.dataset.author = item.username;
  node.classList.toggle('own', own);
  node.classList.toggle('grouped', grouped);
  node.classList.toggle('pending', item.state === 'sending' || item.state === 'queued');
  node.classList.toggle('failed', item.state === 'failed');
  node.classList.toggle('deleted', Boolean(item.deleted));
  node.classList.toggle('was-edited', Boolean(item.editedAt) && !item.deleted);

  const author = node.querySelector('.author');
  if (author.textContent !== item.username) author.textContent = item.username;
  const time = node.querySelector('.time');
  const date = parseTime(item.createdAt);
  time.textContent = date ? formatTime(date) : '';
  time.dateTime = item.createdAt;
  time.title = date ? formatFull(date) : '';
  const edited = node.querySelector('.edited');
  const editedAt = item.editedAt && !item.deleted ? parseTime(item.editedAt) : null;
  edited.textContent = item.editedAt && !item.deleted ? t('messages.edited') : '';
  edited.title = editedAt ? t('messages.editedAt', { time: formatFull(editedAt) }) : '';
  const body = node.querySelector('.body');
  const text = item.deleted ? t('messages.deleted') : item.text;
  if (body.textContent !== text) body.textContent = text;

  fillReactions(node.querySelector('.reactions'), item, on);
  const live = Boolean(item.id) && !item.deleted;
  node.querySelector('.more').hidden = !(live && own);
  node.querySelector('.more').setAttribute('aria-label', t('actions.menu'));
  node.querySelector('.react').hidden = !(live && !own);
  node.querySelector('.react').setAttribute('aria-label', t('actions.react'));
  node.querySelector('.react').title = t('actions.react');
  node.querySelector('.actions').hidden = !live;
  node._items = {
    own: [
      { text: t('actions.edit'), onSelect: () => on.edit(item.id) },
      { text: t('actions.delete'), onSelect: () => on.remove(item.id) },
    ],
    picker: live ? pickerItems(item, on) : [],
  };

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
    retry.onclick = () => on.retry(item.clientId);
  } else {
    stateText.textContent =
      item.state === 'sending' ? t('messages.sending') : item.state === 'queued' ? t('messages.queued') : '';
    retry?.remove();
  }
}
