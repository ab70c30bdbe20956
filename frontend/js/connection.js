// One WebSocket to the chat, kept alive: reconnects with exponential backoff and jitter,
// pings so API Gateway's 10-minute idle timer never fires, and reports a status the page
// can show. It knows nothing about messages: it emits every JSON frame it receives.
//
// Events (EventTarget): 'status' {state, retryAt, reason}, 'open' {reconnect},
// 'frame' {data}, 'refused' {} (the very first handshake failed; see below),
// 'unauthenticated' {error} (no subprotocols to offer: the sign-in is gone).
//
// With sign-in, `protocols()` gives the subprotocols to offer on each attempt
// (['chat.v1', 'bearer.<ID token>'], refreshed when the token is near its expiry), so a
// reconnect after an hour offers a fresh token, never the one the first socket had.

import { frames } from './protocol.js';

const PING_EVERY_MS = 4 * 60 * 1000; // comfortably inside the 10 min idle timeout
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30000;
// A socket that opens is not yet a socket that works: the backoff is reset only once the
// page says the connection served it (markHealthy), or after this long online anyway.
const HEALTHY_AFTER_MS = 30000;
// Sockets replaced in a row (each opened, then could not serve the room) before giving
// up and waiting for the user's "Retry now".
export const MAX_REPLACEMENTS = 4;

export class Connection extends EventTarget {
  #url;
  #protocols;
  #ws = null;
  #attempt = 0;
  #everOpen = false;
  #stopped = true;
  #retryTimer = 0;
  #pingTimer = 0;
  #healthyTimer = 0;
  #replaced = 0; // consecutive reconnect() calls since the last healthy connection
  #attemptId = 0; // which #connect() is current (a token may take a while to arrive)

  state = 'offline'; // connecting | online | reconnecting | offline
  retryAt = 0;

  constructor(url, { protocols = null } = {}) {
    super();
    this.#url = url;
    this.#protocols = protocols;
    // The browser knows when the network is gone: no point burning retries meanwhile,
    // and when it comes back there is no reason to wait for the backoff.
    this.onOffline = () => {
      if (this.#stopped) return;
      clearTimeout(this.#retryTimer);
      this.retryAt = 0;
      this.#drop();
      this.#setState('offline', 'No network');
    };
    this.onOnline = () => { if (!this.#stopped) this.retryNow(); };
    addEventListener('offline', this.onOffline);
    addEventListener('online', this.onOnline);
  }

  start() {
    this.#stopped = false;
    this.#connect();
  }

  /** Close for good (leaving the room): no reconnect. */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    removeEventListener('offline', this.onOffline);
    removeEventListener('online', this.onOnline);
    this.#drop();
    this.#setState('offline');
  }

  retryNow() {
    if (this.#stopped || this.state === 'online' || this.state === 'connecting') return;
    clearTimeout(this.#retryTimer);
    this.#connect();
  }

  /**
   * Replace an open socket the server cannot serve (say its record of the connection is
   * gone): drop it and come back through the normal backoff, then catch up as usual.
   */
  reconnect() {
    if (this.#stopped || !this.#ws) return;
    this.#drop();
    this.#replaced += 1;
    if (this.#replaced >= MAX_REPLACEMENTS) {
      // The server keeps failing us: stop hammering it, let the user decide when to retry.
      this.retryAt = 0;
      this.#setState('offline', 'gave up');
      return;
    }
    this.#scheduleRetry('replaced');
  }

  /** The open socket did real work (a history page came back): reset the backoff. */
  markHealthy() {
    clearTimeout(this.#healthyTimer);
    this.#attempt = 0;
    this.#replaced = 0;
  }

  /** Send a frame if the socket is open; false means the caller must keep it for later. */
  send(frame) {
    if (this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  async #connect() {
    this.#setState(this.#everOpen ? 'reconnecting' : 'connecting');
    this.retryAt = 0;
    let protocols;
    if (this.#protocols) {
      this.#attemptId += 1;
      const attempt = this.#attemptId;
      try {
        protocols = await this.#protocols();
      } catch (error) {
        if (this.#stopped || attempt !== this.#attemptId) return;
        this.#stopped = true;
        this.#setState('offline', 'signed out');
        this.dispatchEvent(new CustomEvent('unauthenticated', { detail: { error } }));
        return;
      }
      // Stopped, or another attempt started (Retry now), while the token was on its way.
      if (this.#stopped || attempt !== this.#attemptId || this.#ws) return;
    }
    let ws;
    try {
      ws = protocols ? new WebSocket(this.#url, protocols) : new WebSocket(this.#url);
    } catch (err) {
      // A URL the Content-Security-Policy refuses throws here in some browsers.
      this.#setState('offline', `Cannot open ${this.#url}: ${err.message}`);
      this.#stopped = true;
      return;
    }
    this.#ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      const reconnect = this.#everOpen;
      this.#everOpen = true;
      // Not `#attempt = 0` here: a server that accepts sockets and then fails every
      // request would otherwise be reconnected to about once a second, forever.
      clearTimeout(this.#healthyTimer);
      this.#healthyTimer = setTimeout(() => this.markHealthy(), HEALTHY_AFTER_MS);
      this.#setState('online');
      clearInterval(this.#pingTimer);
      this.#pingTimer = setInterval(() => this.send(frames.ping()), PING_EVERY_MS);
      this.dispatchEvent(new CustomEvent('open', { detail: { reconnect } }));
    };
    ws.onmessage = (ev) => {
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return; // nothing in the protocol is non-JSON; ignore rather than crash
      }
      if (data && typeof data === 'object') this.dispatchEvent(new CustomEvent('frame', { detail: data }));
    };
    ws.onclose = (ev) => {
      if (ws !== this.#ws) return; // a socket we already abandoned
      this.#ws = null;
      clearInterval(this.#pingTimer);
      clearTimeout(this.#healthyTimer);
      if (this.#stopped) return;
      if (!opened && !this.#everOpen) {
        // A browser hides the handshake's HTTP status, so a first connection that never
        // opens is either a 400 from $connect or a server that is down. The join form
        // already checked the name and room, so tell the user and let them decide.
        this.#stopped = true;
        this.#setState('offline', 'refused');
        this.dispatchEvent(new CustomEvent('refused'));
        return;
      }
      this.#scheduleRetry(ev.code);
    };
  }

  #scheduleRetry(code) {
    if (typeof navigator !== 'undefined' && navigator.onLine === false) {
      this.#setState('offline', 'No network');
      return;
    }
    // "Equal jitter": half the exponential delay is fixed, half random, so a room full
    // of clients does not hammer a restarted gateway at the same instant.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.#attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#attempt += 1;
    this.retryAt = Date.now() + delay;
    this.#setState('reconnecting', `closed (${code})`);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #drop() {
    const ws = this.#ws;
    this.#ws = null;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#healthyTimer);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(1000); } catch { /* already closing */ }
    }
  }

  #setState(state, reason = '') {
    this.state = state;
    this.dispatchEvent(new CustomEvent('status', { detail: { state, retryAt: this.retryAt, reason } }));
  }
}
