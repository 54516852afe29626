"""Celery tasks: follow pending MFA requests from workers instead of one poller process.

Needs Celery (``pip install "django-hyperid-mfa[celery]"``); importing this module
without it raises :class:`~hyperid_mfa.exceptions.MissingExtra`, which names the
extra, and nothing else in the app imports it unless ``REFRESH_AFTER_START`` is set.
The tasks are ``shared_task`` s, so they bind to the project's own Celery app;
``docs/operations.md`` shows a beat schedule.

- ``hyperid_mfa.refresh_pending``: the periodic task. Safe to run on many workers
  at once: each claims its batches with ``SELECT ... FOR UPDATE SKIP LOCKED``, so no
  request is asked about twice within ``MIN_REFRESH_INTERVAL``.
- ``hyperid_mfa.refresh_request``: one request, by id; what ``REFRESH_AFTER_START``
  schedules after each push.
- ``hyperid_mfa.purge_finished``: retention, like ``manage.py hyperid_mfa_purge``.

HyperID failures do not fail the tasks: they are recorded on the request
(``last_error``) and the next periodic run asks again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .exceptions import HyperIDError, MissingExtra

try:
    from celery import shared_task
except ImportError as err:
    raise MissingExtra("celery", __name__, err.name) from err

from . import services
from .models import State

logger = logging.getLogger("hyperid_mfa")

#: Default age for :func:`purge_finished`, as for ``hyperid_mfa_purge --older-than``.
DEFAULT_RETENTION = "30d"


def _task(name: str) -> Callable[[Callable[..., Any]], Any]:
    """``shared_task(name=...)``, typed: Celery ships no type information."""
    decorator: Callable[[Callable[..., Any]], Any] = shared_task(name=name)
    return decorator


@_task("hyperid_mfa.refresh_request")
def refresh_request(mfa_request_id: str) -> str | None:
    """Bring one request up to date with HyperID; return its state, None if it is gone.

    Respects ``MIN_REFRESH_INTERVAL`` like every other caller, so a scheduled refresh
    that meets a poller's fresh check costs no second HTTP call.
    """
    try:
        mfa_request = services.refresh_by_id(mfa_request_id)
    except HyperIDError as err:
        logger.info("MFA request %s: refresh failed, left pending: %s", mfa_request_id, err)
        return str(State.PENDING)
    return None if mfa_request is None else str(mfa_request.state)


@_task("hyperid_mfa.refresh_pending")
def refresh_pending(limit: int | None = None, concurrency: int = 4) -> int:
    """One poll round: refresh the pending requests that are due; return how many.

    ``limit`` bounds the round (a beat schedule should set it, so that one run never
    outlasts the schedule's interval by much); ``concurrency`` threads ask HyperID
    in parallel, each with its own database connection.
    """
    return services.refresh_pending(limit=limit, concurrency=concurrency)


@_task("hyperid_mfa.purge_finished")
def purge_finished(older_than: str | float = DEFAULT_RETENTION) -> int:
    """Delete finished requests older than ``older_than`` ("30d", "12h" or seconds)."""
    return services.purge_finished(older_than)
