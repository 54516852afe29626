"""The MFA request lifecycle: the only module that combines client, tokens, models and signals.

Views, the decorator, the admin, commands and tasks call these functions. Every
state change is one conditional UPDATE, so it happens once however many threads or
processes race for it, and its signals are sent once, by the winner.

Fail closed: only a validated HyperID answer of completed + approved turns a request
into an approval; every error leaves a pending request pending, with the error
recorded in ``last_error``.
"""

from __future__ import annotations

import logging
import queue
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext

from . import audit, ratelimit, signals
from .client import HyperIDClient, get_client
from .conf import mfa_settings
from .constants import CompleteResult, Result, Status
from .exceptions import (
    HyperIDError,
    ProtocolError,
    RateLimited,
    TokenExpired,
    TokenInvalid,
    TokenUnavailable,
    TransactionAlreadyCompleted,
    TransactionNotFound,
)
from .models import (
    MFARequest,
    MFARequestQuerySet,
    RequestStatus,
    State,
    UserModel,
    database_now,
    seconds_ago,
    storable_result,
)
from .sensitive import Secret
from .tokens import get_token_provider

logger = logging.getLogger("hyperid_mfa")

T = TypeVar("T")

MAX_QUESTION_LENGTH = MFARequest._meta.get_field("question").max_length or 500
MAX_ACTION_LENGTH = MFARequest._meta.get_field("action").max_length or 200
#: Rows claimed per transaction by the poller.
POLL_BATCH_SIZE = 200
#: Best-effort cancels (after local expiry or a user's cancel) are tried once.
_best_effort_client = HyperIDClient(max_retries=0)


def new_code() -> str:
    """The two-digit number the user matches on the phone: uniform over 00..99."""
    return f"{secrets.randbelow(100):02d}"


def default_question(action: str) -> str:
    return gettext("Approve: %(action)s?") % {"action": action}


def _with_token(
    user: UserModel, call: Callable[[Secret], T], tokens: _RoundTokens | None = None
) -> T:
    """Run ``call`` with the user's access token; on -4/-5 refresh it once and retry.

    The token travels as a :class:`Secret`, so that no frame of a traceback shows it.
    """
    provider = get_token_provider()
    try:
        return call(
            tokens.get(user) if tokens is not None else Secret(provider.get_access_token(user))
        )
    except (TokenExpired, TokenInvalid):
        if tokens is not None:
            tokens.forget(user)
    token = Secret(provider.refresh_access_token(user))
    try:
        return call(token)
    except (TokenExpired, TokenInvalid) as err:
        raise TokenUnavailable(
            "HyperID refused the refreshed access token too",
            result=err.result,
            call=err.call,
            transaction_id=err.transaction_id,
        ) from None


# --- starting -------------------------------------------------------------------------


def _check_cooldown(user: UserModel, now: datetime) -> None:
    """Raise :class:`RateLimited` if the user denied a push less than
    ``DENIAL_COOLDOWN`` seconds ago (``now`` is the database's clock)."""
    cooldown = mfa_settings.DENIAL_COOLDOWN
    if not cooldown:
        return
    since = now - timedelta(seconds=cooldown)
    last_denial = (
        MFARequest.objects.filter(
            user=user,
            status=RequestStatus.COMPLETED,
            complete_result=CompleteResult.DENIED,
            completed_at__gt=since,
        )
        .order_by("-completed_at")
        .values_list("completed_at", flat=True)
        .first()
    )
    if last_denial is not None:
        wait = (last_denial - since).total_seconds()
        audit.log("refused: cooldown after a denial", user_id=user.pk)
        raise RateLimited(
            "A push was just denied; wait before asking again",
            retry_after=max(1, int(wait) + 1),
        )


def _reserve_push(user: UserModel, now: datetime) -> ratelimit.Reservation:
    """Take one of the user's push slots, or raise :class:`RateLimited`."""
    _check_cooldown(user, now)
    reservation = ratelimit.reserve(user.pk, now=now.timestamp())
    if not reservation.allowed:
        audit.log("refused: push rate limit", user_id=user.pk)
        raise RateLimited(retry_after=reservation.retry_after)
    return reservation


