"""HyperID's numbers, exactly as the HyperID documentation gives them.

``Result``, ``Status`` and ``CompleteResult`` hold the wire values of the MFA client
API. Nothing else belongs here: local states that HyperID never sends live on the
model (``MFARequest.State``).
"""

from __future__ import annotations

import enum


class Result(enum.IntEnum):
    """The ``result`` field of every HyperID MFA answer. Zero is success.

    -8 means "template not found" to ``start`` and "already expired" to ``cancel``;
    Python keeps the second name as an alias of the first.
    """

    SUCCESS = 0
    SERVICE_UNAVAILABLE = -1
    INVALID_PARAMETERS = -2
    ACCESS_DENIED = -3
    TOKEN_EXPIRED = -4
    TOKEN_INVALID = -5
    TRANSACTION_NOT_FOUND = -6
    # start/v2 only
    NO_AUTHENTICATOR_DEVICE = -7
    TEMPLATE_NOT_FOUND = -8
    # cancel only
    TRANSACTION_ALREADY_EXPIRED = -8
    TRANSACTION_ALREADY_COMPLETED = -9
    TRANSACTION_ALREADY_CANCELED = -10


class Status(enum.IntEnum):
    """``transaction_status`` of status-get. 3 is not documented and is never valid."""

    PENDING = 0
    COMPLETED = 1
    EXPIRED = 2
    CANCELED = 4


class CompleteResult(enum.IntEnum):
    """``transaction_complete_result``: meaningful only when the status is COMPLETED."""

    APPROVED = 0
    DENIED = 1


# The names of HyperID's calls, as errors and logs name them. Which result codes each
# call may answer is declared by the exception classes (hyperid_mfa.exceptions).
STATUS_GET = "status-get"
START = "start"
CANCEL = "cancel"
AVAILABILITY = "availability"
TOKEN = "token"  # noqa: S105 - the OIDC token endpoint's name, not a secret


def is_approval(status: int | None, complete_result: int | None) -> bool:
    """Whether a transaction's status and complete result say "approved": completed,
    and approved. The one definition; every other reads it."""
    return status == Status.COMPLETED and complete_result == CompleteResult.APPROVED


#: Statuses after which HyperID never changes a transaction again.
TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.EXPIRED, Status.CANCELED})

#: The MFA approve/deny template of start/v2.
DEFAULT_TEMPLATE_ID = 4

#: transaction_id bounds: a positive signed 64-bit integer.
TRANSACTION_ID_MIN = 1
TRANSACTION_ID_MAX = 2**63 - 1

#: The scope an access token needs for every MFA client call.
MFA_SCOPE = "mfa-client"

#: HyperID's issuers (OpenID Connect). The token endpoint hangs below each.
PRODUCTION_ISSUER = "https://login.hypersecureid.com/auth/realms/HyperID"
SANDBOX_ISSUER = "https://login-sandbox.hypersecureid.com/auth/realms/HyperID"
PRODUCTION_API_BASE_URL = "https://api.hypersecureid.com"

# Paths of the four MFA client calls, relative to the API base URL.
STATUS_GET_PATH = "/mfa-client/transaction/status-get"
START_PATH = "/mfa-client/transaction/start/v2"
CANCEL_PATH = "/mfa-client/transaction/cancel"
AVAILABILITY_PATH = "/mfa-client/availability-check"
#: Relative to the issuer.
TOKEN_ENDPOINT_PATH = "/protocol/openid-connect/token"  # noqa: S105 - a path
