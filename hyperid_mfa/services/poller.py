"""The poller: follow every pending request, in as many workers as there are.

``hyperid_mfa_poll`` and the Celery task ``hyperid_mfa.refresh_pending`` run
:func:`refresh_pending`. Reached through :mod:`hyperid_mfa.services`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

from django.db import connections, router, transaction
from django.db.models import F, Q
from django.db.models.functions import Now

from ..adapter import get_adapter
from ..exceptions import DependencyUnavailable, HyperIDError
from ..models import MFARequest, RequestStatus, UserModel, database_now
from ..sensitive import Secret
from .lifecycle import ask_hyperid, expire_locally, looks_expired

logger = logging.getLogger("hyperid_mfa")

#: Rows claimed per transaction by the poller.
POLL_BATCH_SIZE = 200


#: Told of each request whose refresh failed, and why (from the round's threads).
OnFailure = Callable[[MFARequest, Exception], None]


def refresh_pending(
    *, limit: int | None = None, concurrency: int = 4, on_failure: OnFailure | None = None
) -> int:
    """Refresh the pending requests that are due; returns how many were asked about.

    Safe to run in many processes at once: each batch is claimed in a short
    transaction (``SELECT ... FOR UPDATE SKIP LOCKED`` where the database has it,
    then a conditional UPDATE of ``last_checked_at``), so no request is asked about
    twice within ``MIN_REFRESH_INTERVAL``. HyperID is called outside any
    transaction, from ``concurrency`` threads that live for the whole round while
    this thread claims the next batches. Each user's access token is read once per
    round. Failures are recorded on the request and do not stop the round;
    ``on_failure(mfa_request, error)``, if given, hears of each, from the thread
    that met it.
    """
    tokens = RoundTokens()
    # A round looks only at requests last checked before it began, so that it ends
    # even when MIN_REFRESH_INTERVAL is 0 and every request it checks is due again.
    round_started = database_now()
    batches = _claimed_batches(limit, round_started)
    if concurrency <= 1:
        done = 0
        for batch in batches:
            for item in batch:
                _refresh_one(item, tokens, on_failure)
            done += len(batch)
        return done
    return _refresh_in_threads(batches, concurrency, tokens, on_failure)


def _claimed_batches(limit: int | None, round_started: datetime) -> Iterator[list[MFARequest]]:
    done = 0
    while limit is None or done < limit:
        size = POLL_BATCH_SIZE if limit is None else min(POLL_BATCH_SIZE, limit - done)
        batch = _claim_batch(size, round_started)
        if not batch:
            return
        done += len(batch)
        yield batch


def _claim_batch(size: int, round_started: datetime) -> list[MFARequest]:
    using = router.db_for_write(MFARequest)
    with transaction.atomic(using=using):
        due = (
            MFARequest.objects.using(using)
            .due_for_refresh()
            .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=round_started))
        )
        if connections[using].features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(
            due.order_by(F("last_checked_at").asc(nulls_first=True)).values_list("pk", flat=True)[
                :size
            ]
        )
        if not ids:
            return []
        MFARequest.objects.using(using).filter(pk__in=ids, status=RequestStatus.PENDING).update(
            last_checked_at=Now(), check_count=F("check_count") + 1
        )
    return list(MFARequest.objects.using(using).filter(pk__in=ids).select_related("user"))


class RoundTokens:
    """Access tokens of one poll round, by user: one token lookup (a query and a
    decryption) per user per round instead of one per request."""

    def __init__(self) -> None:
        self._tokens: dict[object, Secret] = {}
        self._lock = threading.Lock()

    def get(self, user: UserModel) -> Secret:
        with self._lock:
            token = self._tokens.get(user.pk)
        if token is None:
            token = Secret(get_adapter().get_token_provider().get_access_token(user))
            with self._lock:
                self._tokens[user.pk] = token
        return token

    def forget(self, user: UserModel) -> None:
        with self._lock:
            self._tokens.pop(user.pk, None)


def _refresh_one(
    mfa_request: MFARequest,
    tokens: RoundTokens | None = None,
    on_failure: OnFailure | None = None,
) -> None:
    try:
        if looks_expired(mfa_request) and expire_locally(mfa_request):
            return
        if mfa_request.is_pending:
            ask_hyperid(mfa_request, tokens)
    except HyperIDError as err:
        # Recorded on the request by ask_hyperid; the next round retries.
        if on_failure is not None:
            on_failure(mfa_request, err)
    except DependencyUnavailable as err:
        # The token store's database failed or was busy: the next round retries.
        logger.warning("MFA request %s not refreshed: %s", mfa_request.pk, err)
        if on_failure is not None:
            on_failure(mfa_request, err)
    except Exception as err:
        logger.exception("Unexpected error refreshing MFA request %s", mfa_request.pk)
        if on_failure is not None:
            on_failure(mfa_request, err)


_DONE = None


def _refresh_in_threads(
    batches: Iterator[list[MFARequest]],
    concurrency: int,
    tokens: RoundTokens,
    on_failure: OnFailure | None,
) -> int:
    # Bounded, so claiming runs at most a batch ahead of the workers.
    work: queue.Queue[MFARequest | None] = queue.Queue(maxsize=POLL_BATCH_SIZE)

    def worker() -> None:
        try:
            while (item := work.get()) is not _DONE:
                _refresh_one(item, tokens, on_failure)
        finally:
            # Each thread opened its own connections; close them with the thread.
            connections.close_all()

    threads = [
        threading.Thread(target=worker, name=f"hyperid-mfa-poll-{n}", daemon=True)
        for n in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    done = 0
    try:
        for batch in batches:
            for item in batch:
                work.put(item)
            done += len(batch)
    finally:
        for _thread in threads:
            work.put(_DONE)
        for thread in threads:
            thread.join()
    return done
