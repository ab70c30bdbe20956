// Signing in (config.json's auth is cognito): the sign-in, sign-up and confirmation
// forms, and what happens when the sign-in is gone. The decisions are in session.js and
// cognito.js; this module only wires them to the forms.

import { endSession } from './chat.js';
import { CognitoClient, plainWords } from './cognito.js';
import { $, ui } from './dom.js';
import { t } from './i18n.js';
import { prefill } from './join.js';
import { normalizeUsername } from './protocol.js';
import { AuthSession } from './session.js';
import { app } from './state.js';

const forms = { signin: ui.signinForm, signup: ui.signupForm, confirm: ui.confirmForm };
let pendingSignUp = null; // {username, password} between sign-up and its confirmation

export async function startSignIn(c) {
  app.cognito = new CognitoClient({ endpoint: c.auth.endpoint, clientId: c.auth.clientId });
  const auth = new AuthSession({
    client: app.cognito,
    storage: globalThis.sessionStorage,
    onChange: () => {
      // The refresh token was refused (revoked, expired): back to signing in.
      if (!auth.signedIn && !app.signingOut && (app.session || ui.authView.hidden)) sessionEnded();
    },
  });
  app.auth = auth;
  ui.username.readOnly = true;
  $('signup-username-hint').textContent = c.rules.usernameHint;
  if (await auth.restore()) showJoin();
  else showAuth('signin');
}

/** The sign-in is gone (its tokens refused): leave the room, ask to sign in again. */
export function sessionEnded() {
  endSession();
  showAuth('signin', t('signin.ended'));
}

function showAuth(which, message = '') {
  ui.signOut.hidden = true;
  ui.joinView.hidden = true;
  ui.authView.hidden = false;
  for (const [name, form] of Object.entries(forms)) form.hidden = name !== which;
  for (const id of ['signin-error', 'signup-error', 'confirm-error']) $(id).textContent = '';
  if (message) $(`${which}-error`).textContent = message;
  forms[which].querySelector('input:not([readonly])')?.focus();
}

function showJoin() {
  ui.authView.hidden = true;
  ui.joinView.hidden = false;
  ui.signOut.hidden = false;
  prefill();
}

async function busy(form, errorId, work) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  $(errorId).textContent = '';
  try {
    await work();
  } catch (err) {
    $(errorId).textContent = plainWords(err);
    return err;
  } finally {
    button.disabled = false;
  }
  return null;
}

function showConfirm(username, message = '') {
  showAuth('confirm', message);
  $('confirm-info').textContent = t('confirm.info', { name: username });
  $('confirm-code').value = '';
}

export function wireSignIn() {
  ui.signinForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const username = normalizeUsername($('signin-username').value);
    const password = $('signin-password').value;
    const err = await busy(ui.signinForm, 'signin-error', () => app.auth.signIn(username, password));
    if (!err) {
      $('signin-password').value = '';
      showJoin();
    } else if (err.type === 'UserNotConfirmedException') {
      pendingSignUp = { username, password };
      showConfirm(username, plainWords(err));
    }
  });

  ui.signupForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const username = normalizeUsername($('signup-username').value);
    const problem = app.config.rules.usernameProblem(username);
    if (problem) {
      $('signup-error').textContent = problem;
      return;
    }
    const email = $('signup-email').value.trim();
    const password = $('signup-password').value;
    const err = await busy(ui.signupForm, 'signup-error',
      () => app.cognito.signUp(username, password, email));
    if (!err) {
      pendingSignUp = { username, password };
      $('signup-password').value = '';
      showConfirm(username);
    }
  });

  ui.confirmForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const pending = pendingSignUp;
    if (!pending) return showAuth('signin');
    const code = $('confirm-code').value.trim();
    const err = await busy(ui.confirmForm, 'confirm-error', async () => {
      await app.cognito.confirmSignUp(pending.username, code);
      await app.auth.signIn(pending.username, pending.password);
    });
    if (!err) {
      pendingSignUp = null; // the password is not kept a moment longer than needed
      showJoin();
    }
  });

  $('resend-code').addEventListener('click', async () => {
    if (!pendingSignUp) return;
    const err = await busy(ui.confirmForm, 'confirm-error', () => app.cognito.resendCode(pendingSignUp.username));
    if (!err) $('confirm-error').textContent = t('confirm.resent');
  });

  $('show-signup').addEventListener('click', () => showAuth('signup'));
  $('show-signin').addEventListener('click', () => showAuth('signin'));

  ui.signOut.addEventListener('click', async () => {
    endSession();
    app.signingOut = true;
    try {
      await app.auth?.signOut();
    } finally {
      app.signingOut = false;
    }
    showAuth('signin');
  });
}