def start_request(
    user: UserModel,
    action: str,
    *,
    question: str | None = None,
    fingerprint: str = "",
) -> MFARequest:
    """Send a push to the user's HyperID Authenticator and record it, pending.

    The push is counted against ``START_RATE_LIMIT`` before it is sent. Raises
    :class:`RateLimited` (nothing sent), :class:`TokenUnavailable`, or the
    :class:`HyperIDError` of a failed start. A start that certainly had no effect
    at HyperID gives its slot back; one whose answer was lost or garbled keeps it
    (the push may be on the phone) and is withdrawn where the answer still named
    its transaction.
    """
    if not isinstance(action, str) or not action.strip() or len(action) > MAX_ACTION_LENGTH:
        raise ValueError(
            f"action must be a non-empty string of at most {MAX_ACTION_LENGTH} characters"
        )
    text = (question if question is not None else default_question(action)).strip()
    if not text:
        raise ValueError("question must not be empty")
    if len(text) > MAX_QUESTION_LENGTH:
        text = text[: MAX_QUESTION_LENGTH - 1] + "…"
    now = database_now()
    reservation = _reserve_push(user, now)
    code = new_code()
    client = get_client()
    try:
        transaction_id = _with_token(
            user, lambda token: client.start_transaction(token, question=text, code=code)
        )
    except HyperIDError as err:
        if err.no_effect:
            reservation.release()
        else:
            _start_outcome_unknown(user, action, err)
        raise
    # Any other exception leaves the slot taken: whether the push went out is unknown.
    try:
        with transaction.atomic(using=router.db_for_write(MFARequest)):
            mfa_request = MFARequest.objects.create(
                user=user,
                transaction_id=transaction_id,
                action=action,
                question=text,
                code=code,
                fingerprint=fingerprint,
                created_at=now,
                expires_at=now + timedelta(seconds=mfa_settings.REQUEST_TTL),
                last_result=Result.SUCCESS,
            )
    except IntegrityError:
        # HyperID handed out a transaction_id we already hold: trust neither.
        raise ProtocolError(
            "HyperID returned a transaction_id that is already in use",
            call="start",
            transaction_id=transaction_id,
        ) from None
    audit.log("started", mfa_request=mfa_request)
    signals.mfa_request_started.send(sender=MFARequest, mfa_request=mfa_request)
    return mfa_request


def _start_outcome_unknown(user: UserModel, action: str, err: HyperIDError) -> None:
    """A start whose answer was lost: the push may be on the phone. It keeps its
    slot in the push limit; where the answer still named a transaction, the push
    is withdrawn, since nothing here will ever follow it."""
    logger.warning(
        "HyperID's answer to a start for user %s was lost (%s): a push may have reached "
        "the phone; it counts against START_RATE_LIMIT",
        user.pk,
        err,
    )
    audit.log(f"start outcome unknown ({action}): the push may have been sent", user_id=user.pk)
    orphan = err.transaction_id
    if orphan is None:
        return
    try:
        _with_token(user, lambda token: _best_effort_client.cancel_transaction(token, orphan))
    except HyperIDError as cancel_err:
        logger.info("Could not withdraw the orphaned push %s: %s", orphan, cancel_err)
    else:
        audit.log(f"withdrew the orphaned push {orphan}", user_id=user.pk)


# --- following a request ----------------------------------------------------------------


def refresh_request(mfa_request: MFARequest, *, force: bool = False) -> MFARequest:
    """Bring a pending request up to date with HyperID and return it.

    No HTTP for a finished request. At most one status-get per request per
    ``MIN_REFRESH_INTERVAL`` whoever calls (``force`` skips the interval, not the
    claim): the caller that wins a conditional UPDATE of ``last_checked_at`` asks
    HyperID, the others read the row as it stands. Past ``expires_at`` the request
    expires locally and the push is withdrawn (best effort). Times are the
    database's.

    Raises the :class:`HyperIDError` of a failed check after recording it; the
    request stays pending.
    """
    if mfa_request.is_terminal:
        return mfa_request
    if _looks_expired(mfa_request) and _expire_locally(mfa_request):
        return mfa_request
    if not mfa_request.is_pending:
        return mfa_request
    if not _claim(mfa_request, force=force):
        mfa_request.refresh_from_db()
        return mfa_request
    return _ask_hyperid(mfa_request)


