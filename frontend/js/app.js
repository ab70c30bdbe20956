// The page's wiring: the language first, then config.json, then the join form (or
// signing in first, with auth: cognito). Each module below has one job:
//   dom.js       the page's elements, el(), the notice
//   state.js     what the wiring modules share (config, sign-in, the room session)
//   localize.js  the page in the reader's language, and the switch
//   join.js      the join form            signin.js   the sign-in forms
//   chat.js      one room session         incoming.js the server's events applied to it
//   composer.js  writing, sending, editing  screen.js drawing the session; view.js as text
//   message_view.js one message            menus.js    the keyboard-friendly popup menus
//   actions.js   edit, delete, react      room_list.js the room list; seen.js what was seen
// and the pure modules, unit-tested with `node --test` (no DOM in them):
//   protocol.js  the wire contract        connection.js one resilient WebSocket
//   store.js     a room's messages        history.js  pages of the past, catch-up
//   outbox.js    our messages on the way  cognito.js, session.js  signing in
//   requests.js  our edits/deletes/reactions on the way   slowdown.js the throttle answer
//   reactions.js chips and toggles        readmarker.js the read marker   rooms.js the room list
//   i18n.js      words and formats per language (catalogs in frontend/i18n/)

import {
  labelRoom, setChatHooks, showRooms, startSession, switchRoom, wireChat,
} from './chat.js';
import { showMode, wireComposer } from './composer.js';
import { $, ui } from './dom.js';
import { prefill, showRules, wireJoinForm } from './join.js';
import { onLanguageChange, startLanguage } from './localize.js';
import { wireMenus } from './menus.js';
import { rules } from './protocol.js';
import { wireRoomForm } from './room_list.js';
import { renderAll, renderOnlineList, renderTypingLine, updateOlderButton, wireScreen } from './screen.js';
import { sessionEnded, startSignIn, wireSignIn } from './signin.js';
import { app } from './state.js';
import { renderStatus } from './view.js';

const languageReady = startLanguage();

// config.json is fetched relative to the page: the local gateway and CloudFront both
// serve it next to index.html, each with its own WebSocket URL and the protocol's rules.
app.configPromise = fetch('config.json', { cache: 'no-store' })
  .then((r) => {
    if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
    return r.json();
  })
  .then((json) => {
    if (typeof json?.websocketUrl !== 'string') throw new Error('config.json has no websocketUrl');
    return { websocketUrl: json.websocketUrl, rules: rules(json.protocol), auth: json.auth ?? { type: 'none' } };
  });

setChatHooks({ signInGone: sessionEnded });
wireJoinForm(startSession);
wireSignIn();
wireChat({ onLeave: prefill });
wireComposer();
wireScreen();
wireMenus();
wireRoomForm((raw) => {
  const r = app.config?.rules;
  if (!r || !app.session) return '';
  const room = r.normalizeRoom(raw);
  const problem = r.roomProblem(room);
  if (!problem) switchRoom(room);
  return problem;
});

// Another language: whatever was written from code is written again.
onLanguageChange(() => {
  if (app.config) showRules(app.config);
  if (app.auth) $('signup-username-hint').textContent = app.config.rules.usernameHint;
  const s = app.session;
  if (!s) return;
  labelRoom(s);
  showMode(s);
  showRooms(s);
  renderStatus(ui.status, s.conn.state, s.conn.retryAt);
  renderAll(s);
  updateOlderButton(s);
  renderOnlineList(s);
  renderTypingLine(s);
});

// The form is filled at once (not after the catalog): what the user types first is kept.
prefill();
app.configPromise.catch(() => {}); // said on the join form when the user tries to join
await languageReady.catch(() => {}); // no catalog at all: keys show, the chat still works
app.configPromise.then(
  (c) => {
    app.config = c;
    showRules(c);
    if (c.auth.type === 'cognito') startSignIn(c);
  },
  () => {}, // said on the join form when the user tries to join
);

