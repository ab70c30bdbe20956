// The Cognito user pool API, the few calls the page makes, over fetch. No SDK: each call
// is one POST of JSON to the endpoint config.json names (the regional Cognito API when
// deployed, the local gateway's /cognito/ locally) with the operation in X-Amz-Target,
// exactly what boto3 sends. These calls need no AWS credentials: the app client is
// public (no secret). `fetch` is injected so `node --test` can stand in for Cognito.

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
      throw new CognitoError('NetworkError', 'the sign-in service cannot be reached');
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
    throw new CognitoError(data.ChallengeName || 'UnexpectedAnswer', 'this account needs a step the page cannot do');
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
      return 'Wrong username or password.';
    case 'UserNotConfirmedException':
      return 'This account is not confirmed yet: enter the code we emailed you.';
    case 'UsernameExistsException':
      return 'That name is taken: pick another one.';
    case 'InvalidPasswordException': {
      const why = message.split(':').slice(1).join(':').trim();
      return `That password is too weak${why ? ` (${why.replace(/\.$/, '')})` : ''}: use at least 8 characters with upper- and lowercase letters, a digit and a symbol.`;
    }
    case 'CodeMismatchException':
      return 'That code is not right: check the email and try again.';
    case 'ExpiredCodeException':
      return 'That code has expired: ask for a new one.';
    case 'UserLambdaValidationException': {
      const why = message.startsWith(PREFIX) ? message.slice(PREFIX.length).replace(/\.$/, '') : message;
      return `That name cannot be used: ${why}.`;
    }
    case 'InvalidParameterException':
      return `Check what you typed: ${message}`;
    case 'LimitExceededException':
    case 'TooManyRequestsException':
    case 'TooManyFailedAttemptsException':
      return 'Too many attempts: wait a minute and try again.';
    case 'NetworkError':
      return 'The sign-in service cannot be reached: check your connection and try again.';
    default:
      return `Signing in failed${message ? `: ${message}` : ''}. Try again.`;
  }
}