def _looks_expired(mfa_request: MFARequest) -> bool:
    # The local clock only suggests: the expiring UPDATE checks the database's.
    return timezone.now() >= mfa_request.expires_at


def _claim(mfa_request: MFARequest, *, force: bool) -> bool:
    rows = MFARequest.objects.filter(pk=mfa_request.pk, status=RequestStatus.PENDING)
    if not force:
        gap = mfa_settings.MIN_REFRESH_INTERVAL
        checked = mfa_request.last_checked_at
        now = timezone.now()
        if checked is not None and now - timedelta(seconds=gap) < checked <= now:
            # A claim only ever moves last_checked_at forward, so the row's is at least
            # this copy's: the conditional UPDATE could not match. Coalesced polls, the
            # common case under load, skip that round trip. (Where this server's clock
            # disagrees with the database's, the UPDATE below decides.)
            return False
        rows = rows.filter(
            Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=seconds_ago(gap))
        )
    if rows.update(last_checked_at=Now(), check_count=F("check_count") + 1) != 1:
        return False
    # The database holds its own clock's time; this copy keeps the local one, which
    # only the shortcut above reads.
    mfa_request.last_checked_at = timezone.now()
    mfa_request.check_count += 1
    return True


def _ask_hyperid(mfa_request: MFARequest, tokens: _RoundTokens | None = None) -> MFARequest:
    """The status-get of a claimed request, and the transition it implies."""
    client = get_client()
    try:
        answer = _with_token(
            mfa_request.user,
            lambda token: client.get_transaction_status(token, mfa_request.transaction_id),
            tokens,
        )
    except TransactionNotFound as err:
        _transition(mfa_request, RequestStatus.FAILED, result=err.result, error=str(err))
        return mfa_request
    except HyperIDError as err:
        _record_error(mfa_request, err)
        raise
    if answer.is_pending:
        if mfa_request.last_result != Result.SUCCESS or mfa_request.last_error:
            _record(mfa_request, result=Result.SUCCESS, error="")
        return mfa_request
    if answer.transaction_status == Status.COMPLETED:
        approved = answer.transaction_complete_result == CompleteResult.APPROVED
        completed = _transition(
            mfa_request,
            RequestStatus.COMPLETED,
            complete_result=answer.transaction_complete_result,
            result=Result.SUCCESS,
            # An approval learnt after expires_at does not count, by the database's clock.
            only_if=Q(expires_at__gt=Now()) if approved else None,
        )
        if not completed and mfa_request.is_pending:
            _expire_locally(mfa_request)
    elif answer.transaction_status == Status.EXPIRED:
        _transition(mfa_request, RequestStatus.EXPIRED, result=Result.SUCCESS)
    else:
        _transition(mfa_request, RequestStatus.CANCELED, result=Result.SUCCESS)
    return mfa_request


def _record(mfa_request: MFARequest, *, result: int | None, error: str) -> None:
    result = storable_result(result)
    MFARequest.objects.filter(pk=mfa_request.pk).update(last_result=result, last_error=error)
    mfa_request.last_result = result
    mfa_request.last_error = error


def _record_error(mfa_request: MFARequest, err: HyperIDError) -> None:
    _record(mfa_request, result=err.result, error=f"{type(err).__name__}: {err}"[:1000])
    logger.warning(
        "HyperID check failed: request=%s transaction=%s error=%s",
        mfa_request.pk,
        mfa_request.transaction_id,
        err,
    )


def _transition(
    mfa_request: MFARequest,
    status: int,
    *,
    complete_result: int | None = None,
    result: int | None = None,
    error: str = "",
    only_if: Q | None = None,
) -> bool:
    """Move a pending request to a final status, once; send its signals if we did it.

    ``only_if`` adds a condition the row must meet. ``completed_at`` is the
    database's time. Returns whether this call made the change; either way the
    copy shows the outcome afterwards.
    """
    old_state = mfa_request.state
    values = {
        "status": status,
        "complete_result": complete_result,
        "completed_at": Now(),
        "last_result": storable_result(result),
        "last_error": error,
    }
    rows = MFARequest.objects.filter(pk=mfa_request.pk, status=RequestStatus.PENDING)
    if only_if is not None:
        rows = rows.filter(only_if)
    if rows.update(**values) != 1:
        mfa_request.refresh_from_db()  # whoever won, or the condition: read the outcome
        return False
    for name, value in values.items():
        setattr(mfa_request, name, value)
    # The row holds the database's time; the copy, read by signal receivers, the local.
    mfa_request.completed_at = timezone.now()
    new_state = mfa_request.state
    audit.log(f"{old_state} -> {new_state}", mfa_request=mfa_request)
    signals.mfa_request_status_changed.send(
        sender=MFARequest, mfa_request=mfa_request, old_state=old_state, new_state=new_state
    )
    if new_state == State.APPROVED:
        signals.mfa_request_approved.send(sender=MFARequest, mfa_request=mfa_request)
    elif new_state == State.DENIED:
        signals.mfa_request_denied.send(sender=MFARequest, mfa_request=mfa_request)
    return True


