"""HTTP client for HyperID's MFA client API. HTTP only: it knows nothing of models.

One pooled ``requests.Session`` per client (created lazily), retries with exponential
back-off and jitter for the idempotent calls only, and strict validation of every
answer: an answer the protocol does not allow raises
:class:`~hyperid_mfa.exceptions.ProtocolError` and is never read as an approval.

Every attempt has a deadline of connect + read seconds (the ``TIMEOUT`` pair added
up), whatever the server does. requests applies its read timeout to each socket read,
so an answer trickled a byte at a time would otherwise hold a call for minutes; here
a watchdog thread shuts the attempt's connection down when its deadline passes, which
ends a read blocked on it at once. An attempt cut short is a timeout.

Tokens and the client secret are held in :class:`~hyperid_mfa.sensitive.Secret` from
the moment a method receives them and revealed only as the request is prepared (in
the ``requests`` auth hooks below), so no frame of this module holds them in clear:
Django's error report and Sentry print every frame's local variables. Failures
travel as values and are raised only from frames that hold nothing secret, detached
from the frames (the library's, holding the headers) where they were caught.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import requests
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from . import __version__, wire
from .adapter import get_adapter
from .conf import mfa_settings, token_endpoint
from .conf import timeout as configured_timeout
from .constants import (
    AVAILABILITY,
    AVAILABILITY_PATH,
    CANCEL,
    CANCEL_PATH,
    START,
    START_PATH,
    STATUS_GET,
    STATUS_GET_PATH,
    TOKEN,
    TRANSACTION_ID_MAX,
    TRANSACTION_ID_MIN,
    CompleteResult,
    Result,
    Status,
    is_approval,
)
from .deadline import Deadline, DeadlineAdapter, deadline, mount_if_stock
from .exceptions import (
    HyperIDError,
    InvalidParameters,
    ProtocolError,
    ServiceUnavailable,
    TokenInvalid,
    TokenUnavailable,
    TransactionAlreadyCanceled,
    TransactionAlreadyExpired,
    error_for,
    results_of,
)
from .sensitive import Secret, reveal

logger = logging.getLogger("hyperid_mfa.client")

USER_AGENT = f"django-hyperid-mfa/{__version__} python-requests/{requests.__version__}"

#: Largest answer body read from HyperID; its answers are a few dozen bytes.
MAX_BODY_BYTES = 64 * 1024
#: Back-off: attempt n sleeps a random time in [0, BACKOFF_BASE * 2**n], at most BACKOFF_CAP.
BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0
#: A Retry-After longer than this is not waited for inside a call: the error carries it.
MAX_RETRY_AFTER_WAIT = 5.0
#: Answers retried for idempotent calls.
RETRYABLE_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})

# RFC 6750 b64token, the shape of a bearer token; anything else is refused locally
# because http.client would quote an invalid header value, token included, in its error.
_BEARER_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# An OAuth error code quoted in an exception; anything else (a server echoing the
# request, say) is not.
_OAUTH_ERROR_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def validate_transaction_id(transaction_id: object) -> int:
    """Return ``transaction_id`` if it is an int in 1..2**63-1, else raise InvalidParameters."""
    if type(transaction_id) is not int:
        raise InvalidParameters(
            f"transaction_id must be an integer, not {type(transaction_id).__name__}"
        )
    if not TRANSACTION_ID_MIN <= transaction_id <= TRANSACTION_ID_MAX:
        raise InvalidParameters(
            f"transaction_id must be between {TRANSACTION_ID_MIN} and {TRANSACTION_ID_MAX}"
        )
    return transaction_id


@dataclass(frozen=True)
class StatusResponse:
    """A validated status-get answer.

    ``transaction_complete_result`` is ``None`` unless the status is COMPLETED: the
    seed document says it means nothing otherwise, and HyperID may send 0 there.
    """

    result: int
    transaction_id: int
    transaction_status: Status
    transaction_complete_result: CompleteResult | None

    @property
    def is_pending(self) -> bool:
        return self.transaction_status == Status.PENDING

    @property
    def is_approved(self) -> bool:
        return self.result == Result.SUCCESS and is_approval(
            self.transaction_status, self.transaction_complete_result
        )

    @property
    def is_denied(self) -> bool:
        return (
            self.transaction_status == Status.COMPLETED
            and self.transaction_complete_result == CompleteResult.DENIED
        )

    @property
    def is_terminal(self) -> bool:
        return self.transaction_status != Status.PENDING


@dataclass(frozen=True)
class TokenResponse:
    """A token endpoint answer. Tokens are kept out of ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: int | None
    refresh_expires_in: int | None
    scope: str | None


