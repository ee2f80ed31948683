"""Coinbase Advanced Trade (CDP API key) authentication: a short-lived JWT per request.

Header ``{"alg": "ES256", "kid": <key name>, "nonce": <random hex>, "typ": "JWT"}``; claims
``{"iss": "cdp", "sub": <key name>, "nbf": now, "exp": now + 120, "uri": "GET api.coinbase.com/api/v3/..."}``
(WebSocket tokens carry no ``uri``). Signed with the key's EC P-256 private key; the signature is
the raw 64-byte ``r || s`` form JWS requires, not DER. Ed25519 CDP keys (``EdDSA``) work too.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pydantic import SecretStr

from exchanges._http import reveal
from exchanges.errors import AuthError

JWT_LIFETIME_S = 120
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_private_key(pem: str) -> PrivateKey:
    """A PEM (SEC1 ``EC PRIVATE KEY`` or PKCS#8), tolerating ``\\n`` escapes from env files, or a
    base64 Ed25519 secret as CDP issues them."""
    text = pem.strip().replace("\\n", "\n")
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = base64.b64decode(text, validate=True)
            key = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise AuthError("Coinbase API secret is not a usable private key") from exc
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise AuthError("Coinbase API secret must be an EC P-256 or Ed25519 private key")


def build_jwt(key_name: str, key: PrivateKey, *, uri: str | None, now: int, nonce: str | None = None) -> str:
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "EdDSA"
    header = {"alg": alg, "kid": key_name, "nonce": nonce or secrets.token_hex(16), "typ": "JWT"}
    claims: dict[str, Any] = {"iss": "cdp", "sub": key_name, "nbf": now, "exp": now + JWT_LIFETIME_S}
    if uri is not None:
        claims["uri"] = uri
    signing_input = f"{b64url(json.dumps(header, separators=(',', ':')).encode())}." \
                    f"{b64url(json.dumps(claims, separators=(',', ':')).encode())}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def request_uri(method: str, url: str) -> str:
    """``"GET api.coinbase.com/api/v3/brokerage/accounts"``: host (with port if any) and path, no query."""
    parts = urlsplit(url)
    return f"{method.upper()} {parts.netloc}{parts.path}"


class CoinbaseSigner:
    """Holds the credentials; produces a fresh JWT per REST request or WebSocket subscription."""

    def __init__(self, key_name: SecretStr | str, private_key: SecretStr | str,
                 clock: Callable[[], float] = time.time) -> None:
        self._name = key_name
        self._key = load_private_key(reveal(private_key))
        self._clock = clock

    def rest_jwt(self, method: str, url: str) -> str:
        return build_jwt(reveal(self._name), self._key, uri=request_uri(method, url), now=int(self._clock()))

    def ws_jwt(self) -> str:
        return build_jwt(reveal(self._name), self._key, uri=None, now=int(self._clock()))

    def __repr__(self) -> str:
        return "CoinbaseSigner(<redacted>)"
