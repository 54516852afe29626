"""The transport-independent core of :class:`FakeHyperID`.

Everything HyperID would decide lives here: accounts, tokens, transactions, result
codes, expiry and injected faults. :meth:`FakeHyperID.handle` turns one HTTP request
(method, path, headers, body) into a :class:`FakeResponse`; the two transports,
:meth:`FakeHyperID.mock` (the ``responses`` library) and
:meth:`FakeHyperID.serve` (a real HTTP server, see :mod:`.server`), only carry bytes.

This module must stay importable without Django: integrators use it in any test
suite, and the demo runs it as a separate process.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, unquote_plus, urlsplit, urlunsplit

from ..constants import (
    AVAILABILITY_PATH,
    CANCEL_PATH,
    DEFAULT_TEMPLATE_ID,
    MFA_SCOPE,
    PRODUCTION_API_BASE_URL,
    START_PATH,
    STATUS_GET_PATH,
    TOKEN_ENDPOINT_PATH,
    TRANSACTION_ID_MAX,
    TRANSACTION_ID_MIN,
    CompleteResult,
    Result,
    Status,
)

if TYPE_CHECKING:
    import ssl

    import responses
    from requests import PreparedRequest

    from .server import FakeHyperIDServer, Handler

__all__ = [
    "CALLS",
    "FAULTS",
    "FakeHyperID",
    "FakeResponse",
    "FakeTransaction",
    "RecordedCall",
    "TokenPair",
]

#: Names of the calls the fake answers, as used in ``calls``, ``call_count`` and ``inject``.
CALL_STATUS_GET = "status-get"
CALL_START = "start"
CALL_CANCEL = "cancel"
CALL_AVAILABILITY = "availability"
CALL_TOKEN = "token"  # noqa: S105 - a call name, not a credential
CALLS: tuple[str, ...] = (CALL_STATUS_GET, CALL_START, CALL_CANCEL, CALL_AVAILABILITY, CALL_TOKEN)

#: Where HyperID's realm sits below its login host; the default issuer hangs it below base_url.
REALM_PATH = "/auth/realms/HyperID"

#: Longest request body the fake reads; HyperID's bodies are a few hundred bytes.
MAX_BODY_BYTES = 1024 * 1024
#: How many calls ``FakeHyperID.calls`` keeps (the oldest are dropped; counts stay exact).
MAX_RECORDED_CALLS = 100_000

_MFA_PATHS = {
    STATUS_GET_PATH: CALL_STATUS_GET,
    START_PATH: CALL_START,
    CANCEL_PATH: CALL_CANCEL,
    AVAILABILITY_PATH: CALL_AVAILABILITY,
}
_CONTROL_PREFIX = "/_fake/"
_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
_B64URL = re.compile(r"[A-Za-z0-9_-]+\Z")
_CONTROL_ACTION = re.compile(
    r"/_fake/transactions/(\d{1,19})/(approve|deny|decline|expire|forget)\Z"
)
_STATES = frozenset({"pending", "approved", "denied", "expired", "canceled"})


# --------------------------------------------------------------------------- values


@dataclasses.dataclass(frozen=True)
class FakeTransaction:
    """A snapshot of one MFA transaction as HyperID holds it.

    Snapshots do not change: ask :meth:`FakeHyperID.transaction` again to see a
    later state. ``complete_result`` is ``None`` unless ``status`` is COMPLETED.
    Times are seconds on the fake's clock (see :meth:`FakeHyperID.now`).
    """

    transaction_id: int
    subject: str
    question: str
    code: str
    template_id: int
    status: Status
    complete_result: CompleteResult | None
    created_at: float
    expires_at: float

    @property
    def is_pending(self) -> bool:
        return self.status == Status.PENDING

    @property
    def is_approved(self) -> bool:
        return self.status == Status.COMPLETED and self.complete_result == CompleteResult.APPROVED

    @property
    def is_denied(self) -> bool:
        return self.status == Status.COMPLETED and self.complete_result == CompleteResult.DENIED

    @property
    def state(self) -> str:
        """One word for people and the control API: pending, approved, denied, expired, canceled."""
        if self.status == Status.COMPLETED:
            return "approved" if self.is_approved else "denied"
        return self.status.name.lower()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the ``/_fake/transactions`` control endpoint returns it."""
        return {
            "transaction_id": self.transaction_id,
            "subject": self.subject,
            "question": self.question,
            "code": self.code,
            "template_id": self.template_id,
            "status": int(self.status),
            "complete_result": None if self.complete_result is None else int(self.complete_result),
            "state": self.state,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }


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


class RecordedCall(NamedTuple):
    """One HyperID call the fake received (control endpoints are not recorded).

    ``transaction_id`` is the id asked about (status-get, cancel) or created (start).
    ``subject`` is the token's owner whenever the token was one the fake issued,
    even an expired or revoked one. ``http_status`` and ``result`` describe the answer
    the fake produced (``None`` where it produced none, e.g. ``connection_error``;
    ``result`` is ``None`` for the token endpoint). ``fault`` names the injected fault
    that shaped the answer, if any.
    """

    name: str
    transaction_id: int | None
    subject: str | None
    http_status: int | None
    result: int | None
    fault: str | None