@dataclass
class _Attempt:
    """What one MFA attempt produced: a parsed body, or an error and whether to retry."""

    body: dict[str, Any] | None = None
    error: HyperIDError | None = None
    retry: bool = False


@dataclass(frozen=True)
class _Answer:
    """A complete HTTP answer. The body stays out of ``repr``: the token endpoint's holds tokens."""

    http_status: int
    retry_after: float | None
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class _Failure:
    """An attempt that produced no complete answer."""

    error: HyperIDError
    #: A transport failure (unreachable, timed out, cut): an idempotent call may try again.
    transient: bool = False
    #: The request certainly never reached HyperID: any call may try again.
    not_sent: bool = False


class HyperIDClient:
    """Client for the four MFA calls and the token endpoint.

    ``base_url``, ``timeout`` and ``max_retries`` default to the ``HYPERID_MFA``
    settings, read at each call so that settings overrides apply to a long-lived
    client. Each attempt ends within connect + read seconds of ``timeout``, however
    slowly the server answers. The client is safe to share between threads.

    Tokens and client secrets may be passed as ``str`` or as
    :class:`~hyperid_mfa.sensitive.Secret`; the client wraps them at once either way.

    ``session`` lets the caller supply a configured ``requests.Session`` (its
    ``verify`` is passed on every call, so the environment cannot override it). The
    deadline needs the client's own transport adapter: where the session would use
    a stock ``HTTPAdapter`` (the one ``requests.Session()`` mounts for ``http://``
    and ``https://``, unconfigured) for a HyperID URL, the client mounts its adapter
    on the session for that URL's origin only (``scheme://host:port/``), the first
    time it calls it. An adapter the caller mounted or configured on purpose (a
    subclass, other pool sizes or retries, or one mounted for a more specific prefix)
    is left alone; calls through it keep requests' per-read timeouts and a deadline
    checked between the chunks of the body only, not a hard deadline.
    """

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float | tuple[float, float] | None = None,
        max_retries: int | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._session = session
        self._session_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<HyperIDClient base_url={self.base_url!r}>"

    # --- configuration read at call time ------------------------------------------

    @property
    def base_url(self) -> str:
        return str(self._base_url or mfa_settings.API_BASE_URL).rstrip("/")

    @property
    def timeout(self) -> tuple[float, float]:
        if self._timeout is None:
            return configured_timeout()
        if isinstance(self._timeout, tuple):
            return (float(self._timeout[0]), float(self._timeout[1]))
        return (float(self._timeout), float(self._timeout))

    @property
    def max_retries(self) -> int:
        value = self._max_retries if self._max_retries is not None else mfa_settings.MAX_RETRIES
        return max(0, int(value))

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            with self._session_lock:
                if self._session is None:
                    self._session = self._new_session()
        return self._session

    @staticmethod
    def _new_session() -> requests.Session:
        # The project's adapter may configure the session (proxies, mTLS, a private
        # CA); the transport with the deadline goes where it left the stock one.
        session = get_adapter().get_requests_session()
        session.headers["User-Agent"] = USER_AGENT
        for scheme in ("https://", "http://"):
            if type(session.adapters.get(scheme)) is HTTPAdapter:
                session.mount(scheme, _new_adapter())
        return session

    def _session_for(self, url: str) -> requests.Session:
        """The session, with the deadline adapter mounted for ``url`` where it may be."""
        session = self.session
        if isinstance(session.get_adapter(url), DeadlineAdapter):
            return session
        with self._session_lock:
            mount_if_stock(session, url, _new_adapter)
        return session

    def close(self) -> None:
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    # --- the MFA calls ----------------------------------------------------------------

    def get_transaction_status(
        self, access_token: str | Secret, transaction_id: int
    ) -> StatusResponse:
        """status-get: the current state of one transaction, validated strictly."""
        token = _bearer(access_token)
        del access_token  # only the wrapped token stays in this frame
        transaction_id = validate_transaction_id(transaction_id)
        call = STATUS_GET
        body = self._call(
            call,
            STATUS_GET_PATH,
            token,
            {"transaction_id": transaction_id},
            idempotent=True,
            transaction_id=transaction_id,
        )
        answered_id = _int_field(body, "transaction_id", call, transaction_id)
        if answered_id != transaction_id:
            raise ProtocolError(
                f"HyperID answered for transaction {answered_id}, not the one asked for",
                call=call,
                transaction_id=transaction_id,
            )
        raw_status = _int_field(body, "transaction_status", call, transaction_id)
        try:
            status = Status(raw_status)
        except ValueError:
            raise ProtocolError(
                f"unknown transaction_status {raw_status}", call=call, transaction_id=transaction_id
            ) from None
        complete_result: CompleteResult | None = None
        if status == Status.COMPLETED:
            raw_result = _int_field(body, "transaction_complete_result", call, transaction_id)
            try:
                complete_result = CompleteResult(raw_result)
            except ValueError:
                raise ProtocolError(
                    f"unknown transaction_complete_result {raw_result}",
                    call=call,
                    transaction_id=transaction_id,
                ) from None
        return StatusResponse(
            result=Result.SUCCESS,
            transaction_id=answered_id,
            transaction_status=status,
            transaction_complete_result=complete_result,
        )

    def start_transaction(
        self,
        access_token: str | Secret,
        *,
        question: str,
        code: str,
        template_id: int | None = None,
    ) -> int:
        """start/v2: send a push; returns the new transaction_id.

        Never retried once the request may have reached HyperID: a blind retry could
        send the user a second push. Only failures to connect are retried; an attempt
        cut by its deadline is not (the push may have been sent).
        """
        token = _bearer(access_token)
        del access_token  # only the wrapped token stays in this frame
        if not isinstance(question, str) or not question.strip():
            raise InvalidParameters("question must be a non-empty string")
        if not (isinstance(code, str) and len(code) == 2 and code.isascii() and code.isdigit()):
            raise InvalidParameters("code must be two digits, such as '07'")
        template = mfa_settings.TEMPLATE_ID if template_id is None else template_id
        values = {"version": 1, "action": {"type": "question", "action_info": question}}
        call = START
        body = self._call(
            call,
            START_PATH,
            token,
            {"template_id": template, "values": json.dumps(values), "code": code},
            idempotent=False,
        )
        transaction_id = _int_field(body, "transaction_id", call, None)
        try:
            return validate_transaction_id(transaction_id)
        except InvalidParameters as err:
            raise ProtocolError(
                f"HyperID answered an impossible transaction_id: {err.message}", call=call
            ) from None

    def cancel_transaction(self, access_token: str | Secret, transaction_id: int) -> None:
        """cancel: withdraw a pending push. Already canceled or expired is success.

        Raises :class:`TransactionAlreadyCompleted` when the user answered first.
        """
        token = _bearer(access_token)
        del access_token  # only the wrapped token stays in this frame
        transaction_id = validate_transaction_id(transaction_id)
        try:
            self._call(
                CANCEL,
                CANCEL_PATH,
                token,
                {"transaction_id": transaction_id},
                idempotent=True,
                transaction_id=transaction_id,
            )
        except (TransactionAlreadyExpired, TransactionAlreadyCanceled):
            return  # nothing left on the phone: what a cancel is for

    def check_availability(self, access_token: str | Secret) -> bool:
        """availability-check: whether the user can receive pushes at all."""
        token = _bearer(access_token)
        del access_token  # only the wrapped token stays in this frame
        call = AVAILABILITY
        body = self._call(call, AVAILABILITY_PATH, token, {}, idempotent=True)
        value = body.get("is_available")
        if not isinstance(value, bool):
            raise ProtocolError("is_available is missing or not a boolean", call=call)
        return value

    # --- the OIDC token endpoint ----------------------------------------------------

    def refresh_access_token(
        self,
        refresh_token: str | Secret,
        *,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        token_url: str | None = None,
    ) -> TokenResponse:
        """Exchange a refresh token at the issuer's token endpoint (not retried:
        HyperID may rotate refresh tokens, and a replayed one would be refused).

        ``client_secret`` defaults to the ``CLIENT_SECRET`` setting. Raises
        :class:`TokenUnavailable` when the endpoint refuses the refresh token or the
        client, :class:`ServiceUnavailable` when it cannot be reached.
        """
        call = TOKEN
        grant = _optional_secret(refresh_token, "refresh_token")
        secret = _optional_secret(
            mfa_settings.CLIENT_SECRET if client_secret is None else client_secret,
            "client_secret",
        )
        del refresh_token, client_secret  # only the wrapped values stay in this frame
        if not grant:
            raise TokenUnavailable("no refresh token to use", call=call)
        form: dict[str, str | Secret] = {"grant_type": "refresh_token", "refresh_token": grant}
        client_id = client_id if client_id is not None else mfa_settings.CLIENT_ID
        if client_id:
            form["client_id"] = client_id
        if secret:
            form["client_secret"] = secret
        outcome = self._exchange(
            call,
            token_url or token_endpoint(),
            auth=_FormPost(form),
            headers={"Accept": "application/json"},
            data=None,
            transaction_id=None,
            read_error_body=True,
        )
        if isinstance(outcome, _Failure):
            raise _detached(outcome.error)
        if outcome.http_status >= 500 or outcome.http_status == 429:
            raise ServiceUnavailable(
                "the HyperID token endpoint failed",
                call=call,
                http_status=outcome.http_status,
                retry_after=outcome.retry_after,
            )
        answer = _parse_token_answer(outcome, call)
        if isinstance(answer, HyperIDError):
            raise _detached(answer)
        return answer

    # --- one call, with retries ---------------------------------------------------

    def _call(
        self,
        call: str,
        path: str,
        access_token: Secret | None,
        payload: Mapping[str, Any],
        *,
        idempotent: bool,
        transaction_id: int | None = None,
    ) -> dict[str, Any]:
        """POST ``payload`` and return the answer's JSON object when ``result`` is 0."""
        if access_token is None:
            raise TokenInvalid("the access token is missing or malformed", call=call, result=None)
        url = self.base_url + path
        data = json.dumps(payload, separators=(",", ":")).encode()
        auth = _BearerAuth(access_token)
        retries = self.max_retries
        attempt = 0
        while True:
            started = time.monotonic()
            outcome = self._attempt(call, url, data, auth, idempotent, transaction_id)
            elapsed_ms = (time.monotonic() - started) * 1000
            if outcome.body is not None:
                result = outcome.body["result"]
                logger.debug(
                    "HyperID %s answered result=%s in %.1f ms (attempt %d, transaction_id=%s)",
                    call,
                    result,
                    elapsed_ms,
                    attempt + 1,
                    transaction_id,
                )
                if result == Result.SUCCESS:
                    return outcome.body
                outcome.error = _error_for_result(result, call, transaction_id)
                outcome.retry = idempotent and outcome.error.retryable
            error = outcome.error
            if error is None:  # pragma: no cover - _attempt returns a body or an error
                raise ProtocolError("no answer", call=call, transaction_id=transaction_id)
            wait = self._backoff(attempt, error.retry_after)
            if not outcome.retry or attempt >= retries or wait is None:
                logger.info("HyperID %s failed after %d attempt(s): %s", call, attempt + 1, error)
                raise _detached(error)
            logger.info(
                "HyperID %s attempt %d failed (%s); retrying in %.2f s",
                call,
                attempt + 1,
                error,
                wait,
            )
            self.sleep(wait)
            attempt += 1

    def _attempt(
        self,
        call: str,
        url: str,
        data: bytes,
        auth: AuthBase,
        idempotent: bool,
        transaction_id: int | None,
    ) -> _Attempt:
        outcome = self._exchange(
            call,
            url,
            auth=auth,
            headers=_JSON_HEADERS,
            data=data,
            transaction_id=transaction_id,
            read_error_body=False,
        )
        if isinstance(outcome, _Failure):
            return _Attempt(
                error=outcome.error,
                retry=(idempotent and outcome.transient) or outcome.not_sent,
            )
        http_status = outcome.http_status
        if not 200 <= http_status < 300:
            return _Attempt(
                error=ServiceUnavailable(
                    "HyperID answered an HTTP error",
                    call=call,
                    http_status=http_status,
                    transaction_id=transaction_id,
                    retry_after=outcome.retry_after,
                ),
                retry=idempotent and http_status in RETRYABLE_HTTP_STATUSES,
            )
        try:
            body = _parse_json(outcome.body, call, transaction_id)
            result = _int_field(body, "result", call, transaction_id)
            if result not in results_of(call):
                raise ProtocolError(
                    f"result {result} is not an answer this call can give",
                    call=call,
                    result=result,
                    transaction_id=transaction_id,
                )
        except ProtocolError as err:
            if err.transaction_id is None:
                # A start's answer that went wrong may still name the push it sent:
                # the caller can then withdraw it.
                err.transaction_id = _named_transaction(outcome.body)
            return _Attempt(error=err)
        return _Attempt(body=body)

    # --- one HTTP exchange, within its deadline -------------------------------------

    # Below here the request carries the clear token or form (in the library's frames):
    # in the error report of an exception that escaped anyway (BaseException), their
    # variables are hidden when DEBUG is off.
    @sensitive_variables()
    def _exchange(
        self,
        call: str,
        url: str,
        *,
        auth: AuthBase,
        headers: Mapping[str, str],
        data: bytes | None,
        transaction_id: int | None,
        read_error_body: bool,
    ) -> _Answer | _Failure:
        """POST once and read the whole answer, or fail, within connect + read seconds.

        Never raises: the frames an exception would carry up hold the request.
        """
        timeout = self.timeout
        with deadline(sum(timeout)) as current:
            try:
                session = self._session_for(url)
                response = session.post(
                    url,
                    data=data,
                    headers=headers,
                    auth=auth,
                    timeout=timeout,
                    verify=session.verify,
                    allow_redirects=False,
                    stream=True,
                )
            except requests.RequestException as err:
                return _transport_failure(err, call, transaction_id, current)
            except Exception as err:
                return _unexpected_failure(err, call, transaction_id, current)
            try:
                http_status = response.status_code
                retry_after = _retry_after(response.headers)
                body = b""
                if read_error_body or 200 <= http_status < 300:
                    read = _read_body(response, call, transaction_id, current)
                    if isinstance(read, _Failure):
                        return read
                    body = read
                return _Answer(http_status=http_status, retry_after=retry_after, body=body)
            finally:
                _close(response, call)

    def sleep(self, seconds: float) -> None:
        """Wait between attempts (tests replace it to run without waiting)."""
        time.sleep(seconds)

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt; None when Retry-After is too long."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt))
        wait = random.random() * ceiling  # noqa: S311 - jitter, not a secret
        if retry_after is not None:
            if retry_after > MAX_RETRY_AFTER_WAIT:
                return None
            wait = max(wait, retry_after)
        return wait


