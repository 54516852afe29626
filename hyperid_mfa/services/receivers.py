"""The app's own signal receivers, connected by ``HyperIDMFAConfig.ready()``.

``schedule_refresh_after_start``: with ``REFRESH_AFTER_START`` set (seconds), each
new push schedules the ``hyperid_mfa.refresh_request`` Celery task that many
seconds later, so that an approval is learnt soon even when nobody is polling that
request. The task is sent when the transaction that created the request commits:
a worker must find the row. A broker that cannot take the task (kombu's
``OperationalError``, once Celery's publish retries are consumed) is logged as one
ERROR line; the push stands. Any other error is a bug, and raised.

``end_windows_on_logout`` and ``end_windows_on_password_change``: approval windows
end when their user signs out of that session, or changes their password. The gate
would not use them anyway (the session key and the password's HMAC no longer
match); these receivers make the table, and the admin's list, say so.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import router, transaction
from django.db.models.signals import post_save

from ..conf import mfa_settings
from ..models import MFARequest
from ..signals import mfa_request_started
from . import dependencies
from .windows import end_session_windows, end_windows_after_password_change

logger = logging.getLogger("hyperid_mfa")

_celery_missing_reported = False


def schedule_refresh_after_start(sender: Any, mfa_request: MFARequest, **kwargs: Any) -> None:
    global _celery_missing_reported
    countdown = mfa_settings.REFRESH_AFTER_START
    if countdown is None:
        return
    try:
        from ..tasks import refresh_request
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
        except dependencies.broker_errors() as err:
            # The push is out and the request recorded; a broker outage must not turn
            # that into an error page. The page's polls and the periodic poll still
            # follow the request: the refresh is best effort.
            logger.error(
                "Could not schedule the refresh of MFA request %s: %s",
                mfa_request_id,
                dependencies.describe(dependencies.broker_refusal(err)),
            )

    transaction.on_commit(send, using=router.db_for_write(MFARequest))


def end_windows_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if user is not None and session is not None:
        end_session_windows(user, session.session_key)


def end_windows_on_password_change(
    sender: Any,
    instance: Any,
    created: bool = False,
    raw: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    # A save that cannot have changed the password (the last_login of every sign-in,
    # say) costs no query.
    if created or raw or (update_fields is not None and "password" not in update_fields):
        return
    end_windows_after_password_change(instance)


def connect() -> None:
    mfa_request_started.connect(
        schedule_refresh_after_start,
        sender=MFARequest,
        dispatch_uid="hyperid_mfa.receivers.schedule_refresh_after_start",
    )
    user_logged_out.connect(
        end_windows_on_logout, dispatch_uid="hyperid_mfa.receivers.end_windows_on_logout"
    )
    post_save.connect(
        end_windows_on_password_change,
        sender=settings.AUTH_USER_MODEL,
        dispatch_uid="hyperid_mfa.receivers.end_windows_on_password_change",
    )
