"""Verifying Cognito ID tokens: the only code that knows JWTs, JWKS and Cognito's claims.

An ID token is an RS256 JWT signed by one of the user pool's keys, published as a JWKS
at ``<issuer>/.well-known/jwks.json``. ``TokenVerifier.verify`` accepts a token only if

- its header names ``RS256`` and a key id (``kid``) the pool publishes: the algorithm is
  fixed here, never taken from the token, so ``alg: none`` and HS256-signed-with-the-
  public-key tokens are refused before any key is looked at;
- the signature verifies with that key (an altered payload or another key fails);
- ``iss`` is the pool, ``aud`` the app client, ``token_use`` is ``id`` (an access token
  has no ``aud`` and is refused too), and ``exp``/``nbf``/``iat`` hold within
  ``LEEWAY_S`` of this machine's clock.

Verification is PyJWT's (``jwt.decode`` with the algorithm list, audience, issuer and
required claims given); this module adds the key cache. The JWKS is fetched once per
process (a Lambda container) and again only when a token names a key id the cache does
not know (Cognito rotating keys), at most once every ``REFRESH_INTERVAL_S`` so a stream
of tokens with made-up key ids cannot turn into a stream of fetches.

Nothing here logs, and ``InvalidToken`` never carries the token: callers log its
``reason``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jwt

ALGORITHM = "RS256"
# Clock skew tolerated on exp/nbf/iat: small, a token is short-lived anyway.
LEEWAY_S = 30
# The least time between two JWKS fetches caused by unknown key ids.
REFRESH_INTERVAL_S = 60.0
JWKS_TIMEOUT_S = 3.0
# A JWT is three base64url parts; a Cognito ID token is ~1 KB. Anything far bigger is
# not a token, and is refused before it is parsed.
MAX_TOKEN_LENGTH = 8192

Fetch = Callable[[str], Mapping[str, Any]]


class Identity(NamedTuple):
    """Who a verified ID token says the person is."""

    sub: str  # the user's id in the pool: never reused, never changes
    username: str  # cognito:username, what the chat shows


class InvalidToken(Exception):
    """The token does not prove anything: refuse the connection (HTTP 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(Exception):
    """The pool's keys could not be fetched: nothing can be verified (HTTP 500)."""


def fetch_json(url: str) -> Mapping[str, Any]:
    """GET a JSON document (the JWKS) over HTTPS, or HTTP locally."""
    if not url.startswith(("https://", "http://")):
        raise KeysUnavailable(f"not an HTTP(S) URL: {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=JWKS_TIMEOUT_S) as response:  # noqa: S310
            return json.load(response)
    except (OSError, ValueError) as exc:
        raise KeysUnavailable(f"fetching {url} failed: {exc}") from None


class TokenVerifier:
    """Verifies ID tokens of one user pool and app client; one per process."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str,
        *,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
        leeway_s: int = LEEWAY_S,
    ) -> None:
        if not (issuer and audience and jwks_url):
            raise ValueError("a token verifier needs the issuer, the audience and the JWKS URL")
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.leeway_s = leeway_s
        self.fetches = 0  # how many times the JWKS was fetched (tests, logs)
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def verify(self, token: str) -> Identity:
        """The identity in a valid ID token; ``InvalidToken`` with the reason otherwise."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {str(header.get('alg'))[:16]!r} is not {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no key id")
        key = self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"no {exc.claim} claim") from None
        except jwt.PyJWTError:
            raise InvalidToken("malformed") from None
        if claims.get("token_use") != "id":
            raise InvalidToken("not an ID token")
        sub, username = claims.get("sub"), claims.get("cognito:username")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("no sub claim")
        if not isinstance(username, str) or not username:
            raise InvalidToken("no cognito:username claim")
        return Identity(sub=sub, username=username)

    # -- keys ----------------------------------------------------------------------

    def _key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= REFRESH_INTERVAL_S:
                self._refresh(now)
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown key id")
        return key

    def _refresh(self, now: float) -> None:
        document = self._fetch(self.jwks_url)
        self.fetches += 1
        self._fetched_at = now
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, Mapping) else []:
            if not isinstance(entry, Mapping) or entry.get("kty") != "RSA":
                continue
            if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str):
                continue
            try:
                keys[kid] = jwt.PyJWK(dict(entry), algorithm=ALGORITHM)
            except jwt.PyJWTError:
                continue  # one broken key must not hide the others
        if not keys:
            raise KeysUnavailable(f"{self.jwks_url} has no RS256 signing keys")
        self._keys = keys