# --- secrets: wrapped on the way in, revealed only into the request ----------------------


@sensitive_variables("value")
def _bearer(value: object) -> Secret | None:
    """``value`` wrapped, when it has the shape of a bearer token; else None."""
    if isinstance(value, str):
        value = Secret(value)
    if isinstance(value, Secret) and _BEARER_RE.fullmatch(value.reveal()):
        return value
    return None


@sensitive_variables("value")
def _optional_secret(value: object, name: str) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    kind = type(value).__name__
    del value  # the frame travels with the exception
    raise TypeError(f"{name} must be a str or a Secret, not {kind}")


class _BearerAuth(AuthBase):
    """Writes the ``Authorization`` header as requests prepares the request.

    The one place the access token is revealed: the clear header exists only in the
    prepared request, never in a variable of this module.
    """

    def __init__(self, token: Secret) -> None:
        self._token = token

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._token!r}>"

    @sensitive_variables()
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer " + self._token.reveal()
        return request


class _FormPost(AuthBase):
    """Writes the token request's form, refresh token and client secret included, as
    requests prepares the request (OAuth's client_secret_post is client authentication
    too, so an auth hook is where it belongs)."""

    def __init__(self, fields: Mapping[str, str | Secret]) -> None:
        self._fields = dict(fields)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {sorted(self._fields)}>"

    @sensitive_variables()
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.prepare_body({name: reveal(value) for name, value in self._fields.items()}, None)
        return request


