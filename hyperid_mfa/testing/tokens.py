"""The fake's OAuth tokens: JWTs it signs with a secret of its own, and what it knows of each.

A token carries only its id (``jti``) and the claims an app might read; whether it is
expired, revoked or already used is kept here, so tests can change it afterwards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import secrets
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from .encoding import b64url_decode, b64url_encode, canonical_json, loads

__all__ = ["TokenBook", "TokenPair", "TokenRecord"]


@dataclasses.dataclass(frozen=True)
class TokenPair:
    """Tokens :meth:`FakeHyperID.issue_tokens` made. Unpacks like a tuple.

    The tokens are left out of ``repr()`` so a failing assertion never prints them.
    """

    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    expires_in: float

    def __iter__(self) -> Iterator[Any]:
        return iter((self.access_token, self.refresh_token, self.expires_in))


@dataclasses.dataclass
class TokenRecord:
    kind: str  # "access" or "refresh"
    subject: str
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False
    used: bool = False


class TokenBook:
    """Every token the fake signed (HS256), by id."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._kid = secrets.token_hex(8)
        self._records: dict[str, TokenRecord] = {}

    def mint(
        self,
        kind: str,
        subject: str,
        scopes: tuple[str, ...],
        *,
        now: float,
        ttl: float,
        issuer: str,
        client_id: str,
    ) -> str:
        jti = str(uuid.uuid4())
        claims = {
            "exp": math.floor(now + ttl),
            "iat": math.floor(now),
            "jti": jti,
            "iss": issuer,
            "sub": subject,
            "typ": "Bearer" if kind == "access" else "Refresh",
            "azp": client_id,
            "scope": " ".join(scopes),
        }
        header = {"alg": "HS256", "typ": "JWT", "kid": self._kid}
        signing_input = (
            b64url_encode(canonical_json(header)) + "." + b64url_encode(canonical_json(claims))
        )
        signature = hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        self._records[jti] = TokenRecord(
            kind=kind, subject=subject, scopes=scopes, expires_at=now + ttl
        )
        return signing_input + "." + b64url_encode(signature)

    def verify(self, token: str, kind: str) -> TokenRecord | None:
        """The record of a token this fake signed, whatever its state; None if forged or unknown."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signature = b64url_decode(parts[2])
            expected = hmac.new(
                self._secret, (parts[0] + "." + parts[1]).encode("ascii"), hashlib.sha256
            ).digest()
            if not hmac.compare_digest(signature, expected):
                return None
            claims = loads(b64url_decode(parts[1]))
        except (ValueError, UnicodeEncodeError):
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("jti"), str):
            return None
        record = self._records.get(claims["jti"])
        if record is None or record.kind != kind:
            return None
        return record

    def bearer(self, headers: Mapping[str, str]) -> TokenRecord | None:
        """The access token of an ``Authorization: Bearer`` header (lower-cased names)."""
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.verify(token.strip(), "access")

    def revoke(self, subject: str) -> None:
        for record in self._records.values():
            if record.subject == subject:
                record.revoked = True
