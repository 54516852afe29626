""":class:`FakeHyperID`, the in-memory HyperID's public face.

Everything HyperID would decide sits behind it, one module per concern:
:mod:`.state` (clock, addresses, client, accounts) with :mod:`.tokens`,
:mod:`.transactions`, :mod:`.grants` and :mod:`.signing`; the calls in :mod:`.mfa` and
:mod:`.oidc`; the OpenID provider's sign-in in :mod:`.provider` and :mod:`.signin`;
:mod:`.faults`; the call log in :mod:`.calls`; the ``/_fake/`` endpoints in
:mod:`.control`.
:meth:`FakeHyperID.handle` turns one HTTP request (method, path, headers, body) into a
:class:`FakeResponse` (see :mod:`.routing`); the two transports,
:meth:`FakeHyperID.mock` (the ``responses`` library, :mod:`.mock_transport`) and
:meth:`FakeHyperID.serve` (a real HTTP server, :mod:`.http_server`), only carry bytes.

This module must stay importable without Django: integrators use it in any test
suite, and the demo runs it as a separate process.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..constants import PRODUCTION_API_BASE_URL, TOKEN_ENDPOINT_PATH, CompleteResult, Status
from .calls import CALLS, CallLog, RecordedCall
from .faults import FAULTS, Fault, FaultQueue

# Re-exported: server.py imported it from here before the server moved to http_server.
from .http_server import MAX_BODY_BYTES as MAX_BODY_BYTES
from .http_server import FakeHyperIDServer
from .mock_transport import intercept_requests
from .provider import DISCOVERY_PATH
from .responses import FakeResponse, Handler
from .routing import Router
from .state import REALM_PATH, HyperIDState, normalize_url
from .tokens import TokenPair
from .transactions import FakeTransaction

if TYPE_CHECKING:
    import ssl

    import responses

__all__ = [
    "CALLS",
    "FAULTS",
    "FakeHyperID",
    "FakeResponse",
    "FakeTransaction",
    "RecordedCall",
    "TokenPair",
]

#: How many calls ``FakeHyperID.calls`` keeps (the oldest are dropped; counts stay exact).
MAX_RECORDED_CALLS = 100_000


class FakeHyperID:
    """An in-memory HyperID: accounts, OAuth tokens, MFA transactions, faults.

    Drive it from a test as the user's phone would (:meth:`approve`, :meth:`deny`,
    :meth:`decline`, :meth:`expire`), bend time with :meth:`advance`, make it
    misbehave with :meth:`inject`, and read what the app sent from :attr:`calls`.
    Reach it through :meth:`mock` (``requests`` calls intercepted in-process) or
    :meth:`serve` (a real HTTP server on loopback).

    It is also an OpenID provider at :attr:`issuer` (discovery at
    :attr:`discovery_url`), so that a site signs its users in with allauth's or
    mozilla-django-oidc's code flow: one client (``client_id``/``client_secret``),
    whose redirect URIs are ``redirect_uris`` (see :meth:`register_redirect_uri`)
    and, unless ``allow_loopback_redirect_uris`` is false, any loopback URI.

    ``base_url=None`` creates a fake without an address; :meth:`serve` gives it the
    server's. ``serve()`` always moves ``base_url`` and ``issuer`` to the server's
    scheme, host and port (keeping their paths), so :meth:`settings` points at the
    server; assign ``base_url``/``issuer`` afterwards to advertise another address
    (a container hostname, a proxy).

    Every method is thread-safe: one lock guards all state.
    """

    def __init__(
        self,
        base_url: str | None = PRODUCTION_API_BASE_URL,
        *,
        issuer: str | None = None,
        clock: Callable[[], float] = time.time,
        transaction_ttl: float = 300,
        token_ttl: float = 3600,
        refresh_token_ttl: float = 86400,
        client_id: str = "fake-client",
        client_secret: str = "fake-secret",  # noqa: S107 - the fake's own, public
        rotate_refresh_tokens: bool = True,
        first_transaction_id: int = 1,
        redirect_uris: Iterable[str] = (),
        allow_loopback_redirect_uris: bool = True,
        seed: int | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._state = HyperIDState(
            base_url=base_url,
            issuer=issuer,
            clock=clock,
            transaction_ttl=transaction_ttl,
            token_ttl=token_ttl,
            refresh_token_ttl=refresh_token_ttl,
            client_id=client_id,
            client_secret=client_secret,
            rotate_refresh_tokens=rotate_refresh_tokens,
            first_transaction_id=first_transaction_id,
            redirect_uris=redirect_uris,
            allow_loopback_redirect_uris=allow_loopback_redirect_uris,
        )
        # Draws which calls a fault with a share meets: a seed replays them.
        self._faults = FaultQueue(random.Random(seed))  # noqa: S311 - not a secret
        self._calls = CallLog(MAX_RECORDED_CALLS)
        self._router = Router(self._state, self._faults, self._calls)

    def __repr__(self) -> str:
        return f"<FakeHyperID base_url={self._state.base_url!r}>"

    # ------------------------------------------------------------------ configuration
    # Plain attributes to callers; HyperIDState keeps them, as the calls read them there.

    @property
    def transaction_ttl(self) -> float:
        return self._state.transaction_ttl

    @transaction_ttl.setter
    def transaction_ttl(self, seconds: float) -> None:
        self._state.transaction_ttl = seconds

    @property
    def token_ttl(self) -> float:
        return self._state.token_ttl

    @token_ttl.setter
    def token_ttl(self, seconds: float) -> None:
        self._state.token_ttl = seconds

    @property
    def refresh_token_ttl(self) -> float:
        return self._state.refresh_token_ttl

    @refresh_token_ttl.setter
    def refresh_token_ttl(self, seconds: float) -> None:
        self._state.refresh_token_ttl = seconds

    @property
    def client_id(self) -> str:
        return self._state.client_id

    @client_id.setter
    def client_id(self, value: str) -> None:
        self._state.client_id = value

    @property
    def client_secret(self) -> str:
        return self._state.client_secret

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        self._state.client_secret = value

    @property
    def rotate_refresh_tokens(self) -> bool:
        return self._state.rotate_refresh_tokens

    @rotate_refresh_tokens.setter
    def rotate_refresh_tokens(self, value: bool) -> None:
        self._state.rotate_refresh_tokens = value

    @property
    def allow_loopback_redirect_uris(self) -> bool:
        return self._state.allow_loopback_redirect_uris

    @allow_loopback_redirect_uris.setter
    def allow_loopback_redirect_uris(self, value: bool) -> None:
        self._state.allow_loopback_redirect_uris = bool(value)

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        """The client's registered redirect URIs (loopback ones need no registering)."""
        with self._lock:
            return tuple(self._state.redirect_uris)

    def register_redirect_uri(self, uri: str) -> None:
        """Let the client be sent back to ``uri`` (matched exactly); ``ValueError`` if invalid."""
        with self._lock:
            self._state.register_redirect_uri(uri)

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        """The REST base URL the app should call (``HYPERID_MFA["API_BASE_URL"]``)."""
        with self._lock:
            if self._state.base_url is None:
                raise RuntimeError(
                    "FakeHyperID(base_url=None) has no address until serve() binds one"
                )
            return self._state.base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        with self._lock:
            self._state.base_url = normalize_url(value, "base_url")

    @property
    def issuer(self) -> str:
        """The OIDC issuer; defaults to ``base_url + "/auth/realms/HyperID"``."""
        with self._lock:
            if self._state.issuer is not None:
                return self._state.issuer
            return self.base_url + REALM_PATH

    @issuer.setter
    def issuer(self, value: str | None) -> None:
        """Set an explicit issuer, or ``None`` to derive it from ``base_url`` again."""
        with self._lock:
            self._state.issuer = None if value is None else normalize_url(value, "issuer")

    @property
    def token_url(self) -> str:
        return self.issuer + TOKEN_ENDPOINT_PATH

    @property
    def discovery_url(self) -> str:
        """``<issuer>/.well-known/openid-configuration``: where an OIDC client starts."""
        return self.issuer + DISCOVERY_PATH

    def settings(self) -> dict[str, Any]:
        """The ``HYPERID_MFA`` entries an app needs to talk to this fake.

        ``settings.HYPERID_MFA = {**fake.settings(), "TOKEN_PROVIDER": ...}``
        """
        with self._lock:
            return {
                "API_BASE_URL": self.base_url,
                "ISSUER": self.issuer,
                "CLIENT_ID": self.client_id,
                "CLIENT_SECRET": self.client_secret,
            }

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The fake's clock: ``clock()`` plus everything :meth:`advance` added."""
        with self._lock:
            return self._state.now()

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward; tokens and transactions expire by it."""
        with self._lock:
            self._state.advance(seconds)

    # ------------------------------------------------------------------ accounts

    def add_user(self, subject: str | None = None, *, has_device: bool = True) -> str:
        """Make sure a HyperID account exists with this device state; return its subject.

        A new random subject (a UUID, as HyperID uses) is made when ``subject`` is None.
        """
        if subject is None:
            subject = str(uuid.uuid4())
        if not isinstance(subject, str) or not subject:
            raise ValueError("subject must be a non-empty string")
        with self._lock:
            self._state.users[subject] = bool(has_device)
        return subject

    def users(self) -> dict[str, bool]:
        """Every account, oldest first: subject -> whether it has an authenticator device."""
        with self._lock:
            return dict(self._state.users)

    def set_device(self, subject: str, has_device: bool) -> None:
        """Give the user an authenticator device (pushes work) or take it away (-7)."""
        with self._lock:
            if subject not in self._state.users:
                raise KeyError(f"FakeHyperID knows no user {subject!r}")
            self._state.users[subject] = bool(has_device)

    def issue_tokens(
        self,
        subject: str,
        *,
        scopes: Iterable[str] = ("openid", "email", "mfa-client"),
        expires_in: float | None = None,
    ) -> TokenPair:
        """Sign the user in: an access token and a refresh token, as after HyperID's login.

        Unknown subjects are added (with a device). ``expires_in`` overrides
        ``token_ttl`` for the access token; zero or negative gives an already
        expired one. Leave ``"mfa-client"`` out of ``scopes`` to get -3 answers.
        """
        scope_tuple = tuple(scopes.split()) if isinstance(scopes, str) else tuple(scopes)
        ttl = self.token_ttl if expires_in is None else float(expires_in)
        with self._lock:
            if subject not in self._state.users:
                self.add_user(subject)
            access = self._state.mint("access", subject, scope_tuple, ttl)
            refresh = self._state.mint(
                "refresh", subject, scope_tuple, self._state.refresh_token_ttl
            )
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl)

    def expire_access_token(self, access_token: str) -> None:
        """Make this access token expired: its next use answers -4."""
        with self._lock:
            record = self._state.tokens.verify(access_token, "access")
            if record is None:
                raise ValueError("not an access token issued by this FakeHyperID")
            # -inf rather than now(): a clock that steps back must not revive it.
            record.expires_at = -math.inf

    def expire_access_tokens(self, subject: str) -> int:
        """Make every access token of the user expired (-4); return how many still worked.

        What a test needs when it does not hold the token, e.g. after a sign-in in a
        browser: the app's next push refreshes it with its refresh token.
        """
        with self._lock:
            return self._state.tokens.expire_access(subject, self._state.now())

    def revoke_tokens(self, subject: str) -> None:
        """Revoke every token the user holds: access tokens answer -5, refreshes fail.

        Tokens issued afterwards work again (as after a new sign-in).
        """
        with self._lock:
            self._state.tokens.revoke(subject)

    def subject_of(self, access_token: str) -> str | None:
        """The subject of an access token this fake issued (expired or not), else None."""
        with self._lock:
            record = self._state.tokens.verify(access_token, "access")
            return None if record is None else record.subject

    # ------------------------------------------------------------------ authenticator side

    def pending(self, subject: str | None = None) -> list[FakeTransaction]:
        """Pending transactions (of one user, or all), oldest first."""
        with self._lock:
            return [txn for txn in self._state.transactions.listing(subject) if txn.is_pending]

    def transactions(self, subject: str | None = None) -> list[FakeTransaction]:
        """Every transaction the fake knows (of one user, or all), oldest first."""
        with self._lock:
            return self._state.transactions.listing(subject)

    def transaction(self, transaction_id: int) -> FakeTransaction:
        """The transaction's current state; ``KeyError`` if the fake does not know it."""
        with self._lock:
            return self._state.transactions.current(transaction_id)

    def approve(self, transaction_id: int) -> FakeTransaction:
        """The user taps "approve": pending -> completed/approved. ``ValueError`` if not pending."""
        return self._answer(transaction_id, Status.COMPLETED, CompleteResult.APPROVED)

    def deny(self, transaction_id: int) -> FakeTransaction:
        """The user taps "deny": pending -> completed/denied."""
        return self._answer(transaction_id, Status.COMPLETED, CompleteResult.DENIED)

    def decline(self, transaction_id: int) -> FakeTransaction:
        """The user dismisses the request: pending -> canceled (status 4)."""
        return self._answer(transaction_id, Status.CANCELED, None)

    def expire(self, transaction_id: int) -> FakeTransaction:
        """Nobody answered in time: pending -> expired (status 2), whatever the clock says."""
        return self._answer(transaction_id, Status.EXPIRED, None)

    def forget(self, transaction_id: int) -> None:
        """HyperID loses the transaction: every call about it answers -6 from now on."""
        with self._lock:
            self._state.transactions.forget(transaction_id)

    def _answer(
        self, transaction_id: int, status: Status, complete_result: CompleteResult | None
    ) -> FakeTransaction:
        with self._lock:
            return self._state.transactions.answer(transaction_id, status, complete_result)

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        fault: str,
        *,
        call: str | None = None,
        times: int | None = 1,
        share: float = 1.0,
        **params: Any,
    ) -> None:
        """Make the next ``times`` matching calls misbehave.

        ``call`` limits the fault to one call name (see ``CALLS``); ``None`` matches any
        call the fault can apply to. ``times=None`` or ``times=0`` means forever (until
        :meth:`clear_faults`). ``share`` below 1 makes the fault meet each matching
        call with that probability, drawn from a generator seeded with the fake's
        ``seed``. Faults queue in injection order; one call gets at most one.

        Faults answered *instead of* the call (HyperID never processes it):
        ``http_500``, ``http_502``, ``http_503`` and ``http_429`` (``retry_after`` adds a
        Retry-After header), ``connection_error`` (no answer at all), ``html`` (a 200
        HTML page), ``result`` (``{"result": result}``, the four MFA calls only).

        Faults applied *after* the call was processed (its effect happened):
        ``timeout`` (mock: ``requests`` raises ReadTimeout; server: answers after
        ``seconds``, default 30), ``delay`` (answers after ``seconds``; the mock raises
        ReadTimeout when that exceeds the request's read timeout), ``malformed_json``,
        ``truncated_json``, and the field faults, which wait for a success answer
        carrying their field: ``wrong_transaction_id`` (status-get and start),
        ``status`` / ``complete_result`` (status-get, forced to ``value``),
        ``missing_field`` (``field`` removed), ``id_token_signature`` (token
        endpoint: the ID token keeps its header and claims, but its RS256 signature no
        longer matches them, as if it had been tampered with on the way) and
        ``id_token_claims`` (token endpoint: the ID token's claims changed by
        ``claims``, a dict in which None leaves a claim out, and signed with the fake's
        own key: ``claims={"aud": "another-client"}`` is an ID token HyperID issued to
        another client).
        """
        checked = Fault.checked(fault, call, times, params, share)
        with self._lock:
            self._faults.add(checked)

    def faults(self) -> list[dict[str, Any]]:
        """The faults still waiting, in order, each as :meth:`inject` takes it
        (``times``: the calls it has left, None for forever)."""
        with self._lock:
            return [fault.describe() for fault in self._faults.waiting()]

    def clear_faults(self) -> None:
        """Forget every fault still waiting."""
        with self._lock:
            self._faults.clear()

    # ------------------------------------------------------------------ observation

    @property
    def calls(self) -> list[RecordedCall]:
        """The HyperID calls received so far, oldest first (a copy): the last
        ``MAX_RECORDED_CALLS`` of them."""
        with self._lock:
            return self._calls.records()

    def call_count(self, name: str | None = None) -> int:
        """How many calls (of one name, or all) the fake received."""
        with self._lock:
            return self._calls.count(name)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # ------------------------------------------------------------------ requests

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> FakeResponse:
        """Answer one HTTP request as HyperID would. Transports call this; so may tests.

        ``path`` is the request target (path and query, no host: the fake routes by
        path alone). Also answers the ``/_fake/`` control endpoints (see :mod:`.control`).
        """
        with self._lock:
            return self._router.handle(self, method, path, headers, body)

    # ------------------------------------------------------------------ transports

    @contextlib.contextmanager
    def mock(self, rsps: responses.RequestsMock | None = None) -> Iterator[FakeHyperID]:
        """Answer ``requests`` calls to ``base_url`` and the issuer in-process.

        Uses the ``responses`` library: a new ``RequestsMock`` (so any other URL
        raises ``ConnectionError``) unless ``rsps``, an already started one, is
        given; then its own rules and passthrough settings decide about other URLs,
        and the fake's rules are removed again on exit::

            with fake.mock():
                requests.post(fake.base_url + "/mfa-client/availability-check", ...)
        """
        with intercept_requests(self.handle, self.base_url, self.issuer, rsps):
            yield self

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        handler: Handler | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> FakeHyperIDServer[FakeHyperID]:
        """Serve this fake over real HTTP on a background thread; return the running server.

        The fake's ``base_url`` and ``issuer`` move to the server's address (paths
        kept), so ``fake.settings()`` is ready for the app. Stop it with ``.stop()``
        or use it as a context manager::

            fake = FakeHyperID(base_url=None)
            with fake.serve() as server:
                settings.HYPERID_MFA = fake.settings()  # API_BASE_URL == server.url

        ``handler`` answers the requests instead of :meth:`handle`, e.g.
        ``Authenticator(fake).handle`` to add the authenticator pages.
        ``ssl_context``, a server-side ``ssl.SSLContext`` with a certificate loaded
        (``trustme`` makes throwaway ones), serves HTTPS: ``base_url`` then starts
        with ``https://`` and the app's client must trust the certificate's CA.
        """
        server = FakeHyperIDServer(
            self, host, port, latency=latency, handler=handler, ssl_context=ssl_context
        )
        with self._lock:
            self._state.bind(server.url)
        return server
