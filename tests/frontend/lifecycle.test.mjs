import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import { chips, othersNotListed, PICKER, toggleOn } from '../../frontend/js/reactions.js';
import { DEBOUNCE_MS, ReadMarker } from '../../frontend/js/readmarker.js';
import { ANSWER_TIMEOUT_MS, Requests } from '../../frontend/js/requests.js';
import { RoomList } from '../../frontend/js/rooms.js';
import { catalog } from './catalogs.mjs';
import { rig } from './fake_timers.mjs';

describe('requests: edits, deletes and reactions on their way', () => {
  let world, requests, failed, n;
  beforeEach(() => {
    world = rig();
    failed = [];
    n = 0;
    requests = new Requests({ ...world.deps, me: 'ana', newId: () => `r${++n}`, onFailed: (e, code) => failed.push([e.kind, code]) });
  });

  test('each frame carries its own client_id, as PROTOCOL.md writes it', () => {
    requests.edit('01', 'fixed');
    requests.remove('02');
    requests.react('03', '👍', true);
    assert.deepEqual(world.sock.sent, [
      { action: 'edit_message', id: '01', text: 'fixed', client_id: 'r1' },
      { action: 'delete_message', id: '02', client_id: 'r2' },
      { action: 'react', id: '03', emoji: '👍', on: true, client_id: 'r3' },
    ]);
  });

  test('the room\'s event for the message answers it', () => {
    requests.edit('01', 'fixed');
    requests.react('01', '👍', true);
    // Someone else's reaction is not the answer to ours; the summary with ours is.
    requests.event({ type: 'reactions', id: '01', reactions: { '👍': { count: 1, users: ['bob'] } } });
    assert.deepEqual([...requests.pending.values()].map((e) => e.kind), ['edit', 'react']);
    requests.event({ type: 'reactions', id: '01', reactions: { '👍': { count: 2, users: ['ana', 'bob'] } } });
    assert.deepEqual([...requests.pending.values()].map((e) => e.kind), ['edit']);
    requests.event({ type: 'message_updated', id: '02' });
    assert.equal(requests.pending.size, 1);
    requests.event({ type: 'message_updated', id: '01' });
    assert.equal(requests.pending.size, 0);
    world.timers.tick(ANSWER_TIMEOUT_MS);
    assert.deepEqual(failed, []);
  });

  test('an error naming it fails it with its code; a repeated delete\'s not_found is success', () => {
    requests.edit('01', 'x');
    requests.remove('02');
    assert.equal(requests.rejected('r1', 'forbidden'), true);
    assert.equal(requests.rejected('r2', 'not_found'), true);
    assert.equal(requests.rejected('nope', 'internal'), false);
    assert.deepEqual(failed, [['edit', 'forbidden']]);
  });

  test('after a throttle answer every unanswered frame goes again, once per burst', () => {
    requests.edit('01', 'x');
    requests.react('02', '🎉', false);
    requests.throttled(500);
    requests.throttled(500);
    world.timers.tick(500);
    assert.deepEqual(world.sock.sent.map((f) => f.client_id), ['r1', 'r2', 'r1', 'r2']);
  });

  test('no answer in time: an edit fails, a reaction (maybe a no-op) is forgotten', () => {
    requests.edit('01', 'x');
    requests.react('02', '👍', true);
    world.timers.tick(ANSWER_TIMEOUT_MS);
    assert.deepEqual(failed, [['edit', 'no_reply']]);
    assert.equal(requests.pending.size, 0);
  });

  test('offline frames go when the socket is back; a newer toggle replaces an older one', () => {
    requests.disconnected();
    requests.react('01', '👍', true);
    requests.react('01', '👍', false);
    assert.deepEqual(world.sock.sent, []);
    requests.connected();
    assert.deepEqual(world.sock.sent, [{ action: 'react', id: '01', emoji: '👍', on: false, client_id: 'r2' }]);
  });
});

