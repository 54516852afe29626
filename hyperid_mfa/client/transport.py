"""One HTTP exchange with HyperID, within its deadline, with nothing secret in sight.

Used by :mod:`hyperid_mfa.client` only. Tokens and the client secret travel as
:class:`~hyperid_mfa.sensitive.Secret` and are revealed only as the request is
prepared (in the ``requests`` auth hooks below), so no frame here holds them in
clear: Django's error report and Sentry print every frame's local variables.
Failures travel as values (:class:`Failure`) and are raised by the client only from
frames that hold nothing secret, detached from the frames (the library's, holding
the headers) where they were caught.

A call whose answer must not be lost when it is late (a start: the push may be on
the phone) is sent with a ``late`` handler (:func:`heeding_late_answer`): the caller
still has its answer, or a timeout, by the deadline, and an answer that turns up
later reaches the handler in the background instead of a socket shut down under it.
"""

from __future__ import annotations

import contextvars
import email.utils
import functools
import logging
import re
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

import requests
from django.views.decorators.debug import sensitive_variables
from requests.auth import AuthBase

from ..exceptions import HyperIDError, ProtocolError, ServiceUnavailable
from ..sensitive import Secret, reveal
from .deadline import Deadline, DeadlineAdapter, deadline

logger = logging.getLogger("hyperid_mfa.client")

#: Largest answer body read from HyperID; its answers are a few dozen bytes.
MAX_BODY_BYTES = 64 * 1024

#: How long past its deadline an exchange heeding a late answer goes on, in the
#: background: HyperID or a proxy rarely holds an answer longer.
LATE_ANSWER_SECONDS = 60.0
#: At most this many exchanges go on past their deadline at once (each holds a
#: thread and a connection); beyond that one is cut at its deadline like any other.
MAX_LATE_EXCHANGES = 32

# RFC 6750 b64token, the shape of a bearer token; anything else is refused locally
# because http.client would quote an invalid header value, token included, in its error.
BEARER_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer. The body stays out of ``repr``: the token endpoint's holds tokens."""

    http_status: int
    retry_after: float | None
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Failure:
    """An attempt that produced no complete answer."""

    error: HyperIDError
    #: A transport failure (unreachable, timed out, cut): an idempotent call may try again.
    transient: bool = False
    #: The request certainly never reached HyperID: any call may try again.
    not_sent: bool = False
    #: How the exchange failed, one of FAILURE_REASONS (a metric's label).
    reason: str = "unexpected"


#: How an exchange can fail without an answer to read.
FAILURE_REASONS = ("timeout", "unreachable", "protocol_error", "unexpected")


#: What an exchange heeding a late answer ended with, after its caller gave up on it.
LateAnswer = Callable[[Answer | Failure], None]


# Below here the request carries the clear token or form (in the library's frames):
# in the error report of an exception that escaped anyway (BaseException), their
# variables are hidden when DEBUG is off.
@sensitive_variables()
def exchange(
    session: requests.Session,
    timeout: tuple[float, float],
    call: str,
    url: str,
    *,
    auth: AuthBase,
    headers: Mapping[str, str],
    data: bytes | None,
    transaction_id: int | None,
    read_error_body: bool,
    late: LateAnswer | None = None,
    within: Deadline | None = None,
) -> Answer | Failure:
    """POST once and read the whole answer, or fail, within connect + read seconds
    (or by ``within``, a deadline made by the caller).

    With ``late``, an answer that comes after the deadline is not lost: see
    :func:`heeding_late_answer`.

    Never raises: the frames an exception would carry up hold the request.
    """
    if late is not None:
        send = functools.partial(
            exchange,
            session,
            call=call,
            url=url,
            auth=auth,
            headers=headers,
            data=data,
            transaction_id=transaction_id,
            read_error_body=read_error_body,
        )
        return heeding_late_answer(send, timeout, call, transaction_id, late)
    with deadline(sum(timeout) if within is None else within) as current:
        try:
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
            return transport_failure(err, call, transaction_id, current)
        except Exception as err:
            return unexpected_failure(err, call, transaction_id, current)
        try:
            http_status = response.status_code
            retry_after = retry_after_of(response.headers)
            body = b""
            if read_error_body or 200 <= http_status < 300:
                read = read_body(response, call, transaction_id, current)
                if isinstance(read, Failure):
                    return read
                body = read
            return Answer(http_status=http_status, retry_after=retry_after, body=body)
        finally:
            _close(response, call)


