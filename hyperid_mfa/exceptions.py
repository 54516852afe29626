"""Every failure the app reports, one class per failure a caller may treat differently.

All of them derive from :class:`HyperIDError` and carry ``.result`` (HyperID's result
code, or ``None`` when HyperID gave none), ``.call`` (which HyperID call failed),
``.http_status`` and ``.transaction_id`` where known. Messages are built from those
fields only: no exception text ever contains an access or refresh token.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .constants import Result


class HyperIDError(Exception):
    """Base class of every HyperID failure."""

    #: The result code this class stands for (instances may carry another).
    default_result: int | None = None
    default_message = "HyperID request failed"
    #: Whether a failure of this kind certainly had no effect at HyperID: refused
    #: before anything was sent, or refused by HyperID's own answer. False where the
    #: call may have been carried out (a timeout, a lost or garbled answer, an HTTP
    #: error from a gateway): for a start, a push may then be on the phone.
    default_no_effect = False

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
        #: Seconds the caller should wait before trying again, when known.
        self.retry_after = retry_after
        self.no_effect = self.default_no_effect if no_effect is None else no_effect
        super().__init__(self.message)

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


class ServiceUnavailable(HyperIDError):
    """HyperID could not be reached, timed out, answered 5xx or result -1."""

    default_result = Result.SERVICE_UNAVAILABLE
    default_message = "HyperID is temporarily unavailable"


class InvalidParameters(HyperIDError):
    """The request was refused as malformed (-2), or refused locally before sending."""

    default_result = Result.INVALID_PARAMETERS
    default_message = "Invalid parameters for HyperID"
    default_no_effect = True


class AccessDenied(HyperIDError):
    """HyperID denied access (-3), typically a token without the mfa-client scope."""

    default_result = Result.ACCESS_DENIED
    default_message = "HyperID denied access"
    default_no_effect = True


class TokenExpired(HyperIDError):
    """The access token has expired (-4)."""

    default_result = Result.TOKEN_EXPIRED
    default_message = "The HyperID access token has expired"
    default_no_effect = True


class TokenInvalid(HyperIDError):
    """The access token is not valid (-5)."""

    default_result = Result.TOKEN_INVALID
    default_message = "The HyperID access token is invalid"
    default_no_effect = True


class TransactionNotFound(HyperIDError):
    """HyperID knows no transaction with this id for this user (-6)."""

    default_result = Result.TRANSACTION_NOT_FOUND
    default_message = "HyperID knows no such transaction"
    default_no_effect = True


class NoAuthenticatorDevice(HyperIDError):
    """The user has no HyperID Authenticator to send a push to (-7, start only)."""

    default_result = Result.NO_AUTHENTICATOR_DEVICE
    default_message = "The user has no HyperID Authenticator device"
    default_no_effect = True


class TemplateNotFound(HyperIDError):
    """The MFA template does not exist (-8, start only)."""

    default_result = Result.TEMPLATE_NOT_FOUND
    default_message = "HyperID does not know this MFA template"
    default_no_effect = True


class TransactionAlreadyCompleted(HyperIDError):
    """Cancel came too late: the user already answered (-9, cancel only)."""

    default_result = Result.TRANSACTION_ALREADY_COMPLETED
    default_message = "The HyperID transaction is already completed"
    default_no_effect = True


class ProtocolError(HyperIDError):
    """HyperID answered something the protocol does not allow.

    Not JSON, a missing field, a wrong type, an unknown status or result, another
    transaction_id than asked for. Such an answer is never read as an approval.
    """

    default_message = "HyperID answered outside the protocol"


class TokenUnavailable(HyperIDError):
    """No usable HyperID access token for this user: the user must sign in again.

    ``.result`` is the HyperID result that made the token unusable (-4 or -5) when
    one did, ``None`` when there was no token at all.
    """

    default_message = "No usable HyperID access token for this user"
    default_no_effect = True


class RateLimited(HyperIDError):
    """The user asked for more pushes than ``START_RATE_LIMIT`` allows.

    Raised before anything is sent to HyperID; ``.retry_after`` says when to retry.
    """

    default_message = "Too many MFA pushes for this user; try again later"
    default_no_effect = True


class HyperIDConfigurationError(ImproperlyConfigured):
    """The ``HYPERID_MFA`` setting is wrong (unknown key, bad value)."""


#: The exception class for each (call-independent) result code.
EXCEPTION_BY_RESULT: dict[int, type[HyperIDError]] = {
    Result.SERVICE_UNAVAILABLE: ServiceUnavailable,
    Result.INVALID_PARAMETERS: InvalidParameters,
    Result.ACCESS_DENIED: AccessDenied,
    Result.TOKEN_EXPIRED: TokenExpired,
    Result.TOKEN_INVALID: TokenInvalid,
    Result.TRANSACTION_NOT_FOUND: TransactionNotFound,
    Result.NO_AUTHENTICATOR_DEVICE: NoAuthenticatorDevice,
}
