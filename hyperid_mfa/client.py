"""HTTP client for HyperID's MFA client API. HTTP only: it knows nothing of models.

One pooled ``requests.Session`` per client (created lazily), a timeout on every
call, retries with exponential back-off and jitter for the idempotent calls only,
and strict validation of every answer: an answer the protocol does not allow raises
:class:`~hyperid_mfa.exceptions.ProtocolError` and is never read as an approval.

Tokens are passed in by the caller and only ever placed in the ``Authorization``
header: they appear in no exception, log line or ``repr``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .conf import mfa_settings, token_endpoint
from .conf import timeout as configured_timeout
from .constants import (
    AVAILABILITY_PATH,
    AVAILABILITY_RESULTS,
    CANCEL_PATH,
    CANCEL_RESULTS,
    START_PATH,
    START_RESULTS,
    STATUS_GET_PATH,
    STATUS_GET_RESULTS,
    TRANSACTION_ID_MAX,
    TRANSACTION_ID_MIN,
    CompleteResult,
    Result,
    Status,
)
from .exceptions import (
    EXCEPTION_BY_RESULT,
    HyperIDError,
    InvalidParameters,
    ProtocolError,
    ServiceUnavailable,
    TemplateNotFound,
    TokenInvalid,
    TokenUnavailable,
    TransactionAlreadyCompleted,
)

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
# because requests would quote an invalid header value, token included, in its error.
_BEARER_RE = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


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
        return (
            self.result == Result.SUCCESS
            and self.transaction_status == Status.COMPLETED
            and self.transaction_complete_result == CompleteResult.APPROVED
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
    """What one HTTP attempt produced: a parsed body, or an error and whether to retry."""

    body: dict[str, Any] | None = None
    error: HyperIDError | None = None
    retry: bool = False


class HyperIDClient:
    """Client for the four MFA calls and the token endpoint.

    ``base_url``, ``timeout`` and ``max_retries`` default to the ``HYPERID_MFA``
    settings, read at each call so that settings overrides apply to a long-lived
    client. ``session`` lets the caller supply a configured ``requests.Session``
    (its ``verify`` is passed on every call, so the environment cannot override it).
    The client is safe to share between threads.
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
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        # Retries are ours (they must know which calls are idempotent); a large pool
        # lets the concurrent poller keep its connections alive.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    # --- the MFA calls ----------------------------------------------------------------

    def get_transaction_status(self, access_token: str, transaction_id: int) -> StatusResponse:
        """status-get: the current state of one transaction, validated strictly."""
        transaction_id = validate_transaction_id(transaction_id)
        call = "status-get"
        body = self._call(
            call,
            STATUS_GET_PATH,
            access_token,
            {"transaction_id": transaction_id},
            idempotent=True,
            allowed_results=STATUS_GET_RESULTS,
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
        self, access_token: str, *, question: str, code: str, template_id: int | None = None
    ) -> int:
        """start/v2: send a push; returns the new transaction_id.

        Never retried once the request may have reached HyperID: a blind retry could
        send the user a second push. Only failures to connect are retried.
        """
        if not isinstance(question, str) or not question.strip():
            raise InvalidParameters("question must be a non-empty string")
        if not (isinstance(code, str) and len(code) == 2 and code.isascii() and code.isdigit()):
            raise InvalidParameters("code must be two digits, such as '07'")
        template = mfa_settings.TEMPLATE_ID if template_id is None else template_id
        values = {"version": 1, "action": {"type": "question", "action_info": question}}
        call = "start"
        body = self._call(
            call,
            START_PATH,
            access_token,
            {"template_id": template, "values": json.dumps(values), "code": code},
            idempotent=False,
            allowed_results=START_RESULTS,
            error_overrides={Result.TEMPLATE_NOT_FOUND: TemplateNotFound},
        )
        transaction_id = _int_field(body, "transaction_id", call, None)
        try:
            return validate_transaction_id(transaction_id)
        except InvalidParameters as err:
            raise ProtocolError(
                f"HyperID answered an impossible transaction_id: {err.message}", call=call
            ) from None

    def cancel_transaction(self, access_token: str, transaction_id: int) -> None:
        """cancel: withdraw a pending push. Already canceled or expired is success.

        Raises :class:`TransactionAlreadyCompleted` when the user answered first.
        """
        transaction_id = validate_transaction_id(transaction_id)
        call = "cancel"
        try:
            self._call(
                call,
                CANCEL_PATH,
                access_token,
                {"transaction_id": transaction_id},
                idempotent=True,
                allowed_results=CANCEL_RESULTS,
                transaction_id=transaction_id,
                error_overrides={Result.TRANSACTION_ALREADY_COMPLETED: TransactionAlreadyCompleted},
            )
        except HyperIDError as err:
            if err.result in (
                Result.TRANSACTION_ALREADY_EXPIRED,
                Result.TRANSACTION_ALREADY_CANCELED,
            ):
                return
            raise

    def check_availability(self, access_token: str) -> bool:
        """availability-check: whether the user can receive pushes at all."""
        call = "availability"
        body = self._call(
            call,
            AVAILABILITY_PATH,
            access_token,
            {},
            idempotent=True,
            allowed_results=AVAILABILITY_RESULTS,
        )
        value = body.get("is_available")
        if not isinstance(value, bool):
            raise ProtocolError("is_available is missing or not a boolean", call=call)
        return value

    # --- the OIDC token endpoint ----------------------------------------------------

    def refresh_access_token(
        self,
        refresh_token: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
    ) -> TokenResponse:
        """Exchange a refresh token at the issuer's token endpoint (not retried:
        HyperID may rotate refresh tokens, and a replayed one would be refused).

        Raises :class:`TokenUnavailable` when the endpoint refuses the refresh token
        or the client, :class:`ServiceUnavailable` when it cannot be reached.
        """
        call = "token"
        if not refresh_token:
            raise TokenUnavailable("no refresh token to use", call=call)
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        client_id = client_id if client_id is not None else mfa_settings.CLIENT_ID
        client_secret = client_secret if client_secret is not None else mfa_settings.CLIENT_SECRET
        if client_id:
            data["client_id"] = client_id
        if client_secret:
            data["client_secret"] = client_secret
        url = token_url or token_endpoint()
        try:
            response = self.session.post(
                url,
                data=data,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                verify=self.session.verify,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as err:
            raise _transport_error(err, call, None) from None
        http_status = response.status_code
        try:
            raw = _read_body(response, call)
        finally:
            response.close()
        if http_status >= 500 or http_status == 429:
            raise ServiceUnavailable(
                "the HyperID token endpoint failed",
                call=call,
                http_status=http_status,
                retry_after=_retry_after(response.headers),
            )
        body = _parse_json(raw, call, None)
        if http_status != 200:
            # OAuth errors (invalid_grant, invalid_client...) carry no secret.
            error = body.get("error")
            reason = error if isinstance(error, str) and error.isascii() else "refused"
            raise TokenUnavailable(
                f"the HyperID token endpoint refused the refresh: {reason[:64]}",
                call=call,
                http_status=http_status,
            )
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not _BEARER_RE.match(access_token):
            raise ProtocolError("the token endpoint answered no usable access_token", call=call)
        new_refresh = body.get("refresh_token")
        if new_refresh is not None and not isinstance(new_refresh, str):
            raise ProtocolError("the token endpoint answered a malformed refresh_token", call=call)
        return TokenResponse(
            access_token=access_token,
            refresh_token=new_refresh,
            expires_in=_optional_seconds(body.get("expires_in")),
            refresh_expires_in=_optional_seconds(body.get("refresh_expires_in")),
            scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
        )

    # --- one call, with retries ---------------------------------------------------

    def _call(
        self,
        call: str,
        path: str,
        access_token: str,
        payload: Mapping[str, Any],
        *,
        idempotent: bool,
        allowed_results: Collection[int],
        transaction_id: int | None = None,
        error_overrides: Mapping[int, type[HyperIDError]] | None = None,
    ) -> dict[str, Any]:
        """POST ``payload`` and return the answer's JSON object when ``result`` is 0."""
        if not isinstance(access_token, str) or not _BEARER_RE.match(access_token):
            raise TokenInvalid("the access token is missing or malformed", call=call, result=None)
        url = self.base_url + path
        data = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        retries = self.max_retries
        attempt = 0
        while True:
            started = time.monotonic()
            outcome = self._attempt(
                call, url, data, headers, idempotent, allowed_results, transaction_id
            )
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
                outcome.error = _error_for_result(
                    result, call, transaction_id, error_overrides or {}
                )
                outcome.retry = idempotent and result == Result.SERVICE_UNAVAILABLE
            error = outcome.error
            if error is None:  # pragma: no cover - _attempt returns a body or an error
                raise ProtocolError("no answer", call=call, transaction_id=transaction_id)
            wait = self._backoff(attempt, error.retry_after)
            if not outcome.retry or attempt >= retries or wait is None:
                logger.info("HyperID %s failed after %d attempt(s): %s", call, attempt + 1, error)
                raise error
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
        headers: Mapping[str, str],
        idempotent: bool,
        allowed_results: Collection[int],
        transaction_id: int | None,
    ) -> _Attempt:
        session = self.session
        try:
            response = session.post(
                url,
                data=data,
                headers=headers,
                timeout=self.timeout,
                verify=session.verify,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as err:
            error = _transport_error(err, call, transaction_id)
            return _Attempt(error=error, retry=idempotent or _not_sent(err))
        try:
            http_status = response.status_code
            if not 200 <= http_status < 300:
                return _Attempt(
                    error=ServiceUnavailable(
                        "HyperID answered an HTTP error",
                        call=call,
                        http_status=http_status,
                        transaction_id=transaction_id,
                        retry_after=_retry_after(response.headers),
                    ),
                    retry=idempotent and http_status in RETRYABLE_HTTP_STATUSES,
                )
            try:
                raw = _read_body(response, call)
            except requests.RequestException as err:
                return _Attempt(error=_transport_error(err, call, transaction_id), retry=idempotent)
        finally:
            response.close()
        try:
            body = _parse_json(raw, call, transaction_id)
            result = _int_field(body, "result", call, transaction_id)
            if result not in allowed_results:
                raise ProtocolError(
                    f"result {result} is not an answer this call can give",
                    call=call,
                    result=result,
                    transaction_id=transaction_id,
                )
        except ProtocolError as err:
            return _Attempt(error=err)
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


def _transport_error(
    err: requests.RequestException, call: str, transaction_id: int | None
) -> ServiceUnavailable:
    # requests keeps the prepared request (Authorization header included) on its
    # exceptions; drop it so that nothing downstream can log the token.
    err.request = None
    err.response = None
    kind = "timed out" if isinstance(err, requests.Timeout) else "could not be reached"
    return ServiceUnavailable(
        f"HyperID {kind} ({type(err).__name__})", call=call, transaction_id=transaction_id
    )


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


def _read_body(response: requests.Response, call: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=8192):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProtocolError(
                f"answer larger than {MAX_BODY_BYTES} bytes",
                call=call,
                http_status=response.status_code,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(raw: bytes, call: str, transaction_id: int | None) -> dict[str, Any]:
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError(
            "HyperID answered something that is not JSON", call=call, transaction_id=transaction_id
        ) from None
    if not isinstance(value, dict):
        raise ProtocolError(
            "HyperID answered JSON that is not an object", call=call, transaction_id=transaction_id
        )
    return value


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


def _error_for_result(
    result: int,
    call: str,
    transaction_id: int | None,
    overrides: Mapping[int, type[HyperIDError]],
) -> HyperIDError:
    cls = overrides.get(result) or EXCEPTION_BY_RESULT.get(result, HyperIDError)
    return cls(result=result, call=call, transaction_id=transaction_id)


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


def get_client() -> HyperIDClient:
    """The process-wide client (its settings are read at each call)."""
    global _default_client
    if _default_client is None:
        with _default_client_lock:
            if _default_client is None:
                _default_client = HyperIDClient()
    return _default_client
