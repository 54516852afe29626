"""The base of every refusal: the answer codes, the kinds, ``MFARefusal`` and
``HyperIDError``."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _

from ..constants import START, Result

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
    #: The level the gate logs the refusal at, in one line (None: not logged): ERROR
    #: where a service is down (the line names it and what to check) or where only the
    #: site's maintainers can act (the line says what to fix).
    log_level: ClassVar[int | None] = logging.ERROR

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