describe('reactions', () => {
  const summary = {
    '🎉': { count: 25, users: Array.from({ length: 20 }, (_, i) => `u${i}`), clipped: true },
    '👍': { count: 2, users: ['ana', 'bob'] },
    '😂': { count: 2, users: ['bob', 'cy'] },
    '💥': { count: 0, users: [] },
  };

  test('chips: most reacted first, ties by emoji, ours marked, empty ones dropped', () => {
    const list = chips(summary, 'ana');
    assert.deepEqual(list.map((c) => [c.emoji, c.count, c.mine]), [['🎉', 25, false], ['👍', 2, true], ['😂', 2, false]]);
    assert.equal(othersNotListed(list[0]), 5);
    assert.deepEqual(chips(undefined, 'ana'), []);
  });

  test('a click takes ours off, adds anyone else\'s', () => {
    assert.equal(toggleOn(summary, '👍', 'ana'), false);
    assert.equal(toggleOn(summary, '😂', 'ana'), true);
    assert.equal(toggleOn(summary, '🙂', 'ana'), true);
  });

  test('every picker emoji has a name in the catalogs', () => {
    for (const lang of ['en', 'es']) {
      for (const [, key] of PICKER) assert.ok(catalog(lang)[key], `${lang} ${key}`);
    }
  });
});

describe('the read marker', () => {
  let world, marker;
  beforeEach(() => {
    world = rig();
    marker = new ReadMarker({ ...world.deps });
  });

  const page = (...list) => list.map(([id, username, deleted = false]) => ({ id, username, deleted }));

  test('the divider goes after the marker the room was opened with, and stays there', () => {
    marker.fromHistory('05', page(['04', 'bob'], ['05', 'bob'], ['06', 'ana'], ['07', 'bob']), 'ana');
    marker.fromHistory('09', page(['09', 'bob'])); // a later page (catch-up): the marker, not the divider
    assert.equal(marker.dividerAfter, '05');
    assert.equal(marker.marker, '09');
  });

  test('no divider when nothing after the marker is someone else\'s (ours, or deleted)', () => {
    marker.fromHistory('05', page(['05', 'bob'], ['06', 'ana'], ['07', 'bob', true]), 'ana');
    assert.equal(marker.dividerAfter, null);
    assert.equal(marker.marker, '05');
  });

  test('never read here: no divider', () => {
    marker.fromHistory(null, page(['01', 'bob']), 'ana');
    assert.equal(marker.dividerAfter, null);
    assert.equal(marker.marker, null);
  });

  test('messages seen in a row cost one mark_read, for the newest, and only forward', () => {
    marker.fromHistory('03');
    marker.seen('02');
    marker.seen('04');
    marker.seen('06');
    marker.seen('05');
    assert.deepEqual(world.sock.sent, []);
    world.timers.tick(DEBOUNCE_MS);
    assert.deepEqual(world.sock.sent, [{ action: 'mark_read', id: '06' }]);
    marker.seen('06');
    world.timers.tick(DEBOUNCE_MS);
    assert.equal(world.sock.sent.length, 1);
  });

  test('another tab\'s marker moves ours, and what it covers is not sent again', () => {
    marker.fromHistory(null);
    marker.fromOtherTab('08');
    marker.seen('07');
    world.timers.tick(DEBOUNCE_MS);
    assert.deepEqual(world.sock.sent, []);
    const msgs = [{ id: '07', username: 'bob' }, { id: '09', username: 'bob' }, { id: '10', username: 'ana' },
      { id: '11', username: 'bob', deleted: true }];
    assert.equal(marker.unread(msgs, 'ana'), 1);
  });

  test('offline, the mark waits; after a throttle answer it is sent again', () => {
    world.sock.open = false;
    marker.seen('02');
    world.timers.tick(DEBOUNCE_MS);
    assert.deepEqual(world.sock.sent, []);
    world.sock.open = true;
    marker.flush();
    marker.throttled(500);
    world.timers.tick(500);
    assert.deepEqual(world.sock.sent, [{ action: 'mark_read', id: '02' }, { action: 'mark_read', id: '02' }]);
  });
});

describe('the room list', () => {
  test('the server\'s order, the current room never unread and always there, counts capped', () => {
    const list = new RoomList({ unreadMax: 100 });
    list.received({ type: 'rooms', rooms: [
      { room: 'b', unread: 100, last_message_at: '2026-01-01T00:00:02.000Z' },
      { room: 'a', unread: 3, last_message_at: '2026-01-01T00:00:01.000Z' },
      { nope: true },
    ] });
    assert.deepEqual(list.view('a'), [
      { room: 'b', unread: 100, current: false, capped: true },
      { room: 'a', unread: 0, current: true, capped: false },
    ]);
    assert.deepEqual(list.view('new').map((r) => r.room), ['new', 'b', 'a']);
  });
});
