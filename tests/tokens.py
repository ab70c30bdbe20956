"""Tokens for the sign-in tests: moto-issued ones, and every hostile variant of them.

moto's Cognito signs ID tokens with one RSA key it ships (``kid`` "dummy") and serves the
public half as each pool's JWKS. The hostile tokens are made from a real one: the
same claims re-signed or altered in each way an attacker (or a stale client) might try.
``HOSTILE`` lists them with the answer the handshake must give; the backend tests check
the authorizer's decision for each, the gateway tests the HTTP status over a socket.
"""

from __future__ import annotations

import base64
import functools
import gzip
import importlib.resources
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MOTO_KID = "dummy"


def _moto_resource(name: str) -> dict[str, Any]:
    data = importlib.resources.files("moto").joinpath(f"cognitoidp/resources/{name}.gz")
    return json.loads(gzip.decompress(data.read_bytes()))


def moto_public_jwks() -> dict[str, Any]:
    """The JWKS moto serves for every pool."""
    return _moto_resource("jwks-public.json")


def moto_private_key() -> Any:
    """The key moto signs every pool's tokens with (public knowledge: it ships in moto)."""
    return jwt.PyJWK(_moto_resource("jwks-private.json"), algorithm="RS256").key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def sign(claims: dict[str, Any], key: Any = None, kid: str = MOTO_KID, alg: str = "RS256") -> str:
    return jwt.encode(claims, key if key is not None else moto_private_key(), algorithm=alg,
                      headers={"kid": kid})


def unsigned(claims: dict[str, Any], kid: str = MOTO_KID) -> str:
    """``alg: none``: a header, the claims, and an empty signature."""
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def altered(token: str, **changes: Any) -> str:
    """The token with its payload changed and its original signature kept."""
    header, _, signature = token.split(".")
    payload = b64(json.dumps({**claims_of(token), **changes}).encode())
    return f"{header}.{payload}.{signature}"


def hs256_with_public_key(claims: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HMAC-signed with the public key's PEM as secret.

    PyJWT refuses to HMAC with a PEM key, so the signature is made by hand here.
    """
    import hashlib
    import hmac

    public_pem = moto_private_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": MOTO_KID}).encode())
    payload = b64(json.dumps(claims).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


@functools.cache
def new_rsa_key() -> Any:
    """A key that is not the pool's (one per test process: making one takes a while)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class Hostile:
    """A token (or none) to offer, and what the handshake must answer."""

    name: str
    make: Callable[[str, str], str]  # (a valid token, another pool's token) -> the token
    status: int  # the handshake's HTTP status
    reason: str  # what the authorizer logs


def _shifted(token: str, **changes: Any) -> str:
    return sign({**claims_of(token), **changes})


def _now() -> int:
    return int(time.time())


HOSTILE: tuple[Hostile, ...] = (
    Hostile("malformed", lambda t, o: "not-a-jwt", 401, "malformed"),
    Hostile("three dots of garbage", lambda t, o: "a.b.c", 401, "malformed"),
    Hostile("expired", lambda t, o: _shifted(t, iat=_now() - 7200, exp=_now() - 3600),
            401, "expired"),
    Hostile("not valid yet", lambda t, o: _shifted(t, nbf=_now() + 3600), 401, "not valid yet"),
    Hostile("another key", lambda t, o: sign(claims_of(t), key=new_rsa_key()),
            401, "bad signature"),
    Hostile("altered payload", lambda t, o: altered(t, **{"cognito:username": "mallory"}),
            401, "bad signature"),
    Hostile("alg none", lambda t, o: unsigned(claims_of(t)), 401, "algorithm 'none' is not RS256"),
    Hostile("HS256 with the public key", lambda t, o: hs256_with_public_key(claims_of(t)),
            401, "algorithm 'HS256' is not RS256"),
    Hostile("unknown key id", lambda t, o: sign(claims_of(t), kid="rotated-away"),
            401, "unknown key id"),
    Hostile("wrong audience", lambda t, o: _shifted(t, aud="another-client"),
            401, "wrong audience"),
    Hostile("another pool", lambda t, o: _shifted(t, iss=claims_of(o)["iss"]),
            401, "wrong issuer"),
    Hostile("access token", lambda t, o: _shifted(t, token_use="access"), 401, "not an ID token"),
    Hostile("no username", lambda t, o: sign({k: v for k, v in claims_of(t).items()
                                              if k != "cognito:username"}),
            401, "no cognito:username claim"),
    Hostile("username outside the rules",
            lambda t, o: _shifted(t, **{"cognito:username": "<script>"}), 403,
            "username may contain only letters, digits, '_', '.' and '-'"),
)
