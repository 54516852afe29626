"""What HyperID holds: its clock, addresses, client, accounts, tokens and transactions.

The calls (:mod:`.mfa`, :mod:`.oidc`, :mod:`.signin`, :mod:`.provider`) read and change
this state; :class:`FakeHyperID` is its public face and holds the one lock around
every use, so nothing here locks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

from ..constants import TRANSACTION_ID_MAX, TRANSACTION_ID_MIN
from .clients import checked_redirect_uri
from .grants import GrantBook
from .signing import SigningKey
from .tokens import TokenBook
from .transactions import TransactionBook, valid_transaction_id

__all__ = ["REALM_PATH", "HyperIDState", "normalize_url"]

#: Where HyperID's realm sits below its login host; the default issuer hangs it below base_url.
REALM_PATH = "/auth/realms/HyperID"


def normalize_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"{what} must be an absolute http(s) URL without query or fragment, got {url!r}"
        )
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


class HyperIDState:
    """One HyperID: see :class:`FakeHyperID` for the arguments.

    ``base_url`` and ``issuer`` are normalized URLs or None (no address yet; the
    issuer derived from ``base_url``). ``users`` maps each subject, oldest first, to
    whether it has an authenticator device. ``redirect_uris`` are the client's
    registered ones, in registration order.
    """

    def __init__(
        self,
        *,
        base_url: str | None,
        issuer: str | None,
        clock: Callable[[], float],
        transaction_ttl: float,
        token_ttl: float,
        refresh_token_ttl: float,
        client_id: str,
        client_secret: str,
        rotate_refresh_tokens: bool,
        first_transaction_id: int,
        redirect_uris: Iterable[str] = (),
        allow_loopback_redirect_uris: bool = True,
    ) -> None:
        if valid_transaction_id(first_transaction_id) is None:
            raise ValueError(
                f"first_transaction_id must be an int in {TRANSACTION_ID_MIN}..{TRANSACTION_ID_MAX}"
            )
        for name, ttl in (
            ("transaction_ttl", transaction_ttl),
            ("token_ttl", token_ttl),
            ("refresh_token_ttl", refresh_token_ttl),
        ):
            if not math.isfinite(ttl) or ttl <= 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        self.base_url = None if base_url is None else normalize_url(base_url, "base_url")
        self.issuer = None if issuer is None else normalize_url(issuer, "issuer")
        self._clock = clock
        self._offset = 0.0
        self.transaction_ttl = float(transaction_ttl)
        self.token_ttl = float(token_ttl)
        self.refresh_token_ttl = float(refresh_token_ttl)
        self.client_id = client_id
        self.client_secret = client_secret
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.redirect_uris: list[str] = []
        for uri in [redirect_uris] if isinstance(redirect_uris, str) else redirect_uris:
            self.register_redirect_uri(uri)
        self.allow_loopback_redirect_uris = bool(allow_loopback_redirect_uris)
        self.users: dict[str, bool] = {}
        self.tokens = TokenBook()
        self.transactions = TransactionBook(self.now, first_transaction_id)
        self.signing_key = SigningKey()
        self.grants = GrantBook(self.now)

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("advance() takes a finite, non-negative number of seconds")
        self._offset += seconds

    # ------------------------------------------------------------------ addresses

    def bind(self, server_url: str) -> None:
        """Move base_url and issuer to ``server_url``'s origin, keeping their paths."""
        base_path, issuer_path = self.route_paths()
        if self.issuer is not None:
            self.issuer = normalize_url(server_url + issuer_path, "issuer")
        self.base_url = normalize_url(server_url + base_path, "base_url")

    def route_paths(self) -> tuple[str, str]:
        """The base path and issuer path requests are routed by (the fake ignores hosts)."""
        base_path = "" if self.base_url is None else urlsplit(self.base_url).path
        if self.issuer is not None:
            issuer_path = urlsplit(self.issuer).path
        else:
            issuer_path = base_path + REALM_PATH
        return base_path, issuer_path

    def current_issuer(self) -> str:
        """The issuer tokens name: the explicit one, else derived from ``base_url``."""
        if self.issuer is not None:
            return self.issuer
        if self.base_url is not None:
            return self.base_url + REALM_PATH
        return REALM_PATH  # not served yet: there is no address to name

    # ------------------------------------------------------------------ client

    def register_redirect_uri(self, uri: str) -> None:
        checked = checked_redirect_uri(uri)
        if checked not in self.redirect_uris:
            self.redirect_uris.append(checked)

    # ------------------------------------------------------------------ tokens

    def mint(
        self,
        kind: str,
        subject: str,
        scopes: tuple[str, ...],
        ttl: float,
        *,
        auth_time: float | None = None,
        grant: str | None = None,
    ) -> str:
        """A new token for ``subject``, issued under the fake's current issuer.

        ``auth_time`` (when the user signed in) defaults to now; ``grant`` names the
        authorization code the token descends from.
        """
        now = self.now()
        return self.tokens.mint(
            kind,
            subject,
            scopes,
            now=now,
            ttl=ttl,
            issuer=self.current_issuer(),
            client_id=self.client_id,
            auth_time=now if auth_time is None else auth_time,
            grant=grant,
        )
