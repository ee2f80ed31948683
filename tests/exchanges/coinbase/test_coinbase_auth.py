"""Coinbase CDP JWTs: signed ES256 by the key, verifiable with its public half, with the right claims."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pydantic import SecretStr

from exchanges.coinbase.auth import CoinbaseSigner, build_jwt, load_private_key, request_uri
from exchanges.errors import AuthError
from tests.exchanges.coinbase.conftest import KEY_NAME


def decode(token: str) -> tuple[dict, dict, bytes, bytes]:
    head, claims, sig = token.split(".")
    unb64 = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
    return json.loads(unb64(head)), json.loads(unb64(claims)), unb64(sig), f"{head}.{claims}".encode()


def verify_es256(public: ec.EllipticCurvePublicKey, token: str) -> None:
    _, _, sig, signed = decode(token)
    assert len(sig) == 64  # JWS raw r || s, not DER
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public.verify(der, signed, ec.ECDSA(hashes.SHA256()))


def test_rest_jwt_verifies_with_the_public_key_and_has_the_right_claims(ec_key: ec.EllipticCurvePrivateKey,
                                                                        ec_pem: str) -> None:
    now = 1_700_000_000
    signer = CoinbaseSigner(SecretStr(KEY_NAME), SecretStr(ec_pem), clock=lambda: now)
    token = signer.rest_jwt("GET", "https://api.coinbase.com/api/v3/brokerage/accounts?limit=250")
    verify_es256(ec_key.public_key(), token)
    header, claims, _, _ = decode(token)
    assert header["alg"] == "ES256" and header["kid"] == KEY_NAME and header["typ"] == "JWT"
    assert len(header["nonce"]) == 32 and int(header["nonce"], 16) >= 0
    assert claims == {"iss": "cdp", "sub": KEY_NAME, "nbf": now, "exp": now + 120,
                      "uri": "GET api.coinbase.com/api/v3/brokerage/accounts"}


def test_each_token_has_its_own_nonce_and_a_tampered_one_fails(ec_key: ec.EllipticCurvePrivateKey, ec_pem: str) -> None:
    signer = CoinbaseSigner(KEY_NAME, ec_pem)
    a, b = signer.rest_jwt("POST", "https://api.coinbase.com/api/v3/brokerage/orders"), signer.ws_jwt()
    assert decode(a)[0]["nonce"] != decode(b)[0]["nonce"]
    assert "uri" not in decode(b)[1]  # WebSocket tokens carry no uri
    head, _, sig = a.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"iss": "cdp", "sub": "someone-else", "nbf": 0, "exp": 1,
                                                  "uri": "POST x"}).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verify_es256(ec_key.public_key(), f"{head}.{forged}.{sig}")


def test_request_uri_includes_host_port_and_path_but_not_the_query() -> None:
    assert request_uri("get", "http://127.0.0.1:8123/api/v3/brokerage/orders/historical/batch?limit=1") == \
        "GET 127.0.0.1:8123/api/v3/brokerage/orders/historical/batch"


def test_pem_with_escaped_newlines_and_pkcs8_load(ec_key: ec.EllipticCurvePrivateKey, ec_pem: str) -> None:
    assert isinstance(load_private_key(ec_pem.replace("\n", "\\n")), ec.EllipticCurvePrivateKey)
    pkcs8 = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    assert isinstance(load_private_key(pkcs8), ec.EllipticCurvePrivateKey)


def test_ed25519_keys_sign_eddsa_tokens() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    loaded = load_private_key(base64.b64encode(raw + key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode())
    token = build_jwt(KEY_NAME, loaded, uri="GET api.coinbase.com/api/v3/brokerage/accounts", now=int(time.time()))
    header, _, sig, signed = decode(token)
    assert header["alg"] == "EdDSA"
    key.public_key().verify(sig, signed)


def test_unusable_keys_are_auth_errors_that_do_not_echo_the_secret() -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    for secret in ("-----BEGIN EC PRIVATE KEY-----\nnot a key\n-----END EC PRIVATE KEY-----", rsa_pem, "%%%"):
        with pytest.raises(AuthError) as info:
            load_private_key(secret)
        assert secret not in str(info.value)


def test_the_signer_never_shows_its_secrets(ec_pem: str) -> None:
    signer = CoinbaseSigner(KEY_NAME, ec_pem)
    assert KEY_NAME not in repr(signer) and "PRIVATE" not in repr(signer)