def _expire_locally(mfa_request: MFARequest) -> bool:
    """Expire a pending request whose ``expires_at`` has passed by the database's
    clock, and withdraw its push; False if it has not expired (or is not pending)."""
    expired = _transition(
        mfa_request,
        RequestStatus.EXPIRED,
        error=gettext("Expired locally: not approved within REQUEST_TTL."),
        only_if=Q(expires_at__lte=Now()),
    )
    if expired:
        _withdraw_push(mfa_request)
    return expired


def _withdraw_push(mfa_request: MFARequest) -> None:
    """Cancel the push upstream, once and best effort: the request is already final."""
    try:
        _with_token(
            mfa_request.user,
            lambda token: _best_effort_client.cancel_transaction(token, mfa_request.transaction_id),
        )
    except TransactionAlreadyCompleted:
        pass  # the user answered just now; locally the request stays final
    except HyperIDError as err:
        logger.info("Could not withdraw the push of request %s upstream: %s", mfa_request.pk, err)


def cancel_request(mfa_request: MFARequest) -> MFARequest:
    """Cancel a pending request here, then withdraw its push at HyperID (best effort).

    The local cancel comes first so that an approval arriving meanwhile is ignored.
    A finished request is returned unchanged.
    """
    if mfa_request.is_pending and _transition(mfa_request, RequestStatus.CANCELED):
        # The transition's line reads like a decline on the phone; say who canceled.
        audit.log("canceled here, not on the phone", mfa_request=mfa_request)
        _withdraw_push(mfa_request)
    return mfa_request


# --- using an approval --------------------------------------------------------------------


def consume_approval(
    user: UserModel,
    action: str,
    fingerprint: str = "",
    max_age: float | None = None,
) -> MFARequest | None:
    """Use the user's approval of (action, fingerprint), once; None if there is none.

    An approval is usable for ``max_age`` seconds (default ``APPROVAL_MAX_AGE``)
    after it was learnt, by the database's clock. One conditional UPDATE marks it
    consumed: of N concurrent callers exactly one gets it.
    """
    usable = MFARequest.objects.bound_to(user, action, fingerprint).consumable(max_age=max_age)
    for candidate in usable.order_by("-completed_at")[:3]:
        # The same conditions again, in the UPDATE that spends it: the winner is
        # whoever's UPDATE matched.
        won = usable.filter(pk=candidate.pk).update(consumed_at=Now())
        if won:
            candidate.consumed_at = timezone.now()  # the row holds the database's time
            audit.log("consumed", mfa_request=candidate)
            signals.mfa_request_consumed.send(sender=MFARequest, mfa_request=candidate)
            return candidate
    return None


def pending_request(user: UserModel, action: str, fingerprint: str = "") -> MFARequest | None:
    """The newest pending request for (user, action, fingerprint), if any."""
    return (
        MFARequest.objects.bound_to(user, action, fingerprint)
        .pending()
        .order_by("-created_at")
        .first()
    )


# --- the poller ------------------------------------------------------------------------------


