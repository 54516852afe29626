"""Retention: deleting finished requests once they are old enough.

``hyperid_mfa_purge`` and the Celery task ``hyperid_mfa.purge_finished`` run
:func:`purge_finished`. Reached through :mod:`hyperid_mfa.services`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from ..client.wire import parse_duration
from ..models import FailedCall, MFARequest, MFARequestQuerySet, UnsentPush

__all__ = ["PURGE_BATCH_SIZE", "finished_before", "parse_duration", "purge_finished"]

logger = logging.getLogger("hyperid_mfa")

#: Rows deleted per statement by :func:`purge_finished`: short transactions, short locks.
PURGE_BATCH_SIZE = 1000


def finished_before(cutoff: datetime) -> MFARequestQuerySet:
    """Finished requests created before ``cutoff``: what retention may delete.

    Pending requests are never included, however old: the poller still follows them,
    and deleting one would leave a push on the user's phone that no row answers for.
    """
    return MFARequest.objects.finished().filter(created_at__lt=cutoff)


def purge_finished(older_than: str | float | timedelta, *, dry_run: bool = False) -> int:
    """Delete finished requests created more than ``older_than`` ago; return how many.

    The dashboard's hourly counts older than that (pushes not sent, failed HyperID
    calls: :mod:`hyperid_mfa.models.activity`) go too, uncounted.

    ``older_than`` is read by :func:`parse_duration`. With ``dry_run`` nothing is
    deleted and the count is of what would be. Deletes in batches of
    ``PURGE_BATCH_SIZE`` so that a large backlog never holds long locks.
    """
    cutoff = timezone.now() - parse_duration(older_than)
    rows = finished_before(cutoff)
    if dry_run:
        return rows.count()
    deleted = 0
    while True:
        batch = list(rows.values_list("pk", flat=True)[:PURGE_BATCH_SIZE])
        if not batch:
            break
        # The status test again: only finished rows, even if the query above were changed.
        _, per_model = MFARequest.objects.finished().filter(pk__in=batch).delete()
        # Requests only: the approval windows they opened go with them, uncounted.
        deleted += per_model.get(MFARequest._meta.label, 0)
    logger.info("Purged %d finished MFA request(s) created before %s", deleted, cutoff.isoformat())
    UnsentPush.objects.filter(hour__lt=cutoff).delete()
    FailedCall.objects.filter(hour__lt=cutoff).delete()
    return deleted
