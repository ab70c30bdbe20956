// Reactions as the page shows them: a summary from the server ({emoji: {count, users,
// clipped}}) turned into chips, and what a click on one means. No DOM.

// The picker's choice: a few common ones, each with a catalog key for its name.
export const PICKER = [
  ['👍', 'emoji.thumbsUp'],
  ['❤️', 'emoji.heart'],
  ['😂', 'emoji.laugh'],
  ['🎉', 'emoji.party'],
  ['😮', 'emoji.surprised'],
  ['😢', 'emoji.sad'],
];

/**
 * The chips under a message: most reacted first, ties by emoji (the summary's key order
 * means nothing). `mine` when `me` is among the names (a clipped list may leave us out:
 * then a click adds, and the server takes a second add as a no-op).
 */
export function chips(summary, me) {
  const list = [];
  for (const [emoji, v] of Object.entries(summary ?? {})) {
    const count = Number(v?.count) || 0;
    if (count < 1) continue;
    const users = Array.isArray(v.users) ? v.users.map(String) : [];
    list.push({ emoji, count, users, clipped: v.clipped === true, mine: users.includes(me) });
  }
  return list.sort((a, b) => b.count - a.count || (a.emoji < b.emoji ? -1 : a.emoji > b.emoji ? 1 : 0));
}

/** The `on` of a click on `emoji`: off when the chip is ours, on otherwise. */
export function toggleOn(summary, emoji, me) {
  return !(summary?.[emoji]?.users ?? []).includes(me);
}

/** How many names a chip's tooltip leaves out (a clipped list). */
export function othersNotListed(chip) {
  return Math.max(0, chip.count - chip.users.length);
}
