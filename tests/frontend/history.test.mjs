import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import {
  CATCH_UP_MAX_PAGES, HISTORY_TIMEOUT_MS, HistoryLoader, MAX_RETRIES, RETRY_AFTER_MS,
} from '../../frontend/js/history.js';
import { message, rig } from './fake_timers.mjs';

let world, timers, sock, loader; // new for every test

beforeEach(() => {
  world = rig();
  ({ timers, sock } = world);
  loader = new HistoryLoader({ ...world.deps, pageSize: 50 });
});

const page = (ids, before) => ({ type: 'history', room: 'r', messages: ids.map((id) => message(id)), before });

describe('the first page', () => {
  test('connecting asks for the newest page, without a cursor', () => {
    loader.connected('');
    assert.deepEqual(sock.sent, [{ action: 'history', limit: 50 }]);
    assert.equal(loader.inFlight.kind, 'latest');
    assert.ok(world.changes > 0);
  });

  test('its cursor enables "load older"; a null cursor means the start of the room', () => {
    loader.connected('');
    const got = loader.received(page(['02', '03'], '02'));
    assert.deepEqual(got.messages.map((m) => m.id), ['02', '03']);
    assert.equal(got.kind, 'latest');
    assert.equal(loader.olderCursor, '02');
    assert.equal(loader.canLoadOlder, true);
    assert.equal(loader.reachedStart, false);
    assert.equal(loader.inFlight, null);

    loader.loadOlder();
    loader.received(page(['01'], null));
    assert.equal(loader.reachedStart, true);
    assert.equal(loader.canLoadOlder, false);
  });

  test('a page with no messages and no cursor is an empty room', () => {
    loader.connected('');
    assert.deepEqual(loader.received({ type: 'history', messages: [], before: null }).messages, []);
    assert.equal(loader.reachedStart, true);
  });

  test('a malformed reply counts as an empty page', () => {
    loader.connected('');
    assert.deepEqual(loader.received({ type: 'history' }), { kind: 'latest', messages: [], before: null });
  });

  test('a live message before the first page does not make the next socket catch up', () => {
    // Only a page decides "load older" and the start: lastId alone is not enough.
    loader.connected('');
    loader.disconnected();
    loader.connected('05');
    assert.equal(loader.inFlight.kind, 'latest');
    assert.deepEqual(sock.sent.at(-1), { action: 'history', limit: 50 });
  });
});

describe('one request at a time', () => {
  test('a reply with no request in flight is ignored', () => {
    assert.equal(loader.received(page(['01'], null)), null);
    assert.equal(loader.reachedStart, false);
    assert.deepEqual(sock.sent, []);
  });

  test('a second request waits for the first reply', () => {
    loader.connected('');
    loader.received(page(['05'], '05'));
    sock.sent.length = 0;
    loader.disconnected();
    loader.connected('05'); // a catch-up goes on the wire
    loader.loadOlder(); // waits behind it
    assert.equal(sock.sent.length, 1);
    assert.equal(loader.queue.length, 1);
    loader.received(page(['05'], '04'));
    assert.equal(sock.sent.length, 2);
    assert.deepEqual(sock.sent[1], { action: 'history', before: '05', limit: 50 });
    assert.equal(loader.loadingOlder, true);
  });

  test('offline, the request is dropped: the next connection asks again', () => {
    sock.open = false;
    loader.connected('');
    assert.equal(loader.inFlight, null);
    assert.deepEqual(loader.queue, []);
    sock.open = true;
    loader.connected('');
    assert.equal(loader.inFlight.kind, 'latest');
  });
});

describe('older pages', () => {
  beforeEach(() => {
    loader.connected('');
    loader.received(page(['10', '11'], '10'));
    sock.sent.length = 0;
  });

  test('"load older" sends the cursor of the last page, then the cursor moves on', () => {
    assert.equal(loader.loadOlder(), true);
    assert.deepEqual(sock.sent, [{ action: 'history', before: '10', limit: 50 }]);
    loader.received(page(['08', '09'], '08'));
    assert.equal(loader.olderCursor, '08');
    loader.loadOlder();
    assert.deepEqual(sock.sent[1], { action: 'history', before: '08', limit: 50 });
  });

  test('pressing twice asks once', () => {
    assert.equal(loader.loadOlder(), true);
    assert.equal(loader.loadOlder(), false);
    assert.equal(sock.sent.length, 1);
  });

  test('nothing to ask without a cursor', () => {
    loader.loadOlder();
    loader.received(page(['09'], null));
    assert.equal(loader.loadOlder(), false);
  });

  test('a failed older page is not retried by itself: the button is there', () => {
    loader.loadOlder();
    assert.equal(loader.failed(), 'older');
    timers.tick(RETRY_AFTER_MS * 10);
    assert.equal(sock.sent.length, 1);
    assert.equal(loader.olderCursor, '10'); // pressing again asks for the same page
    assert.equal(loader.loadOlder(), true);
  });
});

