// The Cognito user pool API, the few calls the page makes, over fetch. No SDK: each call
// is one POST of JSON to the endpoint config.json names (the regional Cognito API when
// deployed, the local gateway's /cognito/ locally) with the operation in X-Amz-Target,
// exactly what boto3 sends. These calls need no AWS credentials: the app client is
// public (no secret). `fetch` is injected so `node --test` can stand in for Cognito.

import { t } from './i18n.js';

const TARGET = 'AWSCognitoIdentityProviderService.';

/** A refusal from Cognito: `type` is its exception name (NotAuthorizedException…). */
export class CognitoError extends Error {
  constructor(type, message) {
    super(message || type);
    this.type = type;
  }
}

export class CognitoClient {
  #endpoint;
  #clientId;
  #fetch;

  constructor({ endpoint, clientId, fetch = globalThis.fetch.bind(globalThis) }) {
    this.#endpoint = endpoint;
    this.#clientId = clientId;
    this.#fetch = fetch;
  }

  async #call(operation, body) {
    let response;
    try {
      response = await this.#fetch(this.#endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': TARGET + operation },
        body: JSON.stringify({ ClientId: this.#clientId, ...body }),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch {
      throw new CognitoError('NetworkError');
    }
    let data = {};
    try {
      data = await response.json();
    } catch {
      // an empty or non-JSON body: judged by the status alone
    }
    if (!response.ok) {
      // The type is `__type` (sometimes "prefix#Name") or the x-amzn-ErrorType header.
      const raw = data.__type || response.headers.get('x-amzn-ErrorType') || `HTTP ${response.status}`;
      const type = String(raw).split('#').pop().split(':')[0];
      throw new CognitoError(type, data.message || data.Message || '');
    }
    return data;
  }

  signUp(username, password, email) {
    return this.#call('SignUp', {
      Username: username,
      Password: password,
      UserAttributes: [{ Name: 'email', Value: email }],
    });
  }

  confirmSignUp(username, code) {
    return this.#call('ConfirmSignUp', { Username: username, ConfirmationCode: code });
  }

  resendCode(username) {
    return this.#call('ResendConfirmationCode', { Username: username });
  }

  /** {idToken, refreshToken, expiresIn (seconds)} */
  async signIn(username, password) {
    const data = await this.#call('InitiateAuth', {
      AuthFlow: 'USER_PASSWORD_AUTH',
      AuthParameters: { USERNAME: username, PASSWORD: password },
    });
    return tokens(data);
  }

  /** New tokens from a refresh token; the refresh token itself is kept. */
  async refresh(refreshToken) {
    const data = await this.#call('InitiateAuth', {
      AuthFlow: 'REFRESH_TOKEN_AUTH',
      AuthParameters: { REFRESH_TOKEN: refreshToken },
    });
    return { ...tokens(data), refreshToken: data.AuthenticationResult?.RefreshToken ?? refreshToken };
  }

  /** Signing out: the refresh token (and the tokens it issued) stop working. */
  revoke(refreshToken) {
    return this.#call('RevokeToken', { Token: refreshToken });
  }
}

function tokens(data) {
  const r = data.AuthenticationResult;
  if (!r?.IdToken) {
    // A challenge (new password, MFA) the page does not handle.
    throw new CognitoError(data.ChallengeName || 'UnexpectedAnswer', t('cognito.unexpected'));
  }
  return { idToken: r.IdToken, refreshToken: r.RefreshToken, expiresIn: Number(r.ExpiresIn) || 3600 };
}

/** The claims of a JWT, unverified: the page only reads its own token's username. */
export function claims(jwt) {
  const part = String(jwt).split('.')[1] ?? '';
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const bytes = Uint8Array.from(atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4)), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

const PREFIX = 'PreSignUp failed with error ';

/** What to tell a person about a failed sign-up, confirmation or sign-in, in plain words. */
export function plainWords(error) {
  const type = error?.type ?? '';
  const message = String(error?.message ?? '');
  switch (type) {
    case 'NotAuthorizedException':
    case 'UserNotFoundException':
      return t('cognito.wrongPassword');
    case 'UserNotConfirmedException':
      return t('cognito.notConfirmed');
    case 'UsernameExistsException':
      return t('cognito.nameTaken');
    case 'InvalidPasswordException': {
      const why = message.split(':').slice(1).join(':').trim().replace(/\.$/, '');
      return why ? t('cognito.weakPasswordWhy', { why }) : t('cognito.weakPassword');
    }
    case 'CodeMismatchException':
      return t('cognito.badCode');
    case 'ExpiredCodeException':
      return t('cognito.expiredCode');
    case 'UserLambdaValidationException': {
      const why = message.startsWith(PREFIX) ? message.slice(PREFIX.length).replace(/\.$/, '') : message;
      return t('cognito.badName', { why });
    }
    case 'InvalidParameterException':
      return t('cognito.checkInput', { message });
    case 'LimitExceededException':
    case 'TooManyRequestsException':
    case 'TooManyFailedAttemptsException':
      return t('cognito.tooMany');
    case 'NetworkError':
      return t('cognito.network');
    default:
      return message ? t('cognito.failedWhy', { message }) : t('cognito.failed');
  }
}
