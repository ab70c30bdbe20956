// A clock for the state machines' injected timers: nothing fires until the test says
// how much time has passed, so timeouts and retries are tested without waiting.

export class FakeTimers {
  now = 0;
  #next = 1;
  #pending = new Map(); // handle -> {at, fn}

  setTimeout = (fn, ms) => {
    const handle = this.#next++;
    this.#pending.set(handle, { at: this.now + ms, fn });
    return handle;
  };

  clearTimeout = (handle) => {
    this.#pending.delete(handle);
  };

  /** How many timers are still to fire. */
  get pending() {
    return this.#pending.size;
  }

  /** Let `ms` pass, firing every timer that falls due on the way, in time order. */
  tick(ms) {
    const end = this.now + ms;
    for (;;) {
      let due = null;
      for (const [handle, t] of this.#pending) {
        if (t.at <= end && (!due || t.at < due[1].at)) due = [handle, t];
      }
      if (!due) break;
      this.#pending.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = end;
  }
}

/** A socket stand-in: records frames, and refuses them while `open` is false. */
export function fakeSocket() {
  const sock = {
    open: true,
    sent: [],
    send: (frame) => {
      if (!sock.open) return false;
      sock.sent.push(frame);
      return true;
    },
  };
  return sock;
}

/**
 * What a state machine is given instead of the world: a fake clock, a fake socket, and
 * a count of its onChange() calls. `deps` is ready to spread into its constructor.
 */
export function rig() {
  const r = { timers: new FakeTimers(), sock: fakeSocket(), changes: 0 };
  r.deps = { send: r.sock.send, timers: r.timers, onChange: () => { r.changes += 1; } };
  return r;
}

/** A server-style message event (ids sort by time, like the server's). */
export function message(id, extra = {}) {
  return { type: 'message', id, room: 'r', username: 'ana', text: `text ${id}`,
    created_at: '2026-01-01T00:00:00.000Z', ...extra };
}
