"""HyperID's failures, one class per result code: transient, permanent, and the
app's own policy refusals; and the lookup of a (call, result) pair."""

from __future__ import annotations

import functools
import logging
from typing import ClassVar

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..constants import CANCEL, START, STATUS_GET, Result
from .base import (
    MISCONFIGURED,
    NO_AUTHENTICATOR,
    PERMANENT,
    POLICY,
    RATE_LIMITED,
    REAUTHENTICATE,
    HyperIDError,
)

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


# --- permanent: the same call fails again until something changes ---------------------------


class PermanentError(HyperIDError):
    """HyperID refused, or there is nothing usable to ask it with."""

    kind = PERMANENT
    retryable = False
    status_code = 502
    log_level: ClassVar[int | None] = None
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
    log_level = logging.ERROR
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
    code = RATE_LIMITED
    status_code = 429
    log_level: ClassVar[int | None] = None
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