@dataclasses.dataclass
class FakeResponse:
    """What :meth:`FakeHyperID.handle` answers; the transports carry it out.

    ``delay``: seconds to wait before answering. ``disconnect``: close the connection
    without an answer (``status`` is then 0). ``exception``: the failure the client
    should observe, ``"timeout"`` or ``"connection_error"``; the mock raises the
    matching ``requests`` exception, the server sleeps ``delay`` or disconnects.
    """

    status: int
    headers: dict[str, str]
    body: bytes = dataclasses.field(repr=False)
    delay: float = 0
    disconnect: bool = False
    exception: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


# --------------------------------------------------------------------------- faults


@dataclasses.dataclass(frozen=True)
class _FaultSpec:
    #: Answered in place of the call (the call is not processed) rather than after it.
    instead: bool
    params: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    #: Calls the fault can apply to; None: any.
    calls: frozenset[str] | None = None
    #: The answer field the fault needs in a success answer; "*" means params["field"].
    field: str | None = None


_FAULT_SPECS: dict[str, _FaultSpec] = {
    "http_500": _FaultSpec(instead=True),
    "http_502": _FaultSpec(instead=True),
    "http_503": _FaultSpec(instead=True, params=frozenset({"retry_after"})),
    "http_429": _FaultSpec(instead=True, params=frozenset({"retry_after"})),
    "connection_error": _FaultSpec(instead=True),
    "html": _FaultSpec(instead=True),
    "result": _FaultSpec(
        instead=True, params=frozenset({"result"}), required=frozenset({"result"})
    ),
    "timeout": _FaultSpec(instead=False, params=frozenset({"seconds"})),
    "delay": _FaultSpec(
        instead=False, params=frozenset({"seconds"}), required=frozenset({"seconds"})
    ),
    "malformed_json": _FaultSpec(instead=False),
    "truncated_json": _FaultSpec(instead=False),
    "wrong_transaction_id": _FaultSpec(
        instead=False, calls=frozenset({CALL_STATUS_GET, CALL_START}), field="transaction_id"
    ),
    "status": _FaultSpec(
        instead=False,
        params=frozenset({"value"}),
        required=frozenset({"value"}),
        calls=frozenset({CALL_STATUS_GET}),
        field="transaction_status",
    ),
    "complete_result": _FaultSpec(
        instead=False,
        params=frozenset({"value"}),
        required=frozenset({"value"}),
        calls=frozenset({CALL_STATUS_GET}),
        field="transaction_complete_result",
    ),
    "missing_field": _FaultSpec(
        instead=False, params=frozenset({"field"}), required=frozenset({"field"}), field="*"
    ),
}

#: The fault names :meth:`FakeHyperID.inject` accepts.
FAULTS: frozenset[str] = frozenset(_FAULT_SPECS)

_DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclasses.dataclass
class _Fault:
    kind: str
    call: str | None
    remaining: int | None  # None: forever
    params: dict[str, Any]

    @property
    def spec(self) -> _FaultSpec:
        return _FAULT_SPECS[self.kind]

    def matches(self, call: str) -> bool:
        if self.call is not None and self.call != call:
            return False
        allowed = self.spec.calls
        return allowed is None or call in allowed

    def field(self) -> str | None:
        field = self.spec.field
        return str(self.params["field"]) if field == "*" else field


# --------------------------------------------------------------------------- internals


@dataclasses.dataclass
class _TokenRecord:
    kind: str  # "access" or "refresh"
    subject: str
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False
    used: bool = False


@dataclasses.dataclass
class _Answer:
    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    subject: str | None = None
    transaction_id: int | None = None

    @property
    def is_success(self) -> bool:
        if self.status != 200:
            return False
        return "result" not in self.payload or self.payload["result"] == Result.SUCCESS


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser would accept them.
    raise ValueError(f"{name} is not JSON")


