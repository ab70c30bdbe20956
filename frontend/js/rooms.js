// The room list: the rooms this user has read in (a `rooms` event: newest activity
// first, unread capped at the server's unreadMax), with the room the page is in always
// listed and never unread. No DOM.

export class RoomList {
  rooms = []; // [{room, unread, lastMessageAt}] as the server ordered them
  #cap;

  constructor({ unreadMax = 100 } = {}) {
    this.#cap = unreadMax;
  }

  /** A `rooms` event. */
  received(data) {
    const list = Array.isArray(data?.rooms) ? data.rooms : [];
    this.rooms = list
      .filter((r) => r && typeof r.room === 'string')
      .map((r) => ({
        room: r.room,
        unread: Math.max(0, Math.min(this.#cap, Number(r.unread) || 0)),
        lastMessageAt: typeof r.last_message_at === 'string' ? r.last_message_at : null,
      }));
  }

  /**
   * What to show, the current room included (first if the server does not know it yet):
   * [{room, unread, current, capped}] — `capped` when the count means "this many or more".
   */
  view(current) {
    const items = this.rooms.map((r) => ({
      room: r.room,
      unread: r.room === current ? 0 : r.unread,
      current: r.room === current,
      capped: r.room !== current && r.unread >= this.#cap,
    }));
    if (current && !items.some((r) => r.current)) items.unshift({ room: current, unread: 0, current: true, capped: false });
    return items;
  }
}
