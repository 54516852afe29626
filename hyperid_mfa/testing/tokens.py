"""The fake's OAuth tokens: JWTs it signs with a secret of its own, and what it knows of each.

A token carries only its id (``jti``) and the claims an app might read; whether it is
expired, revoked or already used is kept here, so tests can change it afterwards.
Access and refresh tokens are opaque to clients (HS256 with the fake's own secret);
ID tokens, which clients verify, are RS256 (see :mod:`.signing`).
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
    """What the fake knows of one token.

    ``grant`` names the authorization code the token descends from (refreshes
    included), so that replaying that code revokes them all; None for tokens that
    :meth:`FakeHyperID.issue_tokens` made. ``auth_time`` is when the user signed in.
    """

    kind: str  # "access" or "refresh"
    subject: str
    scopes: tuple[str, ...]
    expires_at: float
    auth_time: float
    grant: str | None = None
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
        auth_time: float,
        grant: str | None = None,
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
            kind=kind,
            subject=subject,
            scopes=scopes,
            expires_at=now + ttl,
            auth_time=auth_time,
            grant=grant,
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

    def revoke_grant(self, grant: str) -> None:
        """Revoke every token issued from one authorization code, refreshed ones included."""
        for record in self._records.values():
            if record.grant == grant:
                record.revoked = True

    def expire_access(self, subject: str, now: float) -> int:
        """Expire every access token of the user; return how many still worked."""
        working = 0
        for record in self._records.values():
            if record.kind == "access" and record.subject == subject:
                working += not record.revoked and now < record.expires_at
                # -inf rather than now: a clock that steps back must not revive them.
                record.expires_at = -math.inf
        return working