def _loads(text: str | bytes) -> Any:
    """Parse strict JSON; raise ValueError on anything else."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, RecursionError) as err:
        raise ValueError(str(err)) from err


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_transaction_id(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if TRANSACTION_ID_MIN <= value <= TRANSACTION_ID_MAX else None


def _is_code(value: object) -> bool:
    # str.isdigit() would let "²" or Arabic-Indic digits through.
    return isinstance(value, str) and len(value) == 2 and all(c in "0123456789" for c in value)


def _question_of(values: str) -> str | None:
    """The action_info of a start/v2 ``values`` document, or None when it is malformed."""
    try:
        document = _loads(values)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    version = document.get("version")
    action = document.get("action")
    if not _is_int(version) or version != 1 or not isinstance(action, dict):
        return None
    info = action.get("action_info")
    if action.get("type") != "question" or not isinstance(info, str):
        return None
    return info


def _number(value: float) -> float | int:
    """Whole seconds as an int in JSON answers, as OIDC servers send them."""
    return int(value) if float(value).is_integer() else value


def _normalize_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"{what} must be an absolute http(s) URL without query or fragment, got {url!r}"
        )
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> FakeResponse:
    merged = {"Content-Type": _JSON}
    if headers:
        merged.update(headers)
    return FakeResponse(status=status, headers=merged, body=_canonical_json(payload))


def _html_response(
    status: int, title: str, headers: Mapping[str, str] | None = None
) -> FakeResponse:
    page = (
        f"<!DOCTYPE html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1></body></html>"
    )
    merged = {"Content-Type": _HTML}
    if headers:
        merged.update(headers)
    return FakeResponse(status=status, headers=merged, body=page.encode("utf-8"))


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- the fake


class FakeHyperID:
    """An in-memory HyperID: accounts, OAuth tokens, MFA transactions, faults.

    Drive it from a test as the user's phone would (:meth:`approve`, :meth:`deny`,
    :meth:`decline`, :meth:`expire`), bend time with :meth:`advance`, make it
    misbehave with :meth:`inject`, and read what the app sent from :attr:`calls`.
    Reach it through :meth:`mock` (``requests`` calls intercepted in-process) or
    :meth:`serve` (a real HTTP server on loopback).

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
    ) -> None:
        if _valid_transaction_id(first_transaction_id) is None:
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
        self._lock = threading.RLock()
        self._base_url = None if base_url is None else _normalize_url(base_url, "base_url")
        self._issuer = None if issuer is None else _normalize_url(issuer, "issuer")
        self._clock = clock
        self._offset = 0.0
        self.transaction_ttl = float(transaction_ttl)
        self.token_ttl = float(token_ttl)
        self.refresh_token_ttl = float(refresh_token_ttl)
        self.client_id = client_id
        self.client_secret = client_secret
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self._next_transaction_id = first_transaction_id
        self._secret = secrets.token_bytes(32)
        self._kid = secrets.token_hex(8)
        self._users: dict[str, bool] = {}
        self._tokens: dict[str, _TokenRecord] = {}
        self._transactions: dict[int, FakeTransaction] = {}
        self._faults: list[_Fault] = []
        # Bounded, so a long-running simulator does not grow without end; the counts
        # stay exact however many records were dropped.
        self._calls: collections.deque[RecordedCall] = collections.deque(maxlen=MAX_RECORDED_CALLS)
        self._call_counts: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"<FakeHyperID base_url={self._base_url!r}>"

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        """The REST base URL the app should call (``HYPERID_MFA["API_BASE_URL"]``)."""
        with self._lock:
            if self._base_url is None:
                raise RuntimeError(
                    "FakeHyperID(base_url=None) has no address until serve() binds one"
                )
            return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        with self._lock:
            self._base_url = _normalize_url(value, "base_url")

    @property
    def issuer(self) -> str:
        """The OIDC issuer; defaults to ``base_url + "/auth/realms/HyperID"``."""
        with self._lock:
            if self._issuer is not None:
                return self._issuer
            return self.base_url + REALM_PATH

    @issuer.setter
    def issuer(self, value: str | None) -> None:
        """Set an explicit issuer, or ``None`` to derive it from ``base_url`` again."""
        with self._lock:
            self._issuer = None if value is None else _normalize_url(value, "issuer")

    @property
    def token_url(self) -> str:
        return self.issuer + TOKEN_ENDPOINT_PATH

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

    def _bind(self, server_url: str) -> None:
        """Move base_url and issuer to ``server_url``'s origin, keeping their paths."""
        with self._lock:
            base_path, issuer_path = self._route_paths()
            if self._issuer is not None:
                self._issuer = _normalize_url(server_url + issuer_path, "issuer")
            self._base_url = _normalize_url(server_url + base_path, "base_url")

    def _route_paths(self) -> tuple[str, str]:
        """The base path and issuer path requests are routed by (the fake ignores hosts)."""
        base_path = "" if self._base_url is None else urlsplit(self._base_url).path
        if self._issuer is not None:
            issuer_path = urlsplit(self._issuer).path
        else:
            issuer_path = base_path + REALM_PATH
        return base_path, issuer_path

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The fake's clock: ``clock()`` plus everything :meth:`advance` added."""
        with self._lock:
            return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward; tokens and transactions expire by it."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("advance() takes a finite, non-negative number of seconds")
        with self._lock:
            self._offset += seconds

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
            self._users[subject] = bool(has_device)
        return subject

    def users(self) -> dict[str, bool]:
        """Every account, oldest first: subject -> whether it has an authenticator device."""
        with self._lock:
            return dict(self._users)

    def set_device(self, subject: str, has_device: bool) -> None:
        """Give the user an authenticator device (pushes work) or take it away (-7)."""
        with self._lock:
            if subject not in self._users:
                raise KeyError(f"FakeHyperID knows no user {subject!r}")
            self._users[subject] = bool(has_device)

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
            if subject not in self._users:
                self.add_user(subject)
            access = self._mint("access", subject, scope_tuple, ttl)
            refresh = self._mint("refresh", subject, scope_tuple, self.refresh_token_ttl)
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl)

    def expire_access_token(self, access_token: str) -> None:
        """Make this access token expired: its next use answers -4."""
        with self._lock:
            record = self._verify(access_token, "access")
            if record is None:
                raise ValueError("not an access token issued by this FakeHyperID")
            # -inf rather than now(): a clock that steps back must not revive it.
            record.expires_at = -math.inf

    def revoke_tokens(self, subject: str) -> None:
        """Revoke every token the user holds: access tokens answer -5, refreshes fail.

        Tokens issued afterwards work again (as after a new sign-in).
        """
        with self._lock:
            for record in self._tokens.values():
                if record.subject == subject:
                    record.revoked = True

    def subject_of(self, access_token: str) -> str | None:
        """The subject of an access token this fake issued (expired or not), else None."""
        with self._lock:
            record = self._verify(access_token, "access")
            return None if record is None else record.subject

    def _mint(self, kind: str, subject: str, scopes: tuple[str, ...], ttl: float) -> str:
        now = self.now()
        jti = str(uuid.uuid4())
        if self._issuer is not None:
            issuer = self._issuer
        elif self._base_url is not None:
            issuer = self._base_url + REALM_PATH
        else:
            issuer = REALM_PATH  # not served yet: there is no address to name
        claims = {
            "exp": math.floor(now + ttl),
            "iat": math.floor(now),
            "jti": jti,
            "iss": issuer,
            "sub": subject,
            "typ": "Bearer" if kind == "access" else "Refresh",
            "azp": self.client_id,
            "scope": " ".join(scopes),
        }
        header = {"alg": "HS256", "typ": "JWT", "kid": self._kid}
        signing_input = (
            _b64url_encode(_canonical_json(header)) + "." + _b64url_encode(_canonical_json(claims))
        )
        signature = hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        self._tokens[jti] = _TokenRecord(
            kind=kind, subject=subject, scopes=scopes, expires_at=now + ttl
        )
        return signing_input + "." + _b64url_encode(signature)

    def _verify(self, token: str, kind: str) -> _TokenRecord | None:
        """The record of a token this fake signed, whatever its state; None if forged or unknown."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signature = _b64url_decode(parts[2])
            expected = hmac.new(
                self._secret, (parts[0] + "." + parts[1]).encode("ascii"), hashlib.sha256
            ).digest()
            if not hmac.compare_digest(signature, expected):
                return None
            claims = _loads(_b64url_decode(parts[1]))
        except (ValueError, UnicodeEncodeError):
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("jti"), str):
            return None
        record = self._tokens.get(claims["jti"])
        if record is None or record.kind != kind:
            return None
        return record

    # ------------------------------------------------------------------ authenticator side

    def pending(self, subject: str | None = None) -> list[FakeTransaction]:
        """Pending transactions (of one user, or all), oldest first."""
        with self._lock:
            return [
                txn
                for txn in (self._current(tid) for tid in sorted(self._transactions))
                if txn.is_pending and (subject is None or txn.subject == subject)
            ]

    def transactions(self, subject: str | None = None) -> list[FakeTransaction]:
        """Every transaction the fake knows (of one user, or all), oldest first."""
        with self._lock:
            return [
                txn
                for txn in (self._current(tid) for tid in sorted(self._transactions))
                if subject is None or txn.subject == subject
            ]

    def transaction(self, transaction_id: int) -> FakeTransaction:
        """The transaction's current state; ``KeyError`` if the fake does not know it."""
        with self._lock:
            return self._current(transaction_id)

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
            if transaction_id not in self._transactions:
                raise KeyError(f"FakeHyperID knows no transaction {transaction_id}")
            del self._transactions[transaction_id]

    def _current(self, transaction_id: int) -> FakeTransaction:
        """The transaction, turned expired first if its time ran out; KeyError if unknown."""
        try:
            txn = self._transactions[transaction_id]
        except KeyError:
            raise KeyError(f"FakeHyperID knows no transaction {transaction_id}") from None
        if txn.is_pending and self.now() >= txn.expires_at:
            txn = dataclasses.replace(txn, status=Status.EXPIRED)
            self._transactions[transaction_id] = txn
        return txn

    def _answer(
        self, transaction_id: int, status: Status, complete_result: CompleteResult | None
    ) -> FakeTransaction:
        with self._lock:
            txn = self._current(transaction_id)
            if not txn.is_pending:
                raise ValueError(f"transaction {transaction_id} is not pending (it is {txn.state})")
            txn = dataclasses.replace(txn, status=status, complete_result=complete_result)
            self._transactions[transaction_id] = txn
            return txn

    # ------------------------------------------------------------------ faults

    def inject(
        self, fault: str, *, call: str | None = None, times: int | None = 1, **params: Any
    ) -> None:
        """Make the next ``times`` matching calls misbehave.

        ``call`` limits the fault to one call name (see ``CALLS``); ``None`` matches any
        call the fault can apply to. ``times=None`` or ``times=0`` means forever (until
        :meth:`clear_faults`). Faults queue in injection order; one call gets at most one.

        Faults answered *instead of* the call (HyperID never processes it):
        ``http_500``, ``http_502``, ``http_503`` and ``http_429`` (``retry_after`` adds a
        Retry-After header), ``connection_error`` (no answer at all), ``html`` (a 200
        HTML page), ``result`` (``{"result": result}``).

        Faults applied *after* the call was processed (its effect happened):
        ``timeout`` (mock: ``requests`` raises ReadTimeout; server: answers after
        ``seconds``, default 30), ``delay`` (answers after ``seconds``; the mock raises
        ReadTimeout when that exceeds the request's read timeout), ``malformed_json``,
        ``truncated_json``, and the field faults, which wait for a success answer
        carrying their field: ``wrong_transaction_id`` (status-get and start),
        ``status`` / ``complete_result`` (status-get, forced to ``value``) and
        ``missing_field`` (``field`` removed).
        """
        spec = _FAULT_SPECS.get(fault)
        if spec is None:
            raise ValueError(f"unknown fault {fault!r}; choose from {sorted(FAULTS)}")
        if call is not None and call not in CALLS:
            raise ValueError(f"unknown call {call!r}; choose from {list(CALLS)}")
        if call is not None and spec.calls is not None and call not in spec.calls:
            raise ValueError(
                f"fault {fault!r} never applies to {call!r}; it applies to {sorted(spec.calls)}"
            )
        if times is not None and (not _is_int(times) or times < 0):
            raise ValueError("times must be a non-negative int, or None for forever")
        unknown = set(params) - spec.params
        if unknown:
            raise TypeError(f"fault {fault!r} takes no parameter(s) {sorted(unknown)}")
        missing = spec.required - set(params)
        if missing:
            raise TypeError(f"fault {fault!r} needs parameter(s) {sorted(missing)}")
        for key in ("seconds", "retry_after"):
            value = params.get(key)
            if isinstance(value, bool) or (
                isinstance(value, (int, float)) and not (math.isfinite(value) and value >= 0)
            ):
                raise ValueError(f"{key} must be a non-negative number")
        if "seconds" in params and not isinstance(params["seconds"], (int, float)):
            raise TypeError("seconds must be a number")
        if "retry_after" in params and re.search(r"[\r\n]", str(params["retry_after"])):
            raise ValueError("retry_after must not contain line breaks")
        if "field" in params and not isinstance(params["field"], str):
            raise TypeError("field must be a string")
        for key in ("value", "result"):
            if key in params:
                _canonical_json(params[key])  # must be JSON-serialisable: TypeError if not
        with self._lock:
            self._faults.append(_Fault(fault, call, times or None, dict(params)))

    def clear_faults(self) -> None:
        """Forget every fault still waiting."""
        with self._lock:
            self._faults.clear()

    def _take(self, fault: _Fault) -> None:
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)

    # ------------------------------------------------------------------ observation

    @property
    def calls(self) -> list[RecordedCall]:
        """The HyperID calls received so far, oldest first (a copy): the last
        ``MAX_RECORDED_CALLS`` of them."""
        with self._lock:
            return list(self._calls)

    def call_count(self, name: str | None = None) -> int:
        """How many calls (of one name, or all) the fake received."""
        if name is not None and name not in CALLS:
            raise ValueError(f"unknown call {name!r}; choose from {list(CALLS)}")
        with self._lock:
            if name is None:
                return sum(self._call_counts.values())
            return self._call_counts[name]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()
            self._call_counts.clear()

    # ------------------------------------------------------------------ transports

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> FakeResponse:
        """Answer one HTTP request as HyperID would. Transports call this; so may tests.

        ``path`` is the request target (path and query, no host: the fake routes by
        path alone). Also answers the ``/_fake/`` control endpoints (see :mod:`.server`).
        """
        method = method.upper()
        target = urlsplit(path)
        route = target.path
        lowered = {key.lower(): value for key, value in headers.items()}
        if isinstance(body, str):
            body = body.encode("utf-8")
        with self._lock:
            base_path, issuer_path = self._route_paths()
            if route.startswith(base_path + _CONTROL_PREFIX):
                return self._control(method, route[len(base_path) :], target.query, body)
            name = _MFA_PATHS.get(route[len(base_path) :]) if route.startswith(base_path) else None
            if route == issuer_path + TOKEN_ENDPOINT_PATH:
                name = CALL_TOKEN
            if name is None:
                return _json_response(404, {"error": "not_found"})
            if method != "POST":
                return _json_response(405, {"error": "method_not_allowed"}, {"Allow": "POST"})
            return self._call(name, lowered, body)

    def _call(self, name: str, headers: Mapping[str, str], body: bytes) -> FakeResponse:
        first = next((f for f in self._faults if f.matches(name)), None)
        if first is not None and first.spec.instead:
            self._take(first)
            response = self._fault_instead(first)
            subject, transaction_id = self._peek(name, headers, body)
            result = first.params.get("result") if first.kind == "result" else None
            self._record(
                name,
                transaction_id,
                subject,
                None if response.disconnect else response.status,
                result if _is_int(result) else None,
                first.kind,
            )
            return response

        answer = self._process(name, headers, body)
        fault = next(
            (
                f
                for f in self._faults
                if f.matches(name) and not f.spec.instead and self._applies(f, answer)
            ),
            None,
        )
        if fault is not None:
            self._take(fault)
            response = self._fault_after(fault, answer)
        else:
            response = _json_response(answer.status, answer.payload, answer.headers)
        result = answer.payload.get("result") if name != CALL_TOKEN else None
        self._record(
            name,
            answer.transaction_id,
            answer.subject,
            answer.status,
            result if _is_int(result) else None,
            None if fault is None else fault.kind,
        )
        return response

    def _record(
        self,
        name: str,
        transaction_id: int | None,
        subject: str | None,
        http_status: int | None,
        result: int | None,
        fault: str | None,
    ) -> None:
        self._call_counts[name] += 1
        self._calls.append(
            RecordedCall(
                name,
                transaction_id,
                subject,
                http_status,
                None if result is None else int(result),  # plain ints, not Result members
                fault,
            )
        )

    def _applies(self, fault: _Fault, answer: _Answer) -> bool:
        field = fault.field()
        if field is None:
            return True
        return answer.is_success and field in answer.payload

    def _fault_instead(self, fault: _Fault) -> FakeResponse:
        kind = fault.kind
        retry_after = fault.params.get("retry_after")
        extra = {} if retry_after is None else {"Retry-After": str(retry_after)}
        if kind == "http_500":
            return _html_response(500, "500 Internal Server Error")
        if kind == "http_502":
            return _html_response(502, "502 Bad Gateway")
        if kind == "http_503":
            return _html_response(503, "503 Service Temporarily Unavailable", extra)
        if kind == "http_429":
            return _html_response(429, "429 Too Many Requests", extra)
        if kind == "connection_error":
            return FakeResponse(0, {}, b"", disconnect=True, exception="connection_error")
        if kind == "html":
            return _html_response(200, "HyperID")
        return _json_response(200, {"result": fault.params["result"]})  # "result"

    def _fault_after(self, fault: _Fault, answer: _Answer) -> FakeResponse:
        kind = fault.kind
        payload = dict(answer.payload)
        if kind == "timeout":
            response = _json_response(answer.status, payload, answer.headers)
            response.delay = float(fault.params.get("seconds", _DEFAULT_TIMEOUT_SECONDS))
            response.exception = "timeout"
            return response
        if kind == "delay":
            response = _json_response(answer.status, payload, answer.headers)
            response.delay = float(fault.params["seconds"])
            return response
        if kind == "malformed_json":
            response = _json_response(answer.status, payload, answer.headers)
            response.body = b"{not json"
            return response
        if kind == "truncated_json":
            response = _json_response(answer.status, payload, answer.headers)
            response.body = response.body[: len(response.body) // 2]
            return response
        if kind == "wrong_transaction_id":
            payload["transaction_id"] = int(payload["transaction_id"]) + 1
        elif kind == "status":
            payload["transaction_status"] = fault.params["value"]
        elif kind == "complete_result":
            payload["transaction_complete_result"] = fault.params["value"]
        elif kind == "missing_field":
            del payload[str(fault.params["field"])]
        return _json_response(answer.status, payload, answer.headers)

    def _peek(
        self, name: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str | None, int | None]:
        """Best-effort subject and transaction id of a call that is not processed."""
        subject = None
        if name != CALL_TOKEN:
            record = self._bearer(headers)
            subject = None if record is None else record.subject
        transaction_id = None
        if name in (CALL_STATUS_GET, CALL_CANCEL):
            try:
                data = _loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                transaction_id = _valid_transaction_id(data.get("transaction_id"))
        return subject, transaction_id

    # ------------------------------------------------------------------ the four MFA calls

    def _bearer(self, headers: Mapping[str, str]) -> _TokenRecord | None:
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._verify(token.strip(), "access")

    def _process(self, name: str, headers: Mapping[str, str], body: bytes) -> _Answer:
        if name == CALL_TOKEN:
            return self._token_endpoint(headers, body)
        record = self._bearer(headers)
        if record is None:
            return _Answer(200, {"result": Result.TOKEN_INVALID})
        subject = record.subject
        if record.revoked:
            return _Answer(200, {"result": Result.TOKEN_INVALID}, subject=subject)
        if self.now() >= record.expires_at:
            return _Answer(200, {"result": Result.TOKEN_EXPIRED}, subject=subject)
        if MFA_SCOPE not in record.scopes:
            return _Answer(200, {"result": Result.ACCESS_DENIED}, subject=subject)
        data = self._json_body(body, allow_empty=name == CALL_AVAILABILITY)
        if data is None:
            return _Answer(200, {"result": Result.INVALID_PARAMETERS}, subject=subject)
        if name == CALL_STATUS_GET:
            return self._status_get(subject, data)
        if name == CALL_START:
            return self._start(subject, data)
        if name == CALL_CANCEL:
            return self._cancel(subject, data)
        return _Answer(
            200,
            {"result": Result.SUCCESS, "is_available": self._users.get(subject, False)},
            subject=subject,
        )

    @staticmethod
    def _json_body(body: bytes, *, allow_empty: bool) -> dict[str, Any] | None:
        if allow_empty and not body.strip():
            return {}
        try:
            data = _loads(body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _owned(self, transaction_id: int, subject: str) -> FakeTransaction | None:
        # Another user's transaction answers exactly like a missing one: no existence oracle.
        if transaction_id not in self._transactions:
            return None
        txn = self._current(transaction_id)
        return txn if txn.subject == subject else None

    def _status_get(self, subject: str, data: dict[str, Any]) -> _Answer:
        transaction_id = _valid_transaction_id(data.get("transaction_id"))
        if transaction_id is None:
            return _Answer(200, {"result": Result.INVALID_PARAMETERS}, subject=subject)
        txn = self._owned(transaction_id, subject)
        if txn is None:
            return _Answer(
                200,
                {"result": Result.TRANSACTION_NOT_FOUND},
                subject=subject,
                transaction_id=transaction_id,
            )
        complete = txn.complete_result if txn.status == Status.COMPLETED else None
        payload = {
            "result": Result.SUCCESS,
            "transaction_id": transaction_id,
            "transaction_status": int(txn.status),
            "transaction_complete_result": 0 if complete is None else int(complete),
        }
        return _Answer(200, payload, subject=subject, transaction_id=transaction_id)

    def _start(self, subject: str, data: dict[str, Any]) -> _Answer:
        template_id = data.get("template_id")
        values = data.get("values")
        code = data.get("code")
        question = _question_of(values) if isinstance(values, str) else None
        if not _is_int(template_id) or question is None or not _is_code(code):
            return _Answer(200, {"result": Result.INVALID_PARAMETERS}, subject=subject)
        if template_id != DEFAULT_TEMPLATE_ID:
            return _Answer(200, {"result": Result.TEMPLATE_NOT_FOUND}, subject=subject)
        if not self._users.get(subject, False):
            return _Answer(200, {"result": Result.NO_AUTHENTICATOR_DEVICE}, subject=subject)
        transaction_id = self._next_transaction_id
        if transaction_id > TRANSACTION_ID_MAX:
            return _Answer(200, {"result": Result.SERVICE_UNAVAILABLE}, subject=subject)
        self._next_transaction_id += 1
        now = self.now()
        self._transactions[transaction_id] = FakeTransaction(
            transaction_id=transaction_id,
            subject=subject,
            question=question,
            code=str(code),
            template_id=int(template_id),
            status=Status.PENDING,
            complete_result=None,
            created_at=now,
            expires_at=now + self.transaction_ttl,
        )
        return _Answer(
            200,
            {"result": Result.SUCCESS, "transaction_id": transaction_id},
            subject=subject,
            transaction_id=transaction_id,
        )

    def _cancel(self, subject: str, data: dict[str, Any]) -> _Answer:
        transaction_id = _valid_transaction_id(data.get("transaction_id"))
        if transaction_id is None:
            return _Answer(200, {"result": Result.INVALID_PARAMETERS}, subject=subject)
        txn = self._owned(transaction_id, subject)
        result: int
        if txn is None:
            result = Result.TRANSACTION_NOT_FOUND
        elif txn.status == Status.PENDING:
            self._transactions[transaction_id] = dataclasses.replace(txn, status=Status.CANCELED)
            result = Result.SUCCESS
        elif txn.status == Status.EXPIRED:
            result = Result.TRANSACTION_ALREADY_EXPIRED
        elif txn.status == Status.COMPLETED:
            result = Result.TRANSACTION_ALREADY_COMPLETED
        else:
            result = Result.TRANSACTION_ALREADY_CANCELED
        return _Answer(200, {"result": result}, subject=subject, transaction_id=transaction_id)

    # ------------------------------------------------------------------ the token endpoint

    def _token_endpoint(self, headers: Mapping[str, str], body: bytes) -> _Answer:
        # RFC 6749: token answers must not be cached.
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}

        def error(status: int, code: str, subject: str | None = None) -> _Answer:
            extra = dict(no_store)
            if status == 401 and headers.get("authorization", "").lower().startswith("basic "):
                extra["WWW-Authenticate"] = 'Basic realm="HyperID"'
            return _Answer(status, {"error": code}, headers=extra, subject=subject)

        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return error(400, "invalid_request")
        if any(len(values) > 1 for values in form.values()):
            return error(400, "invalid_request")
        params = {key: values[0] for key, values in form.items()}
        if "grant_type" not in params:
            return error(400, "invalid_request")
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        basic = headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return error(401, "invalid_client")
            raw_id, _, raw_secret = decoded.partition(":")
            basic_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            if client_id is not None and client_id != basic_id:
                return error(401, "invalid_client")
            client_id = basic_id
        if client_id != self.client_id or not hmac.compare_digest(
            (client_secret or "").encode("utf-8"), self.client_secret.encode("utf-8")
        ):
            return error(401, "invalid_client")
        if params["grant_type"] != "refresh_token":
            return error(400, "unsupported_grant_type")
        refresh_token = params.get("refresh_token")
        if not refresh_token:
            return error(400, "invalid_request")
        record = self._verify(refresh_token, "refresh")
        subject = None if record is None else record.subject
        if record is None or record.revoked or record.used or self.now() >= record.expires_at:
            return error(400, "invalid_grant", subject)
        access = self._mint("access", record.subject, record.scopes, self.token_ttl)
        if self.rotate_refresh_tokens:
            record.used = True
            refresh_token = self._mint(
                "refresh", record.subject, record.scopes, self.refresh_token_ttl
            )
            refresh_ttl = self.refresh_token_ttl
        else:
            refresh_ttl = max(0.0, record.expires_at - self.now())
        payload = {
            "access_token": access,
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": _number(self.token_ttl),
            "refresh_expires_in": _number(refresh_ttl),
            "scope": " ".join(record.scopes),
        }
        return _Answer(200, payload, headers=no_store, subject=subject)

    # ------------------------------------------------------------------ control endpoints

    def _control(self, method: str, route: str, query: str, body: bytes) -> FakeResponse:
        try:
            return self._control_inner(method, route, query, body)
        except _ControlError as err:
            return _json_response(err.status, {"error": err.message})

    def _control_inner(self, method: str, route: str, query: str, body: bytes) -> FakeResponse:
        def require(*methods: str) -> None:
            if method not in methods:
                raise _ControlError(405, "method not allowed")

        def json_object() -> dict[str, Any]:
            data = self._json_body(body, allow_empty=True)
            if data is None:
                raise _ControlError(400, "the body must be a JSON object")
            return data

        if route == "/_fake/transactions":
            require("GET")
            params = {key: values[-1] for key, values in parse_qs(query).items()}
            state = params.get("state") or None
            if state is not None and state not in _STATES:
                raise _ControlError(400, f"state must be one of {sorted(_STATES)}")
            txns = self.transactions(params.get("subject") or None)
            return _json_response(
                200, [t.to_dict() for t in txns if state is None or t.state == state]
            )

        action = _CONTROL_ACTION.match(route)
        if action is not None:
            require("POST")
            transaction_id, verb = int(action.group(1)), action.group(2)
            try:
                if verb == "forget":
                    self.forget(transaction_id)
                    return _json_response(
                        200, {"transaction_id": transaction_id, "forgotten": True}
                    )
                transition: Callable[[int], FakeTransaction] = getattr(self, verb)
                return _json_response(200, transition(transaction_id).to_dict())
            except KeyError:
                raise _ControlError(404, f"no transaction {transaction_id}") from None
            except ValueError as err:
                raise _ControlError(409, str(err)) from None

        if route == "/_fake/users":
            require("POST")
            data = json_object()
            subject, has_device = data.get("subject"), data.get("has_device", True)
            scopes = data.get("scopes", ["openid", "email", MFA_SCOPE])
            expires_in = data.get("expires_in")
            if subject is not None and (not isinstance(subject, str) or not subject):
                raise _ControlError(400, "subject must be a non-empty string")
            if not isinstance(has_device, bool):
                raise _ControlError(400, "has_device must be a boolean")
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise _ControlError(400, "scopes must be a list of strings")
            if expires_in is not None and (
                not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool)
            ):
                raise _ControlError(400, "expires_in must be a number")
            subject = self.add_user(subject, has_device=has_device)
            pair = self.issue_tokens(subject, scopes=scopes, expires_in=expires_in)
            return _json_response(
                200,
                {
                    "subject": subject,
                    "access_token": pair.access_token,
                    "refresh_token": pair.refresh_token,
                    "expires_in": _number(pair.expires_in),
                },
                {"Cache-Control": "no-store"},
            )

        if route == "/_fake/calls":
            require("GET")
            with self._lock:
                counts = {name: self._call_counts[name] for name in CALLS}
            return _json_response(200, counts)

        if route == "/_fake/faults":
            require("POST", "DELETE")
            if method == "DELETE":
                self.clear_faults()
                return _json_response(200, {"cleared": True})
            data = json_object()
            fault = data.pop("fault", None)
            call = data.pop("call", None)
            times = data.pop("times", 1)
            if not isinstance(fault, str) or (call is not None and not isinstance(call, str)):
                raise _ControlError(400, "fault (and call, when given) must be strings")
            try:
                self.inject(fault, call=call, times=times, **data)
            except (TypeError, ValueError) as err:
                raise _ControlError(400, str(err)) from None
            return _json_response(200, {"injected": fault})

        if route == "/_fake/advance":
            require("POST")
            seconds = json_object().get("seconds")
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
                raise _ControlError(400, "seconds must be a number")
            try:
                self.advance(seconds)
            except ValueError as err:
                raise _ControlError(400, str(err)) from None
            return _json_response(200, {"now": self.now()})

        raise _ControlError(404, "not found")

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
        import responses as responses_lib

        base_url, issuer = self.base_url, self.issuer
        prefixes = [base_url]
        if not issuer.startswith(base_url + "/"):
            # Overlapping rules would make ``responses`` consume them one by one.
            prefixes.append(issuer)
        patterns = [re.compile(re.escape(prefix) + r"(?:[/?].*)?\Z") for prefix in prefixes]
        owned = rsps is None
        mock = (
            responses_lib.RequestsMock(assert_all_requests_are_fired=False)
            if rsps is None
            else rsps
        )
        added = [
            mock.add_callback(method, pattern, callback=self._responses_callback, content_type=None)
            for pattern in patterns
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
        ]
        try:
            if owned:
                with mock:
                    yield self
            else:
                yield self
        finally:
            if not owned:
                for rule in added:
                    mock.remove(rule)

    def _responses_callback(
        self, request: PreparedRequest
    ) -> Exception | tuple[int, Mapping[str, str], bytes]:
        import requests

        target = urlsplit(request.url or "")
        path = target.path + ("?" + target.query if target.query else "")
        body = request.body
        if body is None:
            body = b""
        elif isinstance(body, str):
            body = body.encode("utf-8")
        response = self.handle(request.method or "GET", path, request.headers, bytes(body))
        if response.exception == "connection_error":
            return requests.exceptions.ConnectionError(
                "FakeHyperID: injected connection error", request=request
            )
        if response.exception == "timeout":
            return requests.exceptions.ReadTimeout(
                "FakeHyperID: injected read timeout", request=request
            )
        if response.delay > 0:
            read_timeout = _read_timeout(getattr(request, "req_kwargs", {}).get("timeout"))
            if read_timeout is not None and response.delay > read_timeout:
                time.sleep(read_timeout)
                return requests.exceptions.ReadTimeout(
                    f"FakeHyperID: answer delayed {response.delay}s, past the read timeout",
                    request=request,
                )
            time.sleep(response.delay)
        return response.status, response.headers, response.body

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        handler: Handler | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> FakeHyperIDServer:
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
        from .server import FakeHyperIDServer

        server = FakeHyperIDServer(
            self, host, port, latency=latency, handler=handler, ssl_context=ssl_context
        )
        self._bind(server.url)
        return server


def _read_timeout(timeout: object) -> float | None:
    """The read part of a ``requests`` timeout (a number or a (connect, read) pair)."""
    if isinstance(timeout, tuple):
        timeout = timeout[1] if len(timeout) > 1 else None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout)
    return None
