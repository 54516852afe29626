"""The fake's RSA key: it signs ID tokens (RS256) and the JWKS endpoint publishes it.

One key per fake, made on first use: generating an RSA key takes tens of
milliseconds, and most fakes in a test suite never sign an ID token. Its ``kid`` is
its JWK thumbprint (RFC 7638), so clients that look keys up by ``kid`` (allauth,
mozilla-django-oidc) find it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .encoding import b64url_encode, canonical_json

__all__ = ["SigningKey"]

_KEY_SIZE = 2048


class SigningKey:
    """An RSA key pair, generated when first needed."""

    def __init__(self) -> None:
        self._key: rsa.RSAPrivateKey | None = None
        self._public_jwk: dict[str, str] = {}

    def _private_key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)
            numbers = key.public_key().public_numbers()
            # RFC 7638: the thumbprint hashes exactly these members, in this order.
            required = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
            kid = b64url_encode(hashlib.sha256(canonical_json(required)).digest())
            self._public_jwk = {**required, "kid": kid, "use": "sig", "alg": "RS256"}
            self._key = key
        return self._key

    @property
    def kid(self) -> str:
        self._private_key()
        return self._public_jwk["kid"]

    def jwks(self) -> dict[str, Any]:
        """The JWK Set the ``jwks_uri`` serves: this key's public half."""
        self._private_key()
        return {"keys": [dict(self._public_jwk)]}

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS of ``claims``, RS256."""
        key = self._private_key()
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (
            b64url_encode(canonical_json(header)) + "." + b64url_encode(canonical_json(claims))
        )
        signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url_encode(signature)


def _b64url_uint(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))
