"""The app's models: MFARequest (one HyperID push and its outcome), HyperIDToken (a
user's tokens, encrypted), ApprovalWindow (a while in which one approval lets a
scope's gated actions run), HyperIDAccount (the HyperID account that signs in as a
user), the dashboard's hourly counts of what leaves no request behind
(``activity``), and what they share (``database``).

Import them from here: ``from hyperid_mfa.models import MFARequest``.
"""

from .accounts import HyperIDAccount
from .activity import FailedCall, PushOutcome, UnsentPush
from .database import (
    SMALLINT_RANGE,
    ReturningQuerySet,
    ReturningUpdate,
    can_update_returning,
    database_now,
    seconds_ago,
    storable_result,
)
from .requests import (
    STATE_FILTERS,
    CompleteResultChoices,
    MFARequest,
    MFARequestQuerySet,
    RequestStatus,
    State,
    UserModel,
)
from .tokens import HyperIDToken
from .windows import (
    WINDOW_STATE_FILTERS,
    ApprovalWindow,
    ApprovalWindowQuerySet,
    WindowEnd,
    WindowState,
)

__all__ = [
    "SMALLINT_RANGE",
    "STATE_FILTERS",
    "WINDOW_STATE_FILTERS",
    "ApprovalWindow",
    "ApprovalWindowQuerySet",
    "CompleteResultChoices",
    "FailedCall",
    "HyperIDAccount",
    "HyperIDToken",
    "MFARequest",
    "MFARequestQuerySet",
    "PushOutcome",
    "RequestStatus",
    "ReturningQuerySet",
    "ReturningUpdate",
    "State",
    "UnsentPush",
    "UserModel",
    "WindowEnd",
    "WindowState",
    "can_update_returning",
    "database_now",
    "seconds_ago",
    "storable_result",
]