def refresh_pending(*, limit: int | None = None, concurrency: int = 4) -> int:
    """Refresh the pending requests that are due; returns how many were refreshed.

    Safe to run in many processes at once: each batch is claimed in a short
    transaction (``SELECT ... FOR UPDATE SKIP LOCKED`` where the database has it,
    then a conditional UPDATE of ``last_checked_at``), so no request is asked about
    twice within ``MIN_REFRESH_INTERVAL``. HyperID is called outside any
    transaction, from ``concurrency`` threads that live for the whole round while
    this thread claims the next batches. Each user's access token is read once per
    round. Failures are recorded on the request and do not stop the round.
    """
    tokens = _RoundTokens()
    # A round looks only at requests last checked before it began, so that it ends
    # even when MIN_REFRESH_INTERVAL is 0 and every request it checks is due again.
    round_started = database_now()
    batches = _claimed_batches(limit, round_started)
    if concurrency <= 1:
        done = 0
        for batch in batches:
            for item in batch:
                _refresh_one(item, tokens)
            done += len(batch)
        return done
    return _refresh_in_threads(batches, concurrency, tokens)


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


class _RoundTokens:
    """Access tokens of one poll round, by user: one token lookup (a query and a
    decryption) per user per round instead of one per request."""

    def __init__(self) -> None:
        self._tokens: dict[object, Secret] = {}
        self._lock = threading.Lock()

    def get(self, user: UserModel) -> Secret:
        with self._lock:
            token = self._tokens.get(user.pk)
        if token is None:
            token = Secret(get_token_provider().get_access_token(user))
            with self._lock:
                self._tokens[user.pk] = token
        return token

    def forget(self, user: UserModel) -> None:
        with self._lock:
            self._tokens.pop(user.pk, None)


def _refresh_one(mfa_request: MFARequest, tokens: _RoundTokens | None = None) -> None:
    try:
        if _looks_expired(mfa_request) and _expire_locally(mfa_request):
            return
        if mfa_request.is_pending:
            _ask_hyperid(mfa_request, tokens)
    except HyperIDError:
        pass  # recorded on the request by _ask_hyperid; the next round retries
    except Exception:
        logger.exception("Unexpected error refreshing MFA request %s", mfa_request.pk)


_DONE = None


def _refresh_in_threads(
    batches: Iterator[list[MFARequest]], concurrency: int, tokens: _RoundTokens
) -> int:
    # Bounded, so claiming runs at most a batch ahead of the workers.
    work: queue.Queue[MFARequest | None] = queue.Queue(maxsize=POLL_BATCH_SIZE)

    def worker() -> None:
        try:
            while (item := work.get()) is not _DONE:
                _refresh_one(item, tokens)
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


# --- operations support ------------------------------------------------------------------------

#: Rows deleted per statement by :func:`purge_finished`: short transactions, short locks.
PURGE_BATCH_SIZE = 1000

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | float | timedelta) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"`` (or seconds, or a timedelta) as a timedelta.

    A string must carry its unit: a bare ``"30"`` could mean seconds or days.
    Raises ``ValueError`` for anything else, and for zero or negative durations.
    """
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        duration = timedelta(seconds=value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        duration = timedelta(seconds=float(match[1]) * _DURATION_UNITS[match[2]])
    else:
        raise ValueError(
            f"cannot read the duration {value!r}: write a number and a unit (s, m, h or d), "
            "for example '30d'"
        )
    if duration <= timedelta(0):
        raise ValueError(f"the duration {value!r} must be positive")
    return duration


def finished_before(cutoff: datetime) -> MFARequestQuerySet:
    """Finished requests created before ``cutoff``: what retention may delete.

    Pending requests are never included, however old: the poller still follows them,
    and deleting one would leave a push on the user's phone that no row answers for.
    """
    return MFARequest.objects.finished().filter(created_at__lt=cutoff)


def purge_finished(older_than: str | float | timedelta, *, dry_run: bool = False) -> int:
    """Delete finished requests created more than ``older_than`` ago; return how many.

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
        count, _ = MFARequest.objects.finished().filter(pk__in=batch).delete()
        deleted += count
    logger.info("Purged %d finished MFA request(s) created before %s", deleted, cutoff.isoformat())
    return deleted


def refresh_by_id(mfa_request_id: uuid.UUID | str, *, force: bool = False) -> MFARequest | None:
    """:func:`refresh_request` for the request with this primary key; None if it is gone.

    For callers that hold an id rather than a row (a task scheduled after a push,
    whose request may have been purged or its user deleted meanwhile).
    """
    mfa_request = MFARequest.objects.select_related("user").filter(pk=mfa_request_id).first()
    if mfa_request is None:
        return None
    return refresh_request(mfa_request, force=force)