describe('timeouts and retries', () => {
  test('no reply in time fails the request and retries it a little later', () => {
    loader.connected('');
    timers.tick(HISTORY_TIMEOUT_MS - 1);
    assert.equal(loader.inFlight.kind, 'latest');
    timers.tick(1);
    assert.equal(loader.inFlight, null);
    assert.equal(sock.sent.length, 1);
    timers.tick(RETRY_AFTER_MS);
    assert.equal(sock.sent.length, 2);
    assert.equal(loader.inFlight.kind, 'latest');
  });

  test('a late reply after the timeout is ignored', () => {
    loader.connected('');
    timers.tick(HISTORY_TIMEOUT_MS);
    assert.equal(loader.received(page(['01'], null)), null);
    assert.equal(loader.reachedStart, false);
  });

  test('retries stop after MAX_RETRIES', () => {
    loader.connected('');
    for (let i = 0; i < MAX_RETRIES + 2; i += 1) timers.tick(HISTORY_TIMEOUT_MS + RETRY_AFTER_MS);
    assert.equal(sock.sent.length, 1 + MAX_RETRIES);
    assert.equal(loader.inFlight, null);
    assert.equal(timers.pending, 0);
  });

  test('failed({retry: false}) leaves it to a new connection', () => {
    loader.connected('');
    assert.equal(loader.failed({ retry: false }), 'latest');
    timers.tick(RETRY_AFTER_MS * 10);
    assert.equal(sock.sent.length, 1);
  });

  test('failing with nothing in flight does nothing', () => {
    assert.equal(loader.failed(), null);
    assert.equal(timers.pending, 0);
  });
});

describe('reconnecting', () => {
  test('a disconnect forgets the request in flight, its timeout and the queue', () => {
    loader.connected('');
    loader.disconnected();
    assert.equal(loader.inFlight, null);
    assert.deepEqual(loader.queue, []);
    assert.equal(timers.pending, 0);
    // The old socket's reply can no longer land on anything.
    assert.equal(loader.received(page(['01'], null)), null);
  });

  test('a disconnect cancels a pending retry: the new connection asks by itself', () => {
    loader.connected('');
    loader.failed();
    assert.equal(timers.pending, 1);
    loader.disconnected();
    assert.equal(timers.pending, 0);
    loader.connected('');
    timers.tick(RETRY_AFTER_MS); // when the cancelled retry would have gone
    assert.equal(sock.sent.length, 2);
    assert.equal(loader.inFlight.retries, undefined); // the new connection's own request
  });

  test('stop() sends nothing more', () => {
    loader.connected('');
    loader.failed();
    loader.stop();
    loader.connected('');
    timers.tick(RETRY_AFTER_MS * 10);
    assert.equal(sock.sent.length, 1);
  });
});

describe('catching up after a reconnect', () => {
  beforeEach(() => {
    loader.connected('');
    loader.received(page(['10', '11'], '10'));
    loader.disconnected();
    sock.sent.length = 0;
  });

  test('it pages back from the newest message until it reaches the last id seen', () => {
    loader.connected('11');
    assert.deepEqual(sock.sent, [{ action: 'history', limit: 50 }]);
    assert.equal(loader.inFlight.kind, 'catchup');
    let got = loader.received(page(['15', '16'], '15'));
    assert.equal(got.kind, 'catchup');
    assert.deepEqual(sock.sent[1], { action: 'history', before: '15', limit: 50 });
    got = loader.received(page(['11', '12', '13', '14'], '11'));
    assert.deepEqual(got.messages.map((m) => m.id), ['11', '12', '13', '14']);
    assert.equal(sock.sent.length, 2); // reached '11': stop
    assert.equal(loader.inFlight, null);
  });

  test('the catch-up leaves the "load older" cursor where it was', () => {
    loader.connected('11');
    loader.received(page(['15', '16'], '15'));
    loader.received(page(['11', '12'], '11'));
    assert.equal(loader.olderCursor, '10');
    assert.equal(loader.reachedStart, false);
  });

  test('it stops when the server has nothing older', () => {
    loader.connected('11');
    loader.received(page(['15', '16'], null));
    assert.equal(sock.sent.length, 1);
  });

  test('it stops on an empty page', () => {
    loader.connected('11');
    loader.received({ type: 'history', messages: [], before: '15' });
    assert.equal(sock.sent.length, 1);
  });

  test(`it stops after CATCH_UP_MAX_PAGES (${CATCH_UP_MAX_PAGES}) pages`, () => {
    loader.connected('11');
    for (let n = 0; n < CATCH_UP_MAX_PAGES + 5; n += 1) {
      const oldest = String(900 - n);
      if (loader.inFlight) loader.received(page([oldest], oldest));
    }
    assert.equal(sock.sent.length, CATCH_UP_MAX_PAGES);
    assert.equal(loader.inFlight, null);
  });

  test('the next catch-up page goes before a queued "load older"', () => {
    loader.connected('11');
    loader.loadOlder();
    loader.received(page(['15', '16'], '15'));
    assert.deepEqual(sock.sent[1], { action: 'history', before: '15', limit: 50 });
    assert.equal(loader.inFlight.kind, 'catchup');
    loader.received(page(['11', '12'], '11'));
    assert.deepEqual(sock.sent[2], { action: 'history', before: '10', limit: 50 });
    assert.equal(loader.loadingOlder, true);
  });

  test('a failed catch-up page is retried with its cursor and page count', () => {
    loader.connected('11');
    loader.received(page(['15', '16'], '15'));
    loader.failed();
    timers.tick(RETRY_AFTER_MS);
    assert.deepEqual(sock.sent.at(-1), { action: 'history', before: '15', limit: 50 });
    assert.equal(loader.inFlight.pages, 2);
  });
});
