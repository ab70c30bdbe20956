import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { RoomStore } from '../../frontend/js/store.js';
import { message } from './fake_timers.mjs';

const T0 = '2026-01-01T00:00:00.000Z';
const edit = (id, version, text, extra = {}) => ({
  type: 'message_updated', id, room: 'r', username: 'ana', text, created_at: T0, version,
  edited_at: `2026-01-01T00:0${version}:00.000Z`, reactions: {}, ...extra,
});
const del = (id, version) => ({ type: 'message_deleted', id, room: 'r', version, deleted_at: '2026-01-01T00:09:00.000Z' });
const reactions = (id, summary) => ({ type: 'reactions', id, room: 'r', reactions: summary });
const THUMBS = { '👍': { count: 1, users: ['bob'] } };

function kept(store, id) {
  const m = store.messages.get(id);
  return m && { text: m.text, version: m.version, deleted: m.deleted, edited: Boolean(m.editedAt), reactions: m.reactions };
}

describe('the highest version wins, whatever the arrival order', () => {
  // Bob reacted, then ana edited twice (the edits carry his reaction). Every order of the
  // same four events ends in the same state.
  const events = [
    ['message', message('01', { version: 1 })],
    ['reacted', reactions('01', THUMBS)],
    ['updated', edit('01', 2, 'two', { reactions: THUMBS })],
    ['updated', edit('01', 3, 'three', { reactions: THUMBS })],
  ];
  const orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2], [2, 1, 3, 0]];
  for (const order of orders) {
    test(`order ${order.join(',')}`, () => {
      const store = new RoomStore('r', 'ana');
      for (const i of order) {
        const [kind, ev] = events[i];
        if (kind === 'message') store.merge([ev]);
        else store[kind](ev);
      }
      assert.deepEqual(kept(store, '01'), { text: 'three', version: 3, deleted: false, edited: true,
        reactions: THUMBS });
      assert.equal(store.held.size, 0);
    });
  }

  test('an older or equal version changes nothing', () => {
    const store = new RoomStore('r', 'ana');
    store.merge([message('01', { version: 1 })]);
    assert.equal(store.updated(edit('01', 3, 'three')), 'applied');
    assert.equal(store.updated(edit('01', 2, 'two')), 'stale');
    assert.equal(store.updated(edit('01', 3, 'three again')), 'stale');
    store.merge([message('01', { version: 2, text: 'old page' })]);
    assert.equal(kept(store, '01').text, 'three');
  });

  test('a history page with a newer version brings the message up to date, without adding it', () => {
    const store = new RoomStore('r', 'ana');
    store.merge([message('01', { version: 1, client_id: 'c1', username: 'ana' })]);
    assert.deepEqual(store.merge([message('01', { version: 2, text: 'fixed', edited_at: T0 })]), []);
    assert.equal(kept(store, '01').text, 'fixed');
    assert.equal(store.messages.get('01').clientId, 'c1');
  });
});

describe('deletes', () => {
  test('a delete leaves a tombstone: author and time kept, text and reactions gone', () => {
    const store = new RoomStore('r', 'ana');
    store.merge([message('01', { version: 1, reactions: THUMBS })]);
    assert.equal(store.deleted(del('01', 2)), 'applied');
    const m = store.messages.get('01');
    assert.deepEqual([m.text, m.deleted, m.version, m.username, m.createdAt], ['', true, 2, 'ana', T0]);
    assert.deepEqual(m.reactions, {});
    // Nothing older brings it back: not an edit, not a reactions event, not a stale page.
    assert.equal(store.updated(edit('01', 2, 'back?')), 'stale');
    assert.equal(store.reacted(reactions('01', THUMBS)), 'stale');
    store.merge([message('01', { version: 1 })]);
    assert.equal(store.messages.get('01').deleted, true);
  });

  test('a delete for a message not loaded yet is held, and applied when it arrives', () => {
    const store = new RoomStore('r', 'ana');
    assert.equal(store.deleted(del('05', 3)), 'held');
    assert.equal(store.messages.size, 0);
    assert.deepEqual(store.merge([message('05', { version: 2, text: 'secret' })]), ['05']);
    const m = store.messages.get('05');
    assert.deepEqual([m.text, m.deleted, m.version], ['', true, 3]);
    assert.equal(store.held.size, 0);
  });

  test('a tombstone from history, and a retry answer that is one, are shown as deleted', () => {
    const store = new RoomStore('r', 'ana');
    store.merge([{ id: '01', room: 'r', username: 'ana', text: '', created_at: T0, version: 3, deleted: true,
      deleted_at: T0, reactions: {} }]);
    assert.equal(store.messages.get('01').deleted, true);
  });

  test('a held update older than the message that arrives is dropped', () => {
    const store = new RoomStore('r', 'ana');
    store.updated(edit('01', 2, 'two'));
    store.merge([message('01', { version: 4, text: 'four' })]);
    assert.equal(kept(store, '01').text, 'four');
  });
});

test('another room\'s updates are ignored', () => {
  const store = new RoomStore('r', 'ana');
  store.merge([message('01')]);
  assert.equal(store.updated({ ...edit('01', 2, 'x'), room: 'elsewhere' }), 'stale');
  assert.equal(store.deleted({ ...del('01', 2), room: 'elsewhere' }), 'stale');
  assert.equal(store.held.size, 0);
  assert.equal(kept(store, '01').version, 1);
});

test('lastOwn: our newest message that is not deleted', () => {
  const store = new RoomStore('r', 'ana');
  store.merge([message('01'), message('02', { username: 'bob' }), message('03')]);
  assert.equal(store.lastOwn().id, '03');
  store.deleted(del('03', 2));
  assert.equal(store.lastOwn().id, '01');
});
