"""The app's own signal receivers, connected by ``HyperIDMFAConfig.ready()``.

``schedule_refresh_after_start``: with ``REFRESH_AFTER_START`` set (seconds), each
new push schedules the ``hyperid_mfa.refresh_request`` Celery task that many
seconds later, so that an approval is learnt soon even when nobody is polling that
request. The task is sent when the transaction that created the request commits:
a worker must find the row.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import router, transaction

from .conf import mfa_settings
from .models import MFARequest
from .signals import mfa_request_started

logger = logging.getLogger("hyperid_mfa")

_celery_missing_reported = False


def schedule_refresh_after_start(sender: Any, mfa_request: MFARequest, **kwargs: Any) -> None:
    global _celery_missing_reported
    countdown = mfa_settings.REFRESH_AFTER_START
    if countdown is None:
        return
    try:
        from .tasks import refresh_request
    except ImportError:
        if not _celery_missing_reported:
            _celery_missing_reported = True
            logger.warning(
                "HYPERID_MFA['REFRESH_AFTER_START'] is set but Celery is not installed: "
                "no refresh is scheduled after a push."
            )
        return
    mfa_request_id = str(mfa_request.pk)

    def send() -> None:
        try:
            refresh_request.apply_async((mfa_request_id,), countdown=countdown)
        except Exception:
            # The push is out and the request recorded; a broker outage must not turn
            # that into an error page. The periodic poll still follows the request.
            logger.warning(
                "Could not schedule the refresh of MFA request %s", mfa_request_id, exc_info=True
            )

    transaction.on_commit(send, using=router.db_for_write(MFARequest))


def connect() -> None:
    mfa_request_started.connect(
        schedule_refresh_after_start,
        sender=MFARequest,
        dispatch_uid="hyperid_mfa.receivers.schedule_refresh_after_start",
    )
