// What the page's wiring modules share: config.json once it has arrived, the sign-in
// (auth: cognito) and the room session. One object, owned by nobody in particular:
// app.js fills `config`, signin.js `auth`/`cognito`, chat.js `session`.

export const app = {
  config: null, // {websocketUrl, rules, auth} once config.json has arrived
  configPromise: null, // the fetch of config.json (rejects when the page cannot start)
  auth: null, // an AuthSession when config.json's auth is cognito
  cognito: null, // its CognitoClient (sign-up and confirmation go straight to it)
  signingOut: false,
  session: null, // the room the page is in (chat.js)
};