def _detached(error: HyperIDError) -> HyperIDError:
    """``error``, stripped of the frames and exceptions it picked up where it was made.

    Raising an exception again appends to its traceback, and its context keeps the
    exception it replaced: both would carry frames that held the request or answer.
    """
    error.__cause__ = None
    error.__context__ = None
    return error.with_traceback(None)


# --- helpers ------------------------------------------------------------------------


def _transport_failure(
    err: requests.RequestException, call: str, transaction_id: int | None, deadline: Deadline
) -> _Failure:
    # requests keeps the prepared request (Authorization header included) on its
    # exceptions; drop it so that nothing downstream can log the token.
    err.request = None
    err.response = None
    if deadline.passed():
        message = f"HyperID timed out (no complete answer within {deadline.budget:g} s)"
    elif isinstance(err, requests.Timeout):
        message = f"HyperID timed out ({type(err).__name__})"
    else:
        message = f"HyperID could not be reached ({type(err).__name__})"
    not_sent = _not_sent(err)
    return _Failure(
        ServiceUnavailable(message, call=call, transaction_id=transaction_id, no_effect=not_sent),
        transient=True,
        not_sent=not_sent,
    )


def _unexpected_failure(
    err: Exception, call: str, transaction_id: int | None, deadline: Deadline
) -> _Failure:
    """An exception requests does not wrap: a library bug, or a header http.client refused.

    Reported as ServiceUnavailable, like any failure to complete the exchange: the
    answer was not wrong, there was none, and the caller's answer to "try again
    later" is the safe one. ProtocolError would blame HyperID's answer. Never retried
    here, unless the deadline caused it: a bug would only fail again, and the
    request may have been sent. Logged by class and place only; the message, like the
    frames' variables, may hold the request's headers.
    """
    kind = type(err).__name__
    if deadline.passed():
        logger.debug("HyperID %s: %s after the deadline cut the connection", call, kind)
        return _Failure(
            ServiceUnavailable(
                f"HyperID timed out (no complete answer within {deadline.budget:g} s)",
                call=call,
                transaction_id=transaction_id,
            ),
            transient=True,
        )
    logger.error(
        "HyperID %s: unexpected %s raised inside the HTTP client (%s)",
        call,
        kind,
        _raised_at(err),
    )
    return _Failure(
        ServiceUnavailable(
            f"HyperID request failed unexpectedly ({kind})",
            call=call,
            transaction_id=transaction_id,
        )
    )


