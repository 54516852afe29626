"""Every failure the app reports, and what each one means to the rest of the app.

A failure is a class that declares its meaning, the way DRF's ``Throttled`` carries
``status_code`` and ``default_code``: the gate, the API and the admin read these
attributes and never test which class they hold.

- ``code``: the gate's answer code (``mfa_unavailable``, ``mfa_reauthenticate``...);
- ``status_code``: the HTTP status of that answer;
- ``retryable``: whether the same request may succeed later (then the answer carries
  ``Retry-After``, and the client retries it where the call is idempotent);
- ``user_message``: what the user is told;
- ``status_get_result``: the result code the API's status-get answers for it.

Four kinds, one base class each:

- :class:`TransientError`: HyperID could not give an answer now (unreachable, timed
  out, result -1, an answer outside the protocol); the same call may work later.
  :class:`DependencyUnavailable` is its like for the other services the app needs
  (the cache, the database, the Celery broker), outside the HyperID failures.
- :class:`PermanentError`: HyperID answered no, or there is nothing usable to ask
  with; the same call fails again until something changes (the user signs in, the
  site's configuration is fixed).
- :class:`PolicyRefusal`: refused here, by a local policy (the push limit), before
  anything was sent.
- Programming and configuration errors are not refusals: a wrong setting is
  :class:`HyperIDConfigurationError`, an ``ImproperlyConfigured``; an optional part
  used without its extra is :class:`MissingExtra`, one too.

A HyperID result code is one class: it names its ``result`` and, when the code
means something only to some calls, those ``calls``; the client finds the class
for (call, result) in :func:`error_for` and accepts exactly the results
:func:`results_of` a call lists. Messages are built from the fields below only: no
exception text ever contains a token.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.exceptions import APIException

from .constants import CANCEL, START, STATUS_GET, Result

# The gate's answer codes (the JSON ``code``), one word per situation.
PENDING = "mfa_pending"
RATE_LIMITED = "mfa_rate_limited"
UNAVAILABLE = "mfa_unavailable"
REAUTHENTICATE = "mfa_reauthenticate"
NO_AUTHENTICATOR = "mfa_no_authenticator"
BAD_REQUEST = "mfa_bad_request"
CROSS_SITE = "mfa_cross_site"
MISCONFIGURED = "mfa_misconfigured"
NOT_AUTHENTICATED = "not_authenticated"

# What a failure is: see the module docstring.
TRANSIENT = "transient"
PERMANENT = "permanent"
POLICY = "policy"


class MFARefusal(Exception):
    """Anything that keeps a gated view from running, with its meaning attached."""

    code: ClassVar[str] = UNAVAILABLE
    status_code: ClassVar[int] = 503
    retryable: ClassVar[bool] = True
    user_message: ClassVar[Any] = _("HyperID cannot be reached right now. Try again in a moment.")
    #: The heading of the page that tells the user.
    user_title: ClassVar[Any] = _("Approval is unavailable right now")
    #: Seconds a client should wait before trying again, when known.
    retry_after: float | None = None
    #: For a refusal only the site's maintainers can fix: what to fix (logged).
    hint: ClassVar[str] = ""

    def user_text(self) -> str:
        """What the user is told (some messages take the failure's details)."""
        return str(self.user_message)

    @property
    def push_may_arrive(self) -> bool:
        """Whether a push may still reach the user's phone although none is followed
        here: the user should deny it if it does."""
        return False


class HyperIDError(MFARefusal):
    """Base class of every HyperID failure: by default, HyperID is unavailable.

    Carries ``.result`` (HyperID's result code, or ``None`` when HyperID gave none),
    ``.call`` (which HyperID call failed), ``.http_status`` and ``.transaction_id``
    where known, ``.retry_after`` when HyperID said when to retry, and ``.no_effect``.
    """

    kind: ClassVar[str] = TRANSIENT
    #: The result code this class stands for (instances may carry another), and the
    #: calls that may answer it (None: every call).
    default_result: ClassVar[int | None] = None
    calls: ClassVar[frozenset[str] | None] = None
    default_message: ClassVar[str] = "HyperID request failed"
    #: Whether a failure of this kind certainly had no effect at HyperID: refused
    #: before anything was sent, or refused by HyperID's own answer. False where the
    #: call may have been carried out (a timeout, a lost or garbled answer, an HTTP
    #: error from a gateway): for a start, a push may then be on the phone.
    default_no_effect: ClassVar[bool] = False
    #: The result an API client of status-get is given for this failure.
    default_status_get_result: ClassVar[int] = Result.SERVICE_UNAVAILABLE

    def __init__(
        self,
        message: str | None = None,
        *,
        result: int | None = None,
        call: str | None = None,
        http_status: int | None = None,
        transaction_id: int | None = None,
        retry_after: float | None = None,
        no_effect: bool | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.result = self.default_result if result is None else result
        self.call = call
        self.http_status = http_status
        self.transaction_id = transaction_id
        self.retry_after = retry_after
        self.no_effect = self.default_no_effect if no_effect is None else no_effect
        super().__init__(self.message)

    @property
    def status_get_result(self) -> int:
        return self.default_status_get_result

    @property
    def push_may_arrive(self) -> bool:
        """A start whose outcome is unknown (its answer lost, cut or garbled): HyperID
        may have sent the push."""
        return self.call == START and not self.no_effect

    def user_text(self) -> str:
        if self.push_may_arrive:
            return str(
                _(
                    "HyperID did not answer in time, so a push may still arrive on your "
                    "phone: if it does, deny it. Try again in a moment."
                )
            )
        return super().user_text()

    def __str__(self) -> str:
        context = []
        if self.call:
            context.append(f"call={self.call}")
        if self.result is not None:
            context.append(f"result={self.result}")
        if self.http_status is not None:
            context.append(f"http_status={self.http_status}")
        if self.transaction_id is not None:
            context.append(f"transaction_id={self.transaction_id}")
        return f"{self.message} ({', '.join(context)})" if context else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


# --- transient: try again later -----------------------------------------------------------


class TransientError(HyperIDError):
    """HyperID could not give an answer now; the same call may work later."""


class ServiceUnavailable(TransientError):
    """HyperID could not be reached, timed out, answered 5xx or result -1."""

    default_result = Result.SERVICE_UNAVAILABLE
    default_message = "HyperID is temporarily unavailable"


class ProtocolError(TransientError):
    """HyperID answered something the protocol does not allow.

    Not JSON, a missing field, a wrong type, an unknown status or result, another
    transaction_id than asked for. Such an answer is never read as an approval.
    """

    default_message = "HyperID answered outside the protocol"


# --- transient, but not HyperID: another service the app needs -------------------------------


class DependencyUnavailable(MFARefusal):
    """A service the app needs besides HyperID failed: the cache that counts pushes,
    the database, the Celery broker. Nothing was sent or consumed that could not be
    recorded; the same request may work once the service is back.

    ``dependency`` names the service, ``hint`` says what to check (both logged, in one
    ERROR line); the message names the driver's error, never a value it carried.
    :mod:`hyperid_mfa.dependencies` turns a driver's error into one of these.
    """

    #: The service, as log lines name it.
    dependency: ClassVar[str] = "a service the app needs"
    user_message = _("This action cannot be approved right now. Try again in a moment.")

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"{self.dependency} unavailable: {detail}")


class CacheUnavailable(DependencyUnavailable):
    """Django's cache (``CACHES['default']``) did not answer: the push limit cannot
    count, so no push is sent."""

    dependency = "cache"
    hint = (
        "Check that the server of CACHES['default'] (Redis, Memcached) is up and "
        "reachable from this host, and give its client a timeout (Redis: OPTIONS "
        "socket_timeout and socket_connect_timeout). No push is sent until it answers."
    )


class DatabaseUnavailable(DependencyUnavailable):
    """The database failed the statement (unreachable, connection lost, server
    restarting): whatever the statement was, the view does not run."""

    dependency = "database"
    hint = (
        "Check that the database server is up and reachable; Django reconnects on the "
        "next request (CONN_HEALTH_CHECKS = True checks a kept connection first)."
    )


class DatabaseBusy(DatabaseUnavailable):
    """The database gave up waiting for a lock (PostgreSQL's ``lock_timeout``,
    SQLite's busy timeout): another transaction held the row; nothing was changed."""

    hint = (
        "Another transaction held a lock the request needed until the lock wait timed "
        "out (PostgreSQL lock_timeout, SQLite's busy timeout). If this recurs, look for "
        "long transactions on the hyperid_mfa tables."
    )

    def __init__(self, detail: str, *, retry_after: float | None = 1) -> None:
        super().__init__(detail, retry_after=retry_after)


class BrokerUnavailable(DependencyUnavailable):
    """The Celery broker refused a task: the refresh ``REFRESH_AFTER_START`` schedules
    after a push is not sent (the push stands; polling follows it)."""

    dependency = "Celery broker"
    hint = (
        "Check that the broker of the project's Celery app (CELERY_BROKER_URL) is up and "
        "reachable. Until then pushes stand and are followed by polling alone."
    )


# --- permanent: the same call fails again until something changes ---------------------------


class PermanentError(HyperIDError):
    """HyperID refused, or there is nothing usable to ask it with."""

    kind = PERMANENT
    retryable = False
    status_code = 502
    user_message = _("HyperID refused this request.")
    user_title = _("Approval is not possible")
    default_no_effect = True


class _SignInAgain(PermanentError):
    """The user's HyperID token cannot be used: signing in again gives a new one."""

    code = REAUTHENTICATE
    status_code = 403
    user_message = _("Sign in with HyperID again to approve this action.")
    user_title = _("Sign in with HyperID again")


class _Misconfigured(PermanentError):
    """Only the site's maintainers can fix this; the log line says what to fix."""

    code = MISCONFIGURED
    status_code = 500
    user_message = _("This action cannot be approved: the site is not set up correctly.")


class InvalidParameters(_Misconfigured):
    """The request was refused as malformed (-2), or refused locally before sending."""

    default_result = Result.INVALID_PARAMETERS
    default_message = "Invalid parameters for HyperID"
    hint = (
        "HyperID refused a request as malformed: check HYPERID_MFA['TEMPLATE_ID'] and "
        "the questions' length; if both are right, report it as a bug of django-hyperid-mfa."
    )


class AccessDenied(_SignInAgain):
    """HyperID denied access (-3), typically a token without the mfa-client scope."""

    default_result = Result.ACCESS_DENIED
    default_message = "HyperID denied access"
    default_status_get_result = Result.ACCESS_DENIED


class TokenExpired(_SignInAgain):
    """The access token has expired (-4)."""

    default_result = Result.TOKEN_EXPIRED
    default_message = "The HyperID access token has expired"
    default_status_get_result = Result.TOKEN_EXPIRED


class TokenInvalid(_SignInAgain):
    """The access token is not valid (-5)."""

    default_result = Result.TOKEN_INVALID
    default_message = "The HyperID access token is invalid"
    default_status_get_result = Result.TOKEN_INVALID


class TransactionNotFound(PermanentError):
    """HyperID knows no transaction with this id for this user (-6)."""

    default_result = Result.TRANSACTION_NOT_FOUND
    calls = frozenset({STATUS_GET, CANCEL})
    default_message = "HyperID knows no such transaction"
    default_status_get_result = Result.TRANSACTION_NOT_FOUND


class NoAuthenticatorDevice(PermanentError):
    """The user has no HyperID Authenticator to send a push to (-7, start only)."""

    code = NO_AUTHENTICATOR
    status_code = 403
    user_message = _("Set up the HyperID Authenticator app to approve this action.")
    default_result = Result.NO_AUTHENTICATOR_DEVICE
    calls = frozenset({START})
    default_message = "The user has no HyperID Authenticator device"


class TemplateNotFound(_Misconfigured):
    """The MFA template does not exist (-8, start only)."""

    default_result = Result.TEMPLATE_NOT_FOUND
    calls = frozenset({START})
    default_message = "HyperID does not know this MFA template"
    hint = "Set HYPERID_MFA['TEMPLATE_ID'] to an MFA template of your HyperID client."


class TransactionAlreadyExpired(PermanentError):
    """Cancel came after HyperID expired the push (-8, cancel only): nothing to withdraw."""

    default_result = Result.TRANSACTION_ALREADY_EXPIRED
    calls = frozenset({CANCEL})
    default_message = "The HyperID transaction has already expired"


class TransactionAlreadyCompleted(PermanentError):
    """Cancel came too late: the user already answered (-9, cancel only)."""

    default_result = Result.TRANSACTION_ALREADY_COMPLETED
    calls = frozenset({CANCEL})
    default_message = "The HyperID transaction is already completed"


class TransactionAlreadyCanceled(PermanentError):
    """Cancel of a push already withdrawn (-10, cancel only): nothing to withdraw."""

    default_result = Result.TRANSACTION_ALREADY_CANCELED
    calls = frozenset({CANCEL})
    default_message = "The HyperID transaction is already canceled"


class TokenUnavailable(_SignInAgain):
    """No usable HyperID access token for this user: the user must sign in again.

    ``.result`` is the HyperID result that made the token unusable (-4 or -5) when
    one did, ``None`` when there was no token at all.
    """

    default_message = "No usable HyperID access token for this user"

    @property
    def status_get_result(self) -> int:
        # Expired when HyperID said so; otherwise invalid, "no token at all" included.
        expired = self.result == Result.TOKEN_EXPIRED
        return Result.TOKEN_EXPIRED if expired else Result.TOKEN_INVALID


class NoHyperIDToken(TokenUnavailable):
    """The user has never signed in with HyperID here: no token is stored for them.

    The same answer as :class:`TokenUnavailable` (``mfa_reauthenticate``, 403), worded
    for a first use: "Sign in with HyperID", not "again".
    """

    default_message = "no HyperID token is stored for this user"
    user_message = _("Sign in with HyperID to approve this action.")
    user_title = _("Sign in with HyperID")


# --- refused here, by policy ----------------------------------------------------------------


class PolicyRefusal(HyperIDError):
    """Refused by a local policy before anything was sent to HyperID."""

    kind = POLICY
    default_no_effect = True


class RateLimited(PolicyRefusal):
    """The user asked for more pushes than ``START_RATE_LIMIT`` allows.

    ``.retry_after`` says when to retry.
    """

    code = RATE_LIMITED
    status_code = 429
    user_message = _(
        "You asked for several approvals in a short time. Wait before asking for another."
    )
    user_title = _("Wait before asking again")
    default_message = "Too many MFA pushes for this user; try again later"


class DenialCooldown(RateLimited):
    """The user denied a push less than ``DENIAL_COOLDOWN`` seconds ago."""

    default_message = "A push was just denied; wait before asking again"
    user_title = _("You denied the last approval request")

    def user_text(self) -> str:
        seconds = int(self.retry_after or 0)
        return ngettext(
            "You denied the last approval request on your phone. "
            "Wait %(seconds)d second before asking again.",
            "You denied the last approval request on your phone. "
            "Wait %(seconds)d seconds before asking again.",
            seconds,
        ) % {"seconds": seconds}


# --- refused by the gate itself -------------------------------------------------------------


class RequestUnreadable(MFARefusal, ValueError):
    """The request cannot be read for binding, or lacks what the question needs.

    The message, if any, is for the user.
    """

    code = BAD_REQUEST
    status_code = 400
    retryable = False
    user_message = _("The request could not be read.")
    user_title = _("Approval is not possible")

    def user_text(self) -> str:
        return str(self.args[0]) if self.args else str(self.user_message)


class QuestionNotShowable(RequestUnreadable):
    """The phone's question cannot show what the approval binds: it is longer than
    HyperID shows, or a bound value is not text. Nothing is sent; ``hint`` (logged
    as an ERROR) tells the site's developers what to do."""

    user_message = _(
        "This request holds more than your phone can show for approval, "
        "so it cannot be approved as it is."
    )

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(message)
        self.hint = hint  # type: ignore[misc]

    def user_text(self) -> str:
        return str(self.user_message)


class CrossSiteRequest(MFARefusal):
    """Not a request the user made on this site's pages: another site's page sent it
    in the user's browser, or a link opened from outside the browser (a mail or chat
    app), or the browser prefetched it. Whoever chose the values, it was not the
    site: no push is sent and nothing is consumed. The user may start over from here."""

    code = CROSS_SITE
    status_code = 403
    retryable = False
    user_title = _("Did you mean to do this?")
    user_message = _(
        "This action was requested by another site, or loaded ahead by the browser, so "
        "it was not carried out. Continue from here only if you meant to do it: your "
        "phone will ask you to approve it."
    )


class SiteMisconfigured(MFARefusal):
    """The site cannot ask for approvals as it is set up; the log says what to fix."""

    code = MISCONFIGURED
    status_code = 500
    retryable = False
    user_message = _("This action cannot be approved: the site is not set up correctly.")
    user_title = _("Approval is not possible")


class HyperIDConfigurationError(ImproperlyConfigured):
    """The ``HYPERID_MFA`` setting is wrong (unknown key, bad value)."""


class MissingExtra(ImproperlyConfigured, ImportError):
    """An optional part of the app is used without the extra that installs what it needs.

    The message names the extra to install (``pip install "django-hyperid-mfa[celery]"``).
    Also an ``ImportError``, so that code trying an optional import with ``except
    ImportError`` still sees one.
    """

    def __init__(self, extra: str, needed_by: str, missing: str | None = None) -> None:
        self.extra = extra
        self.needed_by = needed_by
        what = f" ({missing} is not installed)" if missing else ""
        super().__init__(
            f"{needed_by} needs the [{extra}] extra{what}: "
            f'pip install "django-hyperid-mfa[{extra}]"',
            name=missing,
        )


class MiddlewareMissing(ImproperlyConfigured):
    """``require_approval`` was called in a plain Django view of a site without
    ``MFAApprovalMiddleware``: nothing would answer its :class:`MFAApprovalRequired`
    with the approval page, so nothing is sent or consumed. Django answers 500."""

    code = MISCONFIGURED
    status_code = 500


# --- the view may not run yet -----------------------------------------------------------------


class MFAApprovalRequired(APIException):
    """The gated action may not run now: carries the gate's decision and its answer.

    Raised by ``require_approval`` and by the DRF permission ``MFAApproved``. DRF
    answers it as any ``APIException``: its ``status_code``, ``detail`` as the JSON
    body (``{"code", "detail", "mfa_request"...}``) and ``Retry-After`` from ``wait``.
    In a plain Django view, ``MFAApprovalMiddleware`` answers it as the decorator
    would, with the approval page or JSON, from ``decision``.
    ``hyperid_mfa.rendering.approval_required(request, decision)`` makes one.
    """

    status_code = 403
    default_detail = _("Approval with HyperID is required.")
    default_code = PENDING

    def __init__(self, decision: Any, body: Mapping[str, Any]) -> None:
        super().__init__()
        #: What the gate decided (``hyperid_mfa.gate.Decision``).
        self.decision = decision
        self.status_code = decision.status
        # Set after __init__: APIException would turn numbers and None into strings.
        self.detail = dict(body)
        # DRF's exception handler turns ``wait`` into a Retry-After header.
        self.wait = decision.retry_after


# --- result codes ---------------------------------------------------------------------------


@functools.cache
def _result_classes() -> tuple[type[HyperIDError], ...]:
    found: list[type[HyperIDError]] = []
    pending: list[type[HyperIDError]] = [HyperIDError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.default_result is not None and cls.default_result != Result.SUCCESS:
            found.append(cls)
    return tuple(found)


def error_for(call: str, result: int) -> type[HyperIDError] | None:
    """The class of HyperID's ``result`` to ``call``; None if the call cannot answer it."""
    for cls in _result_classes():
        if cls.default_result == result and (cls.calls is None or call in cls.calls):
            return cls
    return None


@functools.cache
def results_of(call: str) -> frozenset[int]:
    """Every result ``call`` may answer: success and the codes of its classes."""
    return frozenset(
        {Result.SUCCESS}
        | {
            int(cls.default_result)
            for cls in _result_classes()
            if cls.default_result is not None and (cls.calls is None or call in cls.calls)
        }
    )
