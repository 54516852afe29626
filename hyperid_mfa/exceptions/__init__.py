"""Every failure the app reports, and what each one means to the rest of the app.

A failure is a class that declares its meaning (``code``, ``status_code``,
``retryable``, ``user_message``, ``status_get_result``), the way DRF's ``Throttled``
carries ``status_code``: the gate, the API and the admin read these attributes and
never test which class they hold. HyperID's failures, one class per result code, are
in ``hyperid``; the others (a service the app needs, a request the gate cannot take,
the configuration, the answer raised inside a view) in ``local``; the base classes
and the answer codes in ``base``. docs/design.md, "Failures", has the table. No
exception text ever contains a token.
"""

from __future__ import annotations

from .base import (
    BAD_REQUEST,
    CROSS_SITE,
    MISCONFIGURED,
    NO_AUTHENTICATOR,
    NOT_AUTHENTICATED,
    PENDING,
    PERMANENT,
    POLICY,
    RATE_LIMITED,
    REAUTHENTICATE,
    TRANSIENT,
    UNAVAILABLE,
    HyperIDError,
    MFARefusal,
)
from .hyperid import (
    AccessDenied,
    DenialCooldown,
    InvalidParameters,
    NoAuthenticatorDevice,
    NoHyperIDToken,
    PermanentError,
    PolicyRefusal,
    ProtocolError,
    RateLimited,
    ServiceUnavailable,
    TemplateNotFound,
    TokenExpired,
    TokenInvalid,
    TokenUnavailable,
    TransactionAlreadyCanceled,
    TransactionAlreadyCompleted,
    TransactionAlreadyExpired,
    TransactionNotFound,
    TransientError,
    error_for,
    results_of,
)
from .local import (
    BrokerUnavailable,
    CacheUnavailable,
    CrossSiteRequest,
    DatabaseBusy,
    DatabaseUnavailable,
    DependencyUnavailable,
    HyperIDConfigurationError,
    MFAApprovalRequired,
    MiddlewareMissing,
    MissingExtra,
    QuestionNotShowable,
    RequestUnreadable,
    SiteMisconfigured,
    UndecryptableTokens,
    UnreadableBody,
)

__all__ = [
    "BAD_REQUEST",
    "CROSS_SITE",
    "MISCONFIGURED",
    "NOT_AUTHENTICATED",
    "NO_AUTHENTICATOR",
    "PENDING",
    "PERMANENT",
    "POLICY",
    "RATE_LIMITED",
    "REAUTHENTICATE",
    "TRANSIENT",
    "UNAVAILABLE",
    "AccessDenied",
    "BrokerUnavailable",
    "CacheUnavailable",
    "CrossSiteRequest",
    "DatabaseBusy",
    "DatabaseUnavailable",
    "DenialCooldown",
    "DependencyUnavailable",
    "HyperIDConfigurationError",
    "HyperIDError",
    "InvalidParameters",
    "MFAApprovalRequired",
    "MFARefusal",
    "MiddlewareMissing",
    "MissingExtra",
    "NoAuthenticatorDevice",
    "NoHyperIDToken",
    "PermanentError",
    "PolicyRefusal",
    "ProtocolError",
    "QuestionNotShowable",
    "RateLimited",
    "RequestUnreadable",
    "ServiceUnavailable",
    "SiteMisconfigured",
    "TemplateNotFound",
    "TokenExpired",
    "TokenInvalid",
    "TokenUnavailable",
    "TransactionAlreadyCanceled",
    "TransactionAlreadyCompleted",
    "TransactionAlreadyExpired",
    "TransactionNotFound",
    "TransientError",
    "UndecryptableTokens",
    "UnreadableBody",
    "error_for",
    "results_of",
]

# Tracebacks, reprs and pickles name each failure by its public path, as before the
# failures were split into modules: hyperid_mfa.exceptions.MissingExtra.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = __name__
del _name, _value
