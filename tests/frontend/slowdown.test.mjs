import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import { HistoryLoader, HISTORY_TIMEOUT_MS } from '../../frontend/js/history.js';
import { CONFIRM_TIMEOUT_MS, Outbox } from '../../frontend/js/outbox.js';
import { SLOW_DOWN_MAX_MS, SlowDown } from '../../frontend/js/slowdown.js';
import { message, rig } from './fake_timers.mjs';

const THROTTLE = { message: 'Too Many Requests', connectionId: 'L0SM9cOFvHcCIhw=', requestId: 'L0SM9FGSvHcFjWQ=' };

describe('the throttle answer', () => {
  test('is told apart from API Gateway\'s other typeless frame and from events', () => {
    assert.equal(SlowDown.isThrottle(THROTTLE), true);
    assert.equal(SlowDown.isThrottle({ message: 'Internal server error', connectionId: 'x' }), false);
    assert.equal(SlowDown.isThrottle({ type: 'error', message: 'Too Many Requests' }), false);
  });

  test('backs off 0.5 s doubling to 8 s, with jitter; one burst is one wait; an answer resets it', () => {
    let now = 0;
    let r = 0;
    const slow = new SlowDown({ now: () => now, random: () => r });
    // random() = 0: the fixed half of each ceiling.
    assert.equal(slow.hit(), 250);
    assert.equal(slow.hit(), 250); // the same burst (still within the wait): not doubled
    now += 250;
    assert.equal(slow.hit(), 500);
    now += 500;
    assert.equal(slow.hit(), 1000);
    for (let i = 0; i < 6; i += 1) now += slow.hit();
    r = 1; // the top of the jitter: the whole ceiling, which never passes 8 s
    assert.equal(slow.hit(), SLOW_DOWN_MAX_MS);
    now += SLOW_DOWN_MAX_MS;
    slow.served();
    assert.equal(slow.hit(), 500);
  });
});

describe('the outbox after a throttle answer', () => {
  let world, outbox;
  beforeEach(() => {
    world = rig();
    outbox = new Outbox({ ...world.deps, me: 'ana' });
    outbox.connected();
  });

  test('the new_message in flight goes again after the delay, under the same client_id', () => {
    outbox.add('c1', 'hola');
    outbox.add('c2', 'adiós');
    outbox.throttled(500);
    outbox.throttled(500); // a second answer of the burst: still one resend
    world.timers.tick(499);
    assert.equal(world.sock.sent.length, 1);
    world.timers.tick(1);
    assert.deepEqual(world.sock.sent, [
      { action: 'new_message', text: 'hola', client_id: 'c1' },
      { action: 'new_message', text: 'hola', client_id: 'c1' },
    ]);
    assert.equal(outbox.entries.get('c1').state, 'sending');
    // Its confirm timeout started over with the resend.
    world.timers.tick(CONFIRM_TIMEOUT_MS - 1);
    assert.equal(outbox.entries.get('c1').state, 'sending');
    outbox.confirm([message('01', { client_id: 'c1' })]);
    assert.deepEqual(world.sock.sent.map((f) => f.client_id), ['c1', 'c1', 'c2']);
  });

  test('an echo before the delay is the answer: nothing is sent again', () => {
    outbox.add('c1', 'hola');
    outbox.throttled(500);
    outbox.confirm([message('01', { client_id: 'c1' })]);
    world.timers.tick(10000);
    assert.equal(world.sock.sent.length, 1);
    assert.equal(world.timers.pending, 0);
  });

  test('nothing in flight: nothing to send again', () => {
    outbox.throttled(500);
    assert.equal(world.timers.pending, 0);
  });

  test('a socket gone meanwhile: the message waits for the next one, same client_id', () => {
    outbox.add('c1', 'hola');
    outbox.throttled(500);
    outbox.disconnected();
    world.timers.tick(1000);
    assert.equal(world.sock.sent.length, 1);
    assert.equal(outbox.entries.get('c1').state, 'queued');
    outbox.connected();
    assert.deepEqual(world.sock.sent.map((f) => f.client_id), ['c1', 'c1']);
  });
});

describe('history after a throttle answer', () => {
  let world, loader;
  beforeEach(() => {
    world = rig();
    loader = new HistoryLoader({ ...world.deps, pageSize: 50 });
  });

  test('the request in flight is asked again after the delay, first in line', () => {
    loader.connected('');
    loader.throttled(800);
    world.timers.tick(HISTORY_TIMEOUT_MS); // its timeout does not fire meanwhile: it was replaced
    assert.deepEqual(world.sock.sent, [{ action: 'history', limit: 50 }, { action: 'history', limit: 50 }]);
    const page = loader.received({ messages: [message('01')], before: null });
    assert.equal(page.kind, 'latest');
    assert.equal(loader.reachedStart, true);
  });

  test('its page arriving before the delay is the answer: nothing is asked again', () => {
    loader.connected('');
    loader.throttled(800);
    assert.equal(loader.received({ messages: [], before: null }).kind, 'latest');
    world.timers.tick(5000);
    assert.equal(world.sock.sent.length, 1);
    assert.equal(world.timers.pending, 0);
  });
});
