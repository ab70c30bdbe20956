import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import { CognitoError } from '../../frontend/js/cognito.js';
import { AuthSession, REFRESH_BEFORE_MS, STORAGE_KEY } from '../../frontend/js/session.js';
import { FakeTimers } from './fake_timers.mjs';

const HOUR_S = 3600;

/** A JWT-shaped token whose payload names the user (the page never verifies it). */
function idToken(username, n) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  return `${b64({ alg: 'RS256' })}.${b64({ 'cognito:username': username, n })}.sig`;
}

/** Cognito's part: counts calls, answers as told. */
function fakeClient() {
  const c = { signIns: 0, refreshes: 0, revoked: [], refuseRefresh: null, lifetime: HOUR_S, pending: null };
  c.signIn = async (username, password) => {
    c.signIns += 1;
    if (password !== 'right') throw new CognitoError('NotAuthorizedException', 'Incorrect username or password.');
    return { idToken: idToken(username, 0), refreshToken: 'refresh-1', expiresIn: c.lifetime };
  };
  c.refresh = async (refreshToken) => {
    c.refreshes += 1;
    if (c.pending) await c.pending;
    if (c.refuseRefresh) throw c.refuseRefresh;
    return { idToken: idToken('ana', c.refreshes), refreshToken, expiresIn: c.lifetime };
  };
  c.revoke = async (token) => { c.revoked.push(token); };
  return c;
}

function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k), map: m };
}

let timers, client, storage, changes, session;

beforeEach(() => {
  timers = new FakeTimers();
  timers.now = 1_000_000;
  client = fakeClient();
  storage = memoryStorage();
  changes = 0;
  session = new AuthSession({ client, storage, timers, now: () => timers.now, onChange: () => { changes += 1; } });
});

const n = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).n;

describe('signing in and out', () => {
  test('signing in keeps the ID token in memory and the refresh token in storage', async () => {
    assert.equal(await session.signIn('ana', 'right'), 'ana');
    assert.equal(session.username, 'ana');
    assert.equal(changes, 1);
    const saved = JSON.parse(storage.getItem(STORAGE_KEY));
    assert.deepEqual(saved, { username: 'ana', refreshToken: 'refresh-1' });
    assert.ok(!storage.getItem(STORAGE_KEY).includes(await session.idToken()));
  });

  test('a wrong password leaves nobody signed in', async () => {
    await assert.rejects(session.signIn('ana', 'wrong'), { type: 'NotAuthorizedException' });
    assert.equal(session.signedIn, false);
    assert.equal(storage.getItem(STORAGE_KEY), null);
  });

  test('signing out revokes the refresh token and forgets everything', async () => {
    await session.signIn('ana', 'right');
    await session.signOut();
    assert.deepEqual(client.revoked, ['refresh-1']);
    assert.equal(session.signedIn, false);
    assert.equal(storage.getItem(STORAGE_KEY), null);
    await assert.rejects(session.idToken(), /not signed in/);
    assert.equal(timers.pending, 0);
  });

  test('a reload signs back in from the stored refresh token', async () => {
    await session.signIn('ana', 'right');
    const reloaded = new AuthSession({ client, storage, timers, now: () => timers.now });
    assert.equal(await reloaded.restore(), true);
    assert.equal(reloaded.username, 'ana');
    assert.equal(client.signIns, 1); // no password asked again
  });

  test('nothing stored: restore says so without calling Cognito', async () => {
    assert.equal(await session.restore(), false);
    assert.equal(client.refreshes, 0);
  });
});

describe('keeping the ID token fresh', () => {
  test('refreshed before it expires, by the timer, and the same token until then', async () => {
    await session.signIn('ana', 'right');
    const first = await session.idToken();
    assert.equal(session.refreshAt, timers.now + HOUR_S * 1000 - REFRESH_BEFORE_MS);
    timers.tick(HOUR_S * 1000 - REFRESH_BEFORE_MS - 1);
    assert.equal(await session.idToken(), first);
    assert.equal(client.refreshes, 0);
    timers.tick(1);
    await new Promise((r) => setImmediate(r));
    assert.equal(client.refreshes, 1);
    assert.equal(n(await session.idToken()), 1);
    assert.equal(session.username, 'ana');
  });

  test('a connection asking after expiry (a sleeping laptop) waits for a refresh', async () => {
    await session.signIn('ana', 'right');
    timers.now += 2 * HOUR_S * 1000; // the timer never got to run
    const token = await session.idToken();
    assert.equal(n(token), 1);
    assert.equal(client.refreshes, 1);
  });

  test('everyone asking during a refresh shares it', async () => {
    await session.signIn('ana', 'right');
    timers.now += 2 * HOUR_S * 1000;
    let release;
    client.pending = new Promise((r) => { release = r; });
    const asks = [session.idToken(), session.idToken(), session.idToken()];
    release();
    const tokens = await Promise.all(asks);
    assert.equal(client.refreshes, 1);
    assert.deepEqual(tokens.map(n), [1, 1, 1]);
  });

  test('a short lifetime refreshes at four fifths of it', async () => {
    client.lifetime = 300;
    await session.signIn('ana', 'right');
    assert.equal(session.refreshAt - timers.now, 240_000);
  });

  test('a refused refresh (revoked, expired) signs out and says so', async () => {
    await session.signIn('ana', 'right');
    client.refuseRefresh = new CognitoError('NotAuthorizedException', 'Refresh Token has expired');
    timers.now += 2 * HOUR_S * 1000;
    await assert.rejects(session.idToken(), { type: 'NotAuthorizedException' });
    assert.equal(session.signedIn, false);
    assert.equal(changes, 2); // signed in, then out
    assert.equal(storage.getItem(STORAGE_KEY), null);
  });

  test('a refresh that fails for the network is tried again later, still signed in', async () => {
    await session.signIn('ana', 'right');
    client.refuseRefresh = new CognitoError('NetworkError', 'offline');
    timers.tick(HOUR_S * 1000);
    await new Promise((r) => setImmediate(r));
    assert.equal(session.signedIn, true);
    assert.equal(client.refreshes, 1);
    client.refuseRefresh = null;
    timers.tick(30_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(client.refreshes, 2);
    assert.equal(n(await session.idToken()), 2);
  });
});