def heeding_late_answer(
    send: Callable[..., Answer | Failure],
    timeout: tuple[float, float],
    call: str,
    transaction_id: int | None,
    late: LateAnswer,
) -> Answer | Failure:
    """What ``send(timeout, within=deadline)`` (an :func:`exchange`) answers by the
    deadline; an answer that comes later is not lost.

    The exchange runs in a thread of its own; the caller waits for it until the
    deadline (connect + read seconds) and then has a timeout, as from
    :func:`exchange`. The exchange goes on for up to ``LATE_ANSWER_SECONDS`` more, and
    what it ends with, an answer or a failure, is passed to ``late`` in that thread
    (with the caller's context variables). No request thread waits for it. When
    ``MAX_LATE_EXCHANGES`` already go on, this one is cut at its deadline instead and
    ``late`` is not called.
    """
    connect, read = timeout
    budget = connect + read
    handoff = _Handoff(Deadline(budget + LATE_ANSWER_SECONDS))

    def run() -> None:
        outcome = send((connect, read + LATE_ANSWER_SECONDS), within=handoff.deadline)
        if handoff.deliver(outcome) or not handoff.lingering:
            return  # the caller has it, or cut it at its deadline
        try:
            late(outcome)
        except Exception as err:
            logger.error(
                "HyperID %s: %s raised while handling its late answer (%s)",
                call,
                type(err).__name__,
                _raised_at(err),
            )
        finally:
            handoff.finish()

    worker = threading.Thread(
        target=contextvars.copy_context().run, args=(run,), name=f"hyperid-mfa-{call}", daemon=True
    )
    worker.start()
    outcome = handoff.wait(budget)
    if outcome is not None:
        return outcome
    if not handoff.lingering:
        handoff.deadline.expire()
        logger.warning(
            "HyperID %s: %d exchanges already wait past their deadline; this one is cut, "
            "and an answer it would have had is lost",
            call,
            MAX_LATE_EXCHANGES,
        )
    return Failure(
        ServiceUnavailable(
            f"HyperID timed out (no complete answer within {budget:g} s)",
            call=call,
            transaction_id=transaction_id,
        ),
        transient=True,
        reason="timeout",
    )


class _Handoff:
    """Who gets an exchange's outcome: the caller until it gives up, then ``late``."""

    _lock = threading.Lock()
    #: Exchanges going on past their deadline, in the whole process.
    _lingering = 0

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.lingering = False
        self._outcome: Answer | Failure | None = None
        self._abandoned = False
        self._ended = threading.Event()

    def deliver(self, outcome: Answer | Failure) -> bool:
        """Hand ``outcome`` to the caller; False if the caller gave up already."""
        with self._lock:
            if self._abandoned:
                return False
            self._outcome = outcome
        self._ended.set()
        return True

    def wait(self, seconds: float) -> Answer | Failure | None:
        """The outcome within ``seconds``; else None, and the exchange goes on
        (``lingering``) if there is room for one more."""
        self._ended.wait(seconds)
        with self._lock:
            if self._outcome is None:
                self._abandoned = True
                cls = type(self)
                if cls._lingering < MAX_LATE_EXCHANGES:
                    cls._lingering += 1
                    self.lingering = True
            return self._outcome

    def finish(self) -> None:
        with self._lock:
            if self.lingering:
                type(self)._lingering -= 1
                self.lingering = False


# --- secrets: wrapped on the way in, revealed only into the request ----------------------


@sensitive_variables("value")
def bearer(value: object) -> Secret | None:
    """``value`` wrapped, when it has the shape of a bearer token; else None."""
    if isinstance(value, str):
        value = Secret(value)
    if isinstance(value, Secret) and BEARER_RE.fullmatch(value.reveal()):
        return value
    return None


@sensitive_variables("value")
def optional_secret(value: object, name: str) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    kind = type(value).__name__
    del value  # the frame travels with the exception
    raise TypeError(f"{name} must be a str or a Secret, not {kind}")


class BearerAuth(AuthBase):
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


class FormPost(AuthBase):
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


def detached(error: HyperIDError) -> HyperIDError:
    """``error``, stripped of the frames and exceptions it picked up where it was made.

    Raising an exception again appends to its traceback, and its context keeps the
    exception it replaced: both would carry frames that held the request or answer.
    """
    error.__cause__ = None
    error.__context__ = None
    return error.with_traceback(None)


