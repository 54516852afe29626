"""What a sign-in leaves behind: pending sign-in pages, authorization codes, browser sessions.

The authorization endpoint (:mod:`.signin`) fills this book and the token endpoint
(:mod:`.oidc`) redeems the codes. Everything expires by the fake's clock.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from typing import TypeVar

__all__ = ["AuthorizationCode", "AuthorizationRequest", "GrantBook", "PendingSignIn"]

#: Each kind of entry the book keeps at most; the oldest go first. A simulator left
#: running for days, or a page reloaded in a loop, must not grow without end.
MAX_ENTRIES = 10_000

_V = TypeVar("_V")


@dataclasses.dataclass(frozen=True)
class AuthorizationRequest:
    """A client's valid authorization request, as the code it leads to is bound to it.

    ``scopes`` are those granted (the supported ones among those asked for, in the
    order asked); ``requested_scopes`` all of them, as the sign-in page lists them.
    """

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    requested_scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    login_hint: str | None


@dataclasses.dataclass
class PendingSignIn:
    """A sign-in page shown and not yet submitted; its token is the page's CSRF token."""

    request: AuthorizationRequest
    expires_at: float


@dataclasses.dataclass
class AuthorizationCode:
    """A code handed to the client; ``grant`` names the tokens issued from it."""

    request: AuthorizationRequest
    subject: str
    auth_time: float
    expires_at: float
    grant: str
    used: bool = False


@dataclasses.dataclass(frozen=True)
class Session:
    """A browser signed in at the fake (its cookie), for ``prompt=none``."""

    subject: str
    auth_time: float


class GrantBook:
    """Pending sign-ins, codes and sessions, each by a random token of its own."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._pending: dict[str, PendingSignIn] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._sessions: dict[str, Session] = {}

    # ------------------------------------------------------------------ sign-in pages

    def open_sign_in(self, request: AuthorizationRequest, ttl: float) -> str:
        now = self._clock()
        for token in [t for t, p in self._pending.items() if p.expires_at <= now]:
            del self._pending[token]
        return _add(self._pending, PendingSignIn(request, now + ttl))

    def pending_sign_in(self, token: str) -> PendingSignIn | None:
        """The sign-in waiting behind a page's token; None if unknown, used or expired."""
        pending = self._pending.get(token)
        if pending is None or self._clock() >= pending.expires_at:
            return None
        return pending

    def close_sign_in(self, token: str) -> None:
        self._pending.pop(token, None)

    # ------------------------------------------------------------------ codes

    def issue_code(
        self, request: AuthorizationRequest, subject: str, auth_time: float, ttl: float
    ) -> str:
        now = self._clock()
        # A used or expired code is kept an hour, so that a replay can still be told
        # from a made-up code (and revoke the tokens it brought).
        for code in [c for c, r in self._codes.items() if r.expires_at + 3600 <= now]:
            del self._codes[code]
        grant = secrets.token_hex(16)
        return _add(self._codes, AuthorizationCode(request, subject, auth_time, now + ttl, grant))

    def code(self, code: str) -> AuthorizationCode | None:
        """The code's record, used or expired alike; None if the fake never issued it."""
        return self._codes.get(code)

    # ------------------------------------------------------------------ sessions

    def open_session(self, subject: str, auth_time: float) -> str:
        return _add(self._sessions, Session(subject, auth_time))

    def session(self, token: str | None) -> Session | None:
        return None if token is None else self._sessions.get(token)

    def end_session(self, token: str | None) -> None:
        if token is not None:
            self._sessions.pop(token, None)


def _add(entries: dict[str, _V], value: _V) -> str:
    token = secrets.token_urlsafe(32)
    entries[token] = value
    while len(entries) > MAX_ENTRIES:
        del entries[next(iter(entries))]
    return token
