"""Counting, for the dashboard, what leaves no request row: pushes not sent, and
HyperID calls that failed (:mod:`hyperid_mfa.models.activity`).

Receivers of ``mfa_push_not_sent`` and ``hyperid_call_finished``, connected by
``HyperIDMFAConfig.ready()``. Each adds one to the row of its hour: an UPDATE, and
an INSERT the first time in the hour (a concurrent INSERT that lost the race adds
to the winner's row). The count is the dashboard's: a database that refuses the
write loses the count, never the caller's answer, which is already about a failure.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, models, router, transaction
from django.db.models import F
from django.utils import timezone

from ..models import FailedCall, MFARequest, UnsentPush
from ..signals import hyperid_call_finished, mfa_push_not_sent

logger = logging.getLogger("hyperid_mfa")


def this_hour() -> datetime:
    """The start of the current hour, as the counts are keyed."""
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def count_unsent_push(sender: Any, user: Any, action: str, outcome: str, **kwargs: Any) -> None:
    _add_one(UnsentPush, hour=this_hour(), outcome=outcome, user_id=user.pk, action=action)


def count_failed_call(sender: Any, call: str, result: str, **kwargs: Any) -> None:
    if result != "success":
        _add_one(FailedCall, hour=this_hour(), result=result, call=call)


def _add_one(model: type[models.Model], **key: Any) -> None:
    using = router.db_for_write(model)
    rows = model._default_manager.using(using).filter(**key)
    try:
        # A savepoint where the caller holds a transaction: a refused write must not
        # break it.
        with transaction.atomic(using=using):
            if rows.update(count=F("count") + 1):
                return
            try:
                with transaction.atomic(using=using):
                    model._default_manager.using(using).create(count=1, **key)
            except IntegrityError:  # created meanwhile by another process
                rows.update(count=F("count") + 1)
    except DatabaseError as err:
        logger.warning(
            "Could not count %s for the admin's dashboard: %s",
            model._meta.verbose_name,
            type(err).__name__,
        )
    except Exception:
        # Where no database may be used at all (an async caller, a test without
        # one): the exception's text is not shown, it may come from anywhere.
        logger.debug("Did not count %s: no database here", model._meta.verbose_name)


def connect() -> None:
    mfa_push_not_sent.connect(
        count_unsent_push,
        sender=MFARequest,
        dispatch_uid="hyperid_mfa.dashboard.tallies.count_unsent_push",
    )
    # Any sender: the app's client and any other HyperIDClient (sent by class).
    hyperid_call_finished.connect(
        count_failed_call, dispatch_uid="hyperid_mfa.dashboard.tallies.count_failed_call"
    )
