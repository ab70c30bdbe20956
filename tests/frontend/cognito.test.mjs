import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { claims, CognitoClient, CognitoError, plainWords } from '../../frontend/js/cognito.js';
import { useCatalog } from './catalogs.mjs';

useCatalog('en');

function recorder(answer) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init, body: JSON.parse(init.body) });
    const { status = 200, body = {}, headers = {} } = typeof answer === 'function' ? answer(calls.at(-1)) : answer;
    return {
      ok: status >= 200 && status < 300,
      status,
      headers: { get: (name) => headers[name] ?? null },
      json: async () => body,
    };
  };
  return { calls, fetch };
}

describe('the Cognito API over fetch', () => {
  test('a call is one POST of JSON, the operation in X-Amz-Target, the client id in the body', async () => {
    const r = recorder({ body: { UserConfirmed: false } });
    const client = new CognitoClient({ endpoint: 'http://127.0.0.1:3000/cognito/', clientId: 'app', fetch: r.fetch });
    await client.signUp('ana', 'Pw-12345', 'ana@example.com');
    const [{ url, init, body }] = r.calls;
    assert.equal(url, 'http://127.0.0.1:3000/cognito/');
    assert.equal(init.method, 'POST');
    assert.equal(init.headers['X-Amz-Target'], 'AWSCognitoIdentityProviderService.SignUp');
    assert.equal(init.headers['Content-Type'], 'application/x-amz-json-1.1');
    assert.deepEqual(body, { ClientId: 'app', Username: 'ana', Password: 'Pw-12345', UserAttributes: [{ Name: 'email', Value: 'ana@example.com' }] });
  });

  test('sign-in and refresh return the tokens; a refresh keeps its refresh token', async () => {
    const r = recorder(({ body }) => ({ body: { AuthenticationResult: {
      IdToken: `id-${body.AuthFlow}`, ExpiresIn: 3600,
      ...(body.AuthFlow === 'USER_PASSWORD_AUTH' ? { RefreshToken: 'rt' } : {}),
    } } }));
    const client = new CognitoClient({ endpoint: 'e', clientId: 'app', fetch: r.fetch });
    assert.deepEqual(await client.signIn('ana', 'pw'), { idToken: 'id-USER_PASSWORD_AUTH', refreshToken: 'rt', expiresIn: 3600 });
    assert.deepEqual(await client.refresh('rt'), { idToken: 'id-REFRESH_TOKEN_AUTH', refreshToken: 'rt', expiresIn: 3600 });
    assert.deepEqual(r.calls[1].body.AuthParameters, { REFRESH_TOKEN: 'rt' });
  });

  test('errors carry Cognito\'s exception name, from the body or the header', async () => {
    const fromBody = new CognitoClient({ endpoint: 'e', clientId: 'a', fetch: recorder({ status: 400, body: { __type: 'UsernameExistsException', message: 'User already exists' } }).fetch });
    await assert.rejects(fromBody.signUp('ana', 'p', 'e'), { type: 'UsernameExistsException', message: 'User already exists' });
    const fromHeader = new CognitoClient({ endpoint: 'e', clientId: 'a', fetch: recorder({ status: 400, headers: { 'x-amzn-ErrorType': 'NotAuthorizedException:http://x' } }).fetch });
    await assert.rejects(fromHeader.signIn('ana', 'p'), { type: 'NotAuthorizedException' });
    const offline = new CognitoClient({ endpoint: 'e', clientId: 'a', fetch: async () => { throw new TypeError('Failed to fetch'); } });
    await assert.rejects(offline.signIn('ana', 'p'), { type: 'NetworkError' });
  });

  test('a challenge the page cannot answer is an error, not a sign-in', async () => {
    const client = new CognitoClient({ endpoint: 'e', clientId: 'a', fetch: recorder({ body: { ChallengeName: 'NEW_PASSWORD_REQUIRED' } }).fetch });
    await assert.rejects(client.signIn('ana', 'p'), { type: 'NEW_PASSWORD_REQUIRED' });
  });

  test('claims reads a token\'s payload (base64url, UTF-8)', () => {
    const payload = Buffer.from(JSON.stringify({ 'cognito:username': 'josé' })).toString('base64url');
    assert.equal(claims(`h.${payload}.s`)['cognito:username'], 'josé');
  });
});

describe('errors in plain words', () => {
  const say = (type, message = '') => plainWords(new CognitoError(type, message));
  test('each refusal a person can fix says what to do', () => {
    assert.equal(say('NotAuthorizedException', 'Incorrect username or password.'), 'Wrong username or password.');
    assert.match(say('UserNotConfirmedException'), /not confirmed yet: enter the code/);
    assert.equal(say('UsernameExistsException', 'User already exists'), 'That name is taken: pick another one.');
    assert.match(say('InvalidPasswordException', 'Password did not conform with policy: Password must have symbol characters'),
      /^That password is too weak \(Password must have symbol characters\): use at least 8/);
    assert.match(say('InvalidPasswordException'), /^That password is too weak: /);
    assert.equal(say('UserLambdaValidationException', "PreSignUp failed with error username may contain only letters, digits, '_', '.' and '-'."),
      "That name cannot be used: username may contain only letters, digits, '_', '.' and '-'.");
    assert.match(say('CodeMismatchException'), /code is not right/);
    assert.match(say('NetworkError'), /cannot be reached/);
    assert.match(say('SomethingNew', 'odd'), /^Signing in failed: odd\. Try again\.$/);
  });
});
