"""HTTP client for HyperID's MFA client API. HTTP only: it knows nothing of models.

One pooled ``requests.Session`` per client (created lazily), retries with exponential
back-off and jitter for the idempotent calls only, and strict validation of every
answer: an answer the protocol does not allow raises
:class:`~hyperid_mfa.exceptions.ProtocolError` and is never read as an approval.

Every attempt has a deadline of connect + read seconds (the ``TIMEOUT`` pair added
up), whatever the server does. requests applies its read timeout to each socket read,
so an answer trickled a byte at a time would otherwise hold a call for minutes; here
a watchdog thread shuts the attempt's connection down when its deadline passes, which
ends a read blocked on it at once. An attempt cut short is a timeout. A start is the
exception: its exchange goes on in the background past the deadline (the caller
still has its timeout then), and a push that HyperID names in an answer that comes
too late is withdrawn, since nothing here will ever follow it.

Tokens and the client secret are held in :class:`~hyperid_mfa.sensitive.Secret` from
the moment a method receives them and revealed only as the request is prepared (in
the ``requests`` auth hooks below), so no frame of this module holds them in clear:
Django's error report and Sentry print every frame's local variables. Failures
travel as values and are raised only from frames that hold nothing secret, detached
from the frames (the library's, holding the headers) where they were caught.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from .. import __version__, signals
from ..adapter import get_adapter
from ..conf import mfa_settings, token_endpoint
from ..conf import timeout as configured_timeout
from ..constants import (
    AVAILABILITY,
    AVAILABILITY_PATH,
    CANCEL,
    CANCEL_PATH,
    START,
    START_PATH,
    STATUS_GET,
    STATUS_GET_PATH,
    TOKEN,
    CompleteResult,
    Result,
    Status,
)
from ..exceptions import (
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
from ..sensitive import Secret
from .deadline import DeadlineAdapter, mount_if_stock
from .responses import (
    StatusResponse,
    TokenResponse,
    int_field,
    named_transaction,
    parse_json,
    parse_token_answer,
    validate_transaction_id,
)
from .transport import (
    Answer,
    BearerAuth,
    Failure,
    FormPost,
    LateAnswer,
    bearer,
    detached,
    exchange,
    new_adapter,
    optional_secret,
)

logger = logging.getLogger("hyperid_mfa.client")

USER_AGENT = f"django-hyperid-mfa/{__version__} python-requests/{requests.__version__}"

#: Back-off: attempt n sleeps a random time in [0, BACKOFF_BASE * 2**n], at most BACKOFF_CAP.
BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0
#: A Retry-After longer than this is not waited for inside a call: the error carries it.
MAX_RETRY_AFTER_WAIT = 5.0
#: Answers retried for idempotent calls.
RETRYABLE_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass
class _Attempt:
    """What one MFA attempt produced: a parsed body, or an error and whether to retry."""

    body: dict[str, Any] | None = None
    error: HyperIDError | None = None
    retry: bool = False
    #: How the exchange ended, for hyperid_call_finished (a body's result is read later).
    failure: str | None = None


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
                session.mount(scheme, new_adapter())
        return session

    def _session_for(self, url: str) -> requests.Session:
        """The session, with the deadline adapter mounted for ``url`` where it may be."""
        session = self.session
        if isinstance(session.get_adapter(url), DeadlineAdapter):
            return session
        with self._session_lock:
            mount_if_stock(session, url, new_adapter)
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
        token = bearer(access_token)
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
        answered_id = int_field(body, "transaction_id", call, transaction_id)
        if answered_id != transaction_id:
            raise ProtocolError(
                f"HyperID answered for transaction {answered_id}, not the one asked for",
                call=call,
                transaction_id=transaction_id,
            )
        raw_status = int_field(body, "transaction_status", call, transaction_id)
        try:
            status = Status(raw_status)
        except ValueError:
            raise ProtocolError(
                f"unknown transaction_status {raw_status}", call=call, transaction_id=transaction_id
            ) from None
        complete_result: CompleteResult | None = None
        if status == Status.COMPLETED:
            raw_result = int_field(body, "transaction_complete_result", call, transaction_id)
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
        on_late_push: Callable[[int, bool], None] | None = None,
    ) -> int:
        """start/v2: send a push; returns the new transaction_id.

        Never retried once the request may have reached HyperID: a blind retry could
        send the user a second push. Only failures to connect are retried; an attempt
        cut by its deadline is not (the push may have been sent): it raises
        :class:`ServiceUnavailable` with ``no_effect`` false at the deadline, and its
        exchange goes on in the background for up to ``LATE_ANSWER_SECONDS``. If
        HyperID's response then names a push, the push is withdrawn (cancel, with the
        same token) and ``on_late_push(transaction_id, withdrawn)`` is called, in
        that background thread.
        """
        token = bearer(access_token)
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
            late=functools.partial(self._withdraw_late_push, token, on_late_push),
        )
        transaction_id = int_field(body, "transaction_id", call, None)
        try:
            return validate_transaction_id(transaction_id)
        except InvalidParameters as err:
            raise ProtocolError(
                f"HyperID answered an impossible transaction_id: {err.message}", call=call
            ) from None

    def _withdraw_late_push(
        self,
        token: Secret | None,
        on_late_push: Callable[[int, bool], None] | None,
        outcome: Answer | Failure,
    ) -> None:
        """What a start whose caller gave up on it ended with: withdraw the push it names."""
        if isinstance(outcome, Failure):
            logger.warning(
                "HyperID start: no answer after its deadline either (%s): a push may be "
                "on the phone",
                outcome.error,
            )
            return
        transaction_id = _late_push(outcome)
        if transaction_id is None or token is None:
            logger.info(
                "HyperID start answered after its deadline (HTTP %s), naming no push",
                outcome.http_status,
            )
            return
        try:
            self.cancel_transaction(token, transaction_id)
        except HyperIDError as err:
            withdrawn = False
            logger.warning(
                "HyperID start answered after its deadline: push %s sent, and not "
                "withdrawn (%s); nothing here follows it, so it can never be used",
                transaction_id,
                err,
            )
        else:
            withdrawn = True
            logger.warning(
                "HyperID start answered after its deadline: push %s sent, now withdrawn",
                transaction_id,
            )
        if on_late_push is not None:
            on_late_push(transaction_id, withdrawn)

    def cancel_transaction(self, access_token: str | Secret, transaction_id: int) -> None:
        """cancel: withdraw a pending push. Already canceled or expired is success.

        Raises :class:`TransactionAlreadyCompleted` when the user answered first.
        """
        token = bearer(access_token)
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
        token = bearer(access_token)
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
        grant = optional_secret(refresh_token, "refresh_token")
        secret = optional_secret(
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
        url = token_url or token_endpoint()
        started = time.monotonic()
        outcome = exchange(
            self._session_for(url),
            self.timeout,
            call,
            url,
            auth=FormPost(form),
            headers={"Accept": "application/json"},
            data=None,
            transaction_id=None,
            read_error_body=True,
        )
        if isinstance(outcome, Failure):
            _finished(call, outcome.reason, started)
            raise detached(outcome.error)
        if outcome.http_status >= 500 or outcome.http_status == 429:
            _finished(call, http_failure(outcome.http_status), started)
            raise ServiceUnavailable(
                "the HyperID token endpoint failed",
                call=call,
                http_status=outcome.http_status,
                retry_after=outcome.retry_after,
            )
        answer = parse_token_answer(outcome, call)
        if isinstance(answer, ProtocolError):
            _finished(call, "protocol_error", started)
        elif isinstance(answer, HyperIDError):
            _finished(call, "refused", started)
        else:
            _finished(call, "success", started)
        if isinstance(answer, HyperIDError):
            raise detached(answer)
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
        late: LateAnswer | None = None,
    ) -> dict[str, Any]:
        """POST ``payload`` and return the answer's JSON object when ``result`` is 0.

        ``late``, where given, receives what an attempt ended with after its deadline
        (see :func:`~hyperid_mfa.client.transport.heeding_late_answer`).
        """
        if access_token is None:
            raise TokenInvalid("the access token is missing or malformed", call=call, result=None)
        url = self.base_url + path
        data = json.dumps(payload, separators=(",", ":")).encode()
        auth = BearerAuth(access_token)
        retries = self.max_retries
        attempt = 0
        while True:
            started = time.monotonic()
            outcome = self._attempt(call, url, data, auth, idempotent, transaction_id, late)
            elapsed_ms = (time.monotonic() - started) * 1000
            if outcome.body is None:
                _finished(call, outcome.failure or "unexpected", started)
            else:
                result = outcome.body["result"]
                _finished(call, result_name(call, result), started)
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
                raise detached(error)
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
        late: LateAnswer | None = None,
    ) -> _Attempt:
        outcome = exchange(
            self._session_for(url),
            self.timeout,
            call,
            url,
            auth=auth,
            headers=_JSON_HEADERS,
            data=data,
            transaction_id=transaction_id,
            read_error_body=False,
            late=late,
        )
        if isinstance(outcome, Failure):
            return _Attempt(
                error=outcome.error,
                retry=(idempotent and outcome.transient) or outcome.not_sent,
                failure=outcome.reason,
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
                failure=http_failure(http_status),
            )
        try:
            body = parse_json(outcome.body, call, transaction_id)
            result = int_field(body, "result", call, transaction_id)
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
                err.transaction_id = named_transaction(outcome.body)
            return _Attempt(error=err, failure="protocol_error")
        return _Attempt(body=body)

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


# --- helpers ------------------------------------------------------------------------


def result_name(call: str, result: int) -> str:
    """HyperID's name of ``result`` as ``call`` means it: ``"token_expired"``.

    -8 is two names: "template not found" to a start, "already expired" to a cancel.
    """
    if call == CANCEL and result == Result.TRANSACTION_ALREADY_EXPIRED:
        return "transaction_already_expired"
    try:
        return Result(result).name.lower()
    except ValueError:  # not an answer of this call: _attempt refused it already
        return "protocol_error"


def http_failure(http_status: int) -> str:
    """An HTTP error answer's class, as a bounded name: ``"http_5xx"``."""
    if 300 <= http_status <= 599:
        return f"http_{http_status // 100}xx"
    return "http_other"


