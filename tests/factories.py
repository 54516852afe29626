"""Rows in known states, for tests that do not need HyperID to produce them."""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.utils import timezone

from hyperid_mfa.constants import CompleteResult
from hyperid_mfa.models import MFARequest, RequestStatus

_ids = itertools.count(10_000)

STATES = {
    "pending": {},
    "approved": {"status": RequestStatus.COMPLETED, "complete_result": CompleteResult.APPROVED},
    "denied": {"status": RequestStatus.COMPLETED, "complete_result": CompleteResult.DENIED},
    "expired": {"status": RequestStatus.EXPIRED},
    "canceled": {"status": RequestStatus.CANCELED},
    "failed": {"status": RequestStatus.FAILED},
}


def make_request(user, state="pending", *, action="payments.withdraw", fingerprint="", **fields):
    now = timezone.now()
    values = {
        "user": user,
        "transaction_id": next(_ids),
        "action": action,
        "question": "Withdraw 500 EUR?",
        "code": "42",
        "fingerprint": fingerprint,
        "expires_at": now + timedelta(seconds=300),
    }
    if state == "consumed":
        values.update(STATES["approved"], completed_at=now, consumed_at=now)
    else:
        values.update(STATES[state])
        if state != "pending":
            values["completed_at"] = now
    values.update(fields)
    return MFARequest.objects.create(**values)