# --- failures and reading ----------------------------------------------------------


def transport_failure(
    err: requests.RequestException, call: str, transaction_id: int | None, deadline: Deadline
) -> Failure:
    # requests keeps the prepared request (Authorization header included) on its
    # exceptions; drop it so that nothing downstream can log the token.
    err.request = None
    err.response = None
    reason = "timeout"
    if deadline.passed():
        message = f"HyperID timed out (no complete answer within {deadline.budget:g} s)"
    elif isinstance(err, requests.Timeout):
        message = f"HyperID timed out ({type(err).__name__})"
    else:
        message = f"HyperID could not be reached ({type(err).__name__})"
        reason = "unreachable"
    not_sent = _not_sent(err)
    return Failure(
        ServiceUnavailable(message, call=call, transaction_id=transaction_id, no_effect=not_sent),
        transient=True,
        not_sent=not_sent,
        reason=reason,
    )


def unexpected_failure(
    err: Exception, call: str, transaction_id: int | None, deadline: Deadline
) -> Failure:
    """An exception requests does not wrap: a library bug, or a header http.client refused.

    Reported as ServiceUnavailable, like any failure to complete the exchange: the
    answer was not wrong, there was none, and the caller's answer to "try again
    later" is the safe one. ProtocolError would blame HyperID's response. Never retried
    here, unless the deadline caused it: a bug would only fail again, and the
    request may have been sent. Logged by class and place only; the message, like the
    frames' variables, may hold the request's headers.
    """
    kind = type(err).__name__
    if deadline.passed():
        logger.debug("HyperID %s: %s after the deadline cut the connection", call, kind)
        return Failure(
            ServiceUnavailable(
                f"HyperID timed out (no complete answer within {deadline.budget:g} s)",
                call=call,
                transaction_id=transaction_id,
            ),
            transient=True,
            reason="timeout",
        )
    logger.error(
        "HyperID %s: unexpected %s raised inside the HTTP client (%s)",
        call,
        kind,
        _raised_at(err),
    )
    return Failure(
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
def read_body(
    response: requests.Response, call: str, transaction_id: int | None, deadline: Deadline
) -> bytes | Failure:
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
                return Failure(
                    ProtocolError(
                        f"answer larger than {MAX_BODY_BYTES} bytes",
                        call=call,
                        http_status=response.status_code,
                        transaction_id=transaction_id,
                    ),
                    reason="protocol_error",
                )
            chunks.append(chunk)
    except requests.RequestException as err:
        return transport_failure(err, call, transaction_id, deadline)
    except Exception as err:
        return unexpected_failure(err, call, transaction_id, deadline)
    return Failure(
        ServiceUnavailable(
            f"HyperID timed out (no complete answer within {deadline.budget:g} s)",
            call=call,
            transaction_id=transaction_id,
        ),
        transient=True,
        reason="timeout",
    )


def _close(response: requests.Response, call: str) -> None:
    # The answer is read (or abandoned) already: failing to close is not the call's failure.
    try:
        response.close()
    except Exception as err:
        logger.debug("HyperID %s: %s while closing the answer", call, type(err).__name__)


#: The longest wait a ``Retry-After`` of HyperID's is read as (a day): a longer one,
#: or a date years ahead, is an answer nobody can wait for, not a reason to fail.
MAX_RETRY_AFTER = 24 * 60 * 60.0
_DELAY_SECONDS = re.compile(r"[0-9]+")


@sensitive_variables()
def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """HyperID's ``Retry-After`` in seconds (RFC 9110: ASCII digits, or an HTTP date),
    at most :data:`MAX_RETRY_AFTER`; None where it says nothing readable."""
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    # str.isdigit() and float() also take other scripts' digits ("\xb2", read from a
    # Latin-1 header, is one, and float() refuses it): only ASCII digits are seconds.
    if _DELAY_SECONDS.fullmatch(value):
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(max(0.0, (when - datetime.now(timezone.utc)).total_seconds()), MAX_RETRY_AFTER)


def new_adapter() -> DeadlineAdapter:
    # Retries are ours (they must know which calls are idempotent); a large pool lets
    # the concurrent poller keep its connections alive.
    return DeadlineAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
