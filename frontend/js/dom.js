// The page's elements, found once, and the two DOM helpers every view uses. Text always
// goes in through textContent: nothing here parses HTML.

export const $ = (id) => document.getElementById(id);

export const ui = {
  joinView: $('join-view'), joinForm: $('join-form'), username: $('username'), room: $('room'),
  usernameHint: $('username-hint'), roomHint: $('room-hint'), joinError: $('join-error'),
  chatView: $('chat-view'), roomName: $('room-name'), meName: $('me-name'), leave: $('leave'),
  status: $('status'), retryNow: $('retry-now'), scroller: $('scroller'), log: $('messages'),
  loadOlder: $('load-older'), historyStart: $('history-start'), empty: $('empty'),
  jump: $('jump'), typing: $('typing'), composer: $('composer'), text: $('text'),
  textHint: $('text-hint'), online: $('online'), onlineCount: $('online-count'),
  notice: $('notice'), header: $('session-info'), appTitle: $('app-title'),
  authView: $('auth-view'), signinForm: $('signin-form'), signupForm: $('signup-form'),
  confirmForm: $('confirm-form'), signOut: $('sign-out'),
};

/** A new element with a class and, optionally, its text (as text, never as HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

let noticeTimer = 0;
/** A short message at the bottom of the page (role=alert), gone after `ms`. */
export function showNotice(text, ms = 8000) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { ui.notice.hidden = true; }, ms);
}