def _raised_at(err: BaseException) -> str:
    """Where ``err`` was raised: file, line and function, no values."""
    place = "unknown place"
    for frame, line in traceback.walk_tb(err.__traceback__):
        code = frame.f_code
        place = f"{code.co_filename}:{line} in {code.co_name}"
    return place


def _not_sent(err: requests.RequestException) -> bool:
    """Whether the request certainly never reached HyperID (safe to retry anything)."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    if isinstance(err, requests.ConnectionError) and not isinstance(err, requests.ReadTimeout):
        reason = err.args[0] if err.args else None
        inner = getattr(reason, "reason", reason)
        name = type(inner).__name__
        return name in {"NewConnectionError", "NameResolutionError", "ConnectTimeoutError"}
    return False


@sensitive_variables("chunks", "chunk")
def _read_body(
    response: requests.Response, call: str, transaction_id: int | None, deadline: Deadline
) -> bytes | _Failure:
    chunks: list[bytes] = []
    size = 0
    try:
        stream = response.iter_content(chunk_size=8192)
        # Checked before each read: without the watchdog (an adapter the caller chose),
        # this is what stops a trickled body, one chunk late at worst.
        while not deadline.passed():
            chunk = next(stream, None)
            if chunk is None:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return _Failure(
                    ProtocolError(
                        f"answer larger than {MAX_BODY_BYTES} bytes",
                        call=call,
                        http_status=response.status_code,
                        transaction_id=transaction_id,
                    )
                )
            chunks.append(chunk)
    except requests.RequestException as err:
        return _transport_failure(err, call, transaction_id, deadline)
    except Exception as err:
        return _unexpected_failure(err, call, transaction_id, deadline)
    return _Failure(
        ServiceUnavailable(
            f"HyperID timed out (no complete answer within {deadline.budget:g} s)",
            call=call,
            transaction_id=transaction_id,
        ),
        transient=True,
    )


def _close(response: requests.Response, call: str) -> None:
    # The answer is read (or abandoned) already: failing to close is not the call's failure.
    try:
        response.close()
    except Exception as err:
        logger.debug("HyperID %s: %s while closing the answer", call, type(err).__name__)


@sensitive_variables()
def _parse_token_answer(answer: _Answer, call: str) -> TokenResponse | HyperIDError:
    """The token endpoint's answer, or the error to raise: returned, not raised, since
    this frame holds the answer (new tokens included) in clear."""
    try:
        body = _parse_json(answer.body, call, None)
    except ProtocolError as err:
        return err
    if answer.http_status != 200:
        # OAuth errors (invalid_grant, invalid_client...) carry no secret; anything
        # that does not look like one is not quoted.
        error = body.get("error")
        reason = error if isinstance(error, str) and _OAUTH_ERROR_RE.fullmatch(error) else "refused"
        return TokenUnavailable(
            f"the HyperID token endpoint refused the refresh: {reason}",
            call=call,
            http_status=answer.http_status,
        )
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not _BEARER_RE.fullmatch(access_token):
        return ProtocolError("the token endpoint answered no usable access_token", call=call)
    refresh_token = body.get("refresh_token")
    if refresh_token is not None and not isinstance(refresh_token, str):
        return ProtocolError("the token endpoint answered a malformed refresh_token", call=call)
    return TokenResponse(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=_optional_seconds(body.get("expires_in")),
        refresh_expires_in=_optional_seconds(body.get("refresh_expires_in")),
        scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
    )


def _parse_json(raw: bytes, call: str, transaction_id: int | None) -> dict[str, Any]:
    try:
        value = wire.strict_json(raw)
    except wire.StrictJSONError:
        raise ProtocolError(
            "HyperID answered something that is not JSON", call=call, transaction_id=transaction_id
        ) from None
    if not isinstance(value, dict):
        raise ProtocolError(
            "HyperID answered JSON that is not an object", call=call, transaction_id=transaction_id
        )
    return value


def _named_transaction(raw: bytes) -> int | None:
    """The valid ``transaction_id`` an answer names, however wrong the rest of it is."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    candidate = value.get("transaction_id") if isinstance(value, dict) else None
    try:
        return validate_transaction_id(candidate)
    except InvalidParameters:
        return None


