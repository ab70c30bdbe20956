import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RoomStore } from '../../frontend/js/store.js';
import { message } from './fake_timers.mjs';

const ids = (store, pending) => store.timeline(pending).map((m) => m.id);

test('messages are shown in id order whatever order they arrive in', () => {
  const store = new RoomStore('r', 'ana');
  assert.deepEqual(store.merge([message('03')]), ['03']);
  assert.deepEqual(store.merge([message('01')]), ['01']);
  assert.deepEqual(store.merge([message('02')]), ['02']);
  assert.deepEqual(ids(store), ['01', '02', '03']);
  assert.equal(store.lastId, '03');
});

test('a message seen twice is kept once: a retry echo, a history page overlapping live ones', () => {
  const store = new RoomStore('r', 'ana');
  store.merge([message('03', { client_id: 'c1', username: 'ana' })]);
  store.merge([message('01')]);
  // The retry of c1 gets the original event back, same id.
  assert.deepEqual(store.merge([message('03', { client_id: 'c1', username: 'ana' })]), []);
  // A page overlapping what we hold adds only what is new.
  assert.deepEqual(store.merge([message('01'), message('02'), message('03')]), ['02']);
  assert.deepEqual(ids(store), ['01', '02', '03']);
  assert.equal(store.messages.size, 3);
});

test('the first copy of a message wins', () => {
  const store = new RoomStore('r', 'ana');
  store.merge([message('01', { text: 'first' })]);
  store.merge([message('01', { text: 'second' })]);
  assert.equal(store.timeline()[0].text, 'first');
});

test('another room\'s messages and entries without an id are dropped', () => {
  const store = new RoomStore('r', 'ana');
  const added = store.merge([message('01', { room: 'elsewhere' }), { text: 'no id' }, null, message('02')]);
  assert.deepEqual(added, ['02']);
  assert.deepEqual(ids(store), ['02']);
});

test('lastId is the newest id, not the last to arrive', () => {
  const store = new RoomStore('r', 'ana');
  store.merge([message('05'), message('02')]);
  assert.equal(store.lastId, '05');
});

test('our pending messages follow the confirmed ones, in the order they were written', () => {
  const store = new RoomStore('r', 'ana');
  store.merge([message('02'), message('01')]);
  const pending = [
    { clientId: 'c2', text: 'b', state: 'sending', error: '', createdAt: '' },
    { clientId: 'c1', text: 'a', state: 'failed', error: 'nope', createdAt: '' },
  ];
  const items = store.timeline(pending);
  assert.deepEqual(items.map((m) => m.id ?? m.clientId), ['01', '02', 'c2', 'c1']);
  assert.deepEqual(items[3], {
    id: null, clientId: 'c1', username: 'ana', text: 'a', createdAt: '', state: 'failed', error: 'nope',
    version: 0, editedAt: null, deleted: false, reactions: {},
  });
});

test('typing expires 5 s after the last event, and never lists ourselves', () => {
  const store = new RoomStore('r', 'ana');
  store.markTyping('bob', 1000);
  store.markTyping('ana', 1000);
  store.markTyping('cy', 3000);
  assert.deepEqual(store.typingNow(5999), ['bob', 'cy']);
  assert.deepEqual(store.typingNow(6000), ['cy']);
  store.stopTyping('cy');
  assert.deepEqual(store.typingNow(6000), []);
});