def _finished(call: str, result: str, started: float) -> None:
    """Tell ``hyperid_call_finished``'s receivers (metrics, the dashboard's tallies)
    how one exchange ended. Nothing they raise reaches the call."""
    signals.hyperid_call_finished.send_robust(
        sender=HyperIDClient, call=call, result=result, seconds=time.monotonic() - started
    )


def _late_push(answer: Answer) -> int | None:
    """The push a start's late answer says HyperID sent, if it says so at all.

    A result other than 0 is HyperID refusing the start: no push. An answer too
    garbled to carry a result may still name one, as an answer in time may.
    """
    if not 200 <= answer.http_status < 300:
        return None
    try:
        result = parse_json(answer.body, START, None).get("result")
    except ProtocolError:
        result = None
    if type(result) is int and result != Result.SUCCESS:
        return None
    return named_transaction(answer.body)


def _error_for_result(result: int, call: str, transaction_id: int | None) -> HyperIDError:
    # Only results the call may give get here (results_of): each has its class.
    cls = error_for(call, result) or HyperIDError
    # HyperID's own answer that the call failed: it did nothing (a start sent no push).
    return cls(result=result, call=call, transaction_id=transaction_id, no_effect=True)


_default_client: HyperIDClient | None = None
_default_client_lock = threading.Lock()


def get_client() -> HyperIDClient:
    """The process-wide client (its settings are read at each call)."""
    global _default_client
    if _default_client is None:
        with _default_client_lock:
            if _default_client is None:
                _default_client = HyperIDClient()
    return _default_client