def _int_field(body: Mapping[str, Any], name: str, call: str, transaction_id: int | None) -> int:
    value = body.get(name)
    # bool is an int subclass: true/false must not pass for 1/0.
    if type(value) is not int:
        missing = name not in body
        raise ProtocolError(
            f"{name} is {'missing' if missing else 'not an integer'}",
            call=call,
            transaction_id=transaction_id,
        )
    return value


def _error_for_result(result: int, call: str, transaction_id: int | None) -> HyperIDError:
    # Only results the call may give get here (results_of): each has its class.
    cls = error_for(call, result) or HyperIDError
    # HyperID's own answer that the call failed: it did nothing (a start sent no push).
    return cls(result=result, call=call, transaction_id=transaction_id, no_effect=True)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _optional_seconds(value: object) -> int | None:
    if type(value) is int and value >= 0:
        return value
    return None


_default_client: HyperIDClient | None = None
_default_client_lock = threading.Lock()


def _new_adapter() -> DeadlineAdapter:
    # Retries are ours (they must know which calls are idempotent); a large pool lets
    # the concurrent poller keep its connections alive.
    return DeadlineAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)


def get_client() -> HyperIDClient:
    """The process-wide client (its settings are read at each call)."""
    global _default_client
    if _default_client is None:
        with _default_client_lock:
            if _default_client is None:
                _default_client = HyperIDClient()
    return _default_client
