import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import { CONFIRM_TIMEOUT_MS, Outbox } from '../../frontend/js/outbox.js';
import { message, rig } from './fake_timers.mjs';

let world, timers, sock, outbox; // new for every test

beforeEach(() => {
  world = rig();
  ({ timers, sock } = world);
  outbox = new Outbox({ ...world.deps, me: 'ana' });
  outbox.connected();
});

const states = () => [...outbox.entries.values()].map((e) => `${e.clientId}:${e.state}`);
const echo = (clientId, id) => message(id, { client_id: clientId });

describe('sending', () => {
  test('a new message goes at once, and is "sending" until its echo', () => {
    outbox.add('c1', 'hola', new Date('2026-01-01T00:00:00Z'));
    assert.deepEqual(sock.sent, [{ action: 'new_message', text: 'hola', client_id: 'c1' }]);
    assert.deepEqual(states(), ['c1:sending']);
    assert.equal(outbox.inFlight, 'c1');
    assert.equal(outbox.entries.get('c1').createdAt, '2026-01-01T00:00:00.000Z');
    assert.ok(world.changes > 0);
  });

  test('only one in flight: the next goes when the echo settles the first', () => {
    outbox.add('c1', 'one');
    outbox.add('c2', 'two');
    outbox.add('c3', 'three');
    assert.equal(sock.sent.length, 1);
    assert.deepEqual(states(), ['c1:sending', 'c2:queued', 'c3:queued']);
    outbox.confirm([echo('c1', '01')]);
    assert.deepEqual(states(), ['c2:sending', 'c3:queued']);
    outbox.confirm([echo('c2', '02')]);
    outbox.confirm([echo('c3', '03')]);
    assert.deepEqual(sock.sent.map((f) => f.text), ['one', 'two', 'three']);
    assert.equal(outbox.size, 0);
    assert.equal(outbox.inFlight, null);
    assert.equal(timers.pending, 0);
  });

  test('offline, messages wait and go in order once connected', () => {
    outbox.disconnected();
    outbox.add('c1', 'one');
    outbox.add('c2', 'two');
    assert.deepEqual(sock.sent, []);
    assert.deepEqual(states(), ['c1:queued', 'c2:queued']);
    outbox.connected();
    assert.deepEqual(sock.sent.map((f) => f.client_id), ['c1']);
  });

  test('a send the socket refuses stays queued', () => {
    sock.open = false;
    outbox.add('c1', 'one');
    assert.deepEqual(states(), ['c1:queued']);
    assert.equal(outbox.inFlight, null);
  });
});

describe('settling', () => {
  test('an echo from someone else, or without our client_id, settles nothing', () => {
    outbox.add('c1', 'one');
    outbox.confirm([message('01', { username: 'bob', client_id: 'c1' }), message('02')]);
    assert.deepEqual(states(), ['c1:sending']);
  });

  test('a history page that holds our message confirms it like its echo', () => {
    outbox.add('c1', 'one');
    outbox.add('c2', 'two');
    outbox.confirm([message('00'), echo('c1', '01')]);
    assert.deepEqual(states(), ['c2:sending']);
  });

  test('an error with our client_id marks it failed, and the next one goes', () => {
    outbox.add('c1', 'one');
    outbox.add('c2', 'two');
    assert.equal(outbox.rejected('c1', 'sending too fast'), true);
    assert.deepEqual(states(), ['c1:failed', 'c2:sending']);
    assert.equal(outbox.entries.get('c1').error, 'sending too fast');
    assert.equal(outbox.inFlight, 'c2');
  });

  test('an error for a client_id that is not ours is left to the caller', () => {
    outbox.add('c1', 'one');
    assert.equal(outbox.rejected('other', 'nope'), false);
    assert.deepEqual(states(), ['c1:sending']);
  });

  test('no echo in time marks it failed, and the next one goes', () => {
    outbox.add('c1', 'one');
    outbox.add('c2', 'two');
    timers.tick(CONFIRM_TIMEOUT_MS - 1);
    assert.deepEqual(states(), ['c1:sending', 'c2:queued']);
    timers.tick(1);
    assert.deepEqual(states(), ['c1:failed', 'c2:sending']);
    assert.equal(outbox.entries.get('c1').error, 'no_reply'); // a code: the view says it in words
  });

  test('an echo cancels the timeout', () => {
    outbox.add('c1', 'one');
    outbox.confirm([echo('c1', '01')]);
    timers.tick(CONFIRM_TIMEOUT_MS * 2);
    assert.equal(outbox.size, 0);
  });

  test('a late echo after the timeout still confirms the failed message', () => {
    outbox.add('c1', 'one');
    timers.tick(CONFIRM_TIMEOUT_MS);
    outbox.confirm([echo('c1', '01')]);
    assert.equal(outbox.size, 0);
  });
});

describe('disconnects and retries', () => {
  test('going offline requeues the one in flight; it is resent, same client_id, when back', () => {
    outbox.add('c1', 'one');
    outbox.add('c2', 'two');
    outbox.disconnected();
    assert.deepEqual(states(), ['c1:queued', 'c2:queued']);
    assert.equal(outbox.inFlight, null);
    assert.equal(timers.pending, 0);
    outbox.connected();
    assert.deepEqual(sock.sent.map((f) => f.client_id), ['c1', 'c1']);
    assert.deepEqual(states(), ['c1:sending', 'c2:queued']);
  });

  test('going offline leaves a failed message failed', () => {
    outbox.add('c1', 'one');
    outbox.rejected('c1', 'nope');
    outbox.disconnected();
    outbox.connected();
    assert.deepEqual(states(), ['c1:failed']);
    assert.equal(sock.sent.length, 1);
  });

  test('retry resends a failed message with the same client_id', () => {
    outbox.add('c1', 'one');
    outbox.rejected('c1', 'nope');
    assert.equal(outbox.retry('c1'), true);
    assert.deepEqual(sock.sent, [
      { action: 'new_message', text: 'one', client_id: 'c1' },
      { action: 'new_message', text: 'one', client_id: 'c1' },
    ]);
    assert.deepEqual(states(), ['c1:sending']);
    assert.equal(outbox.entries.get('c1').error, '');
  });

  test('a retry waits its turn behind the one in flight', () => {
    outbox.add('c1', 'one');
    outbox.rejected('c1', 'nope');
    outbox.add('c2', 'two');
    outbox.retry('c1');
    assert.deepEqual(states(), ['c1:queued', 'c2:sending']);
    outbox.confirm([echo('c2', '02')]);
    assert.deepEqual(sock.sent.map((f) => f.client_id), ['c1', 'c2', 'c1']);
  });

  test('only a failed message can be retried', () => {
    outbox.add('c1', 'one');
    assert.equal(outbox.retry('c1'), false);
    assert.equal(outbox.retry('unknown'), false);
    assert.equal(sock.sent.length, 1);
  });

  test('stop() sends nothing more and leaves no timer', () => {
    outbox.add('c1', 'one');
    outbox.add('c2', 'two');
    outbox.stop();
    assert.equal(timers.pending, 0);
    outbox.confirm([echo('c1', '01')]);
    outbox.connected();
    assert.equal(sock.sent.length, 1);
  });
});
