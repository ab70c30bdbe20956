// Who is signed in, and a fresh ID token for every connection. No DOM: the Cognito
// client, the storage, the clock and the timers are injected (node --test fakes them).
//
// Where the tokens live, and why:
//   - the ID token in memory only: it is what the socket offers, and it lasts an hour;
//   - the refresh token and the username in sessionStorage: a reload of the tab stays
//     signed in, closing the tab signs out, other tabs do not share it, and it is never
//     in a URL (where access logs and the Referer would see it) nor in localStorage
//     (which outlives the browser session on disk and is shared by every tab).
// Any script in the page could read either; the page's CSP (scripts from its own
// origin only, no inline script) is what keeps other scripts out.
//
// Expiry is counted from when a token arrived plus Cognito's ExpiresIn, not from its
// `exp` claim, so a wrong clock on the device does not make every token look expired.
// A refresh runs REFRESH_BEFORE_MS (or a fifth of the lifetime, if less) before the ID
// token expires; a connection asking for a token after that refreshes first.

import { claims } from './cognito.js';

export const STORAGE_KEY = 'chat.session';
export const REFRESH_BEFORE_MS = 5 * 60 * 1000;

export class AuthSession {
  username = null; // the verified username (the ID token's cognito:username), or null
  #client;
  #storage;
  #timers;
  #now;
  #onChange;
  #idToken = null;
  #refreshToken = null;
  #expiresAt = 0;
  #refreshAt = 0;
  #timer = 0;
  #refreshing = null; // the refresh under way, shared by everyone who asks meanwhile

  /**
   * `client`: a CognitoClient; `storage`: sessionStorage or a stand-in; `onChange()`:
   * signed in or out (also when a refresh finds the session gone).
   */
  constructor({ client, storage, timers = globalThis, now = () => Date.now(), onChange = () => {} }) {
    this.#client = client;
    this.#storage = storage;
    this.#timers = timers;
    this.#now = now;
    this.#onChange = onChange;
  }

  get signedIn() {
    return this.username !== null;
  }

  async signIn(username, password) {
    const tokens = await this.#client.signIn(username, password);
    this.#accept(tokens);
    this.#onChange();
    return this.username;
  }

  /** Sign back in from this tab's stored refresh token (after a reload); false if none works. */
  async restore() {
    const saved = this.#read();
    if (!saved) return false;
    this.#refreshToken = saved.refreshToken;
    try {
      await this.refresh();
    } catch {
      return false; // refresh() has already forgotten the session if it was refused
    }
    return this.signedIn;
  }

  /** An ID token good for a while yet: refreshed first when it is (nearly) expired. */
  async idToken() {
    if (!this.#refreshToken) throw new Error('not signed in');
    if (!this.#idToken || this.#now() >= this.#refreshAt) await this.refresh();
    return this.#idToken;
  }

  /** New tokens now. A refusal (revoked or expired refresh token) signs out. */
  refresh() {
    if (!this.#refreshing) {
      const refreshToken = this.#refreshToken;
      this.#refreshing = this.#client.refresh(refreshToken).then(
        (tokens) => {
          this.#refreshing = null;
          if (this.#refreshToken !== refreshToken) return; // signed out meanwhile
          const before = this.username;
          this.#accept(tokens);
          if (before !== this.username) this.#onChange();
        },
        (err) => {
          this.#refreshing = null;
          if (err?.type === 'NotAuthorizedException' && this.#refreshToken === refreshToken) {
            this.#forget();
            this.#onChange();
          } else if (this.#refreshToken === refreshToken) {
            this.#schedule(Math.min(30000, Math.max(1000, (this.#expiresAt - this.#now()) / 2)));
          }
          throw err;
        },
      );
    }
    return this.#refreshing;
  }

  /** Sign out: the refresh token is revoked (best effort) and everything forgotten. */
  async signOut() {
    const refreshToken = this.#refreshToken;
    this.#forget();
    this.#onChange();
    if (refreshToken) {
      try {
        await this.#client.revoke(refreshToken);
      } catch {
        // offline or already revoked: the tokens are gone from this page either way
      }
    }
  }

  /** When the ID token will be refreshed (epoch ms; tests and the page's status). */
  get refreshAt() {
    return this.#refreshAt;
  }

  #accept({ idToken, refreshToken, expiresIn }) {
    const lifetime = expiresIn * 1000;
    this.#idToken = idToken;
    if (refreshToken) this.#refreshToken = refreshToken;
    this.#expiresAt = this.#now() + lifetime;
    this.#refreshAt = this.#expiresAt - Math.min(REFRESH_BEFORE_MS, lifetime / 5);
    this.username = String(claims(idToken)['cognito:username'] ?? '') || null;
    this.#write();
    this.#schedule(this.#refreshAt - this.#now());
  }

  #schedule(ms) {
    this.#timers.clearTimeout(this.#timer);
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = 0;
      this.refresh().catch(() => {}); // a failure reschedules itself or signs out
    }, Math.max(0, ms));
  }

  #forget() {
    this.#timers.clearTimeout(this.#timer);
    this.#timer = 0;
    this.#idToken = this.#refreshToken = null;
    this.#expiresAt = this.#refreshAt = 0;
    this.username = null;
    try {
      this.#storage?.removeItem(STORAGE_KEY);
    } catch {
      // storage may be unavailable (privacy mode): nothing was kept there then
    }
  }

  #read() {
    try {
      const saved = JSON.parse(this.#storage?.getItem(STORAGE_KEY) ?? 'null');
      return saved && typeof saved.refreshToken === 'string' ? saved : null;
    } catch {
      return null;
    }
  }

  #write() {
    try {
      this.#storage?.setItem(STORAGE_KEY, JSON.stringify({ username: this.username, refreshToken: this.#refreshToken }));
    } catch {
      // without storage a reload asks to sign in again; nothing else changes
    }
  }
}
