"""The life of one MFA request: started, followed, canceled, its approval consumed.

Every state change is one conditional UPDATE, so it happens once however many
threads or processes race for it, and its signals are sent once, by the winner.
Fail closed: only a validated HyperID answer of completed + approved turns a request
into an approval; every error leaves a pending request pending, with the error
recorded in ``last_error``. Times that decide are the database's.

Reached through :mod:`hyperid_mfa.services`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol, TypeVar

from django.db import router
from django.db.models import F, Q, Subquery
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext

from .. import audit, signals
from ..adapter import get_adapter
from ..client.calls import HyperIDClient, get_client
from ..conf import mfa_settings
from ..constants import CompleteResult, Result, Status
from ..exceptions import (
    HyperIDError,
    TokenExpired,
    TokenInvalid,
    TokenUnavailable,
    TransactionAlreadyCompleted,
    TransactionNotFound,
)
from ..models import (
    MFARequest,
    RequestStatus,
    State,
    UserModel,
    can_update_returning,
    seconds_ago,
    storable_result,
)
from ..sensitive import Secret
from .consuming import announce_consumption, consume_approval

logger = logging.getLogger("hyperid_mfa")

T = TypeVar("T")


class TokenSource(Protocol):
    """Access tokens read once and reused (a poll round's); see ``with_token``."""

    def get(self, user: UserModel) -> Secret: ...

    def forget(self, user: UserModel) -> None: ...


#: Best-effort cancels (after local expiry or a user's cancel) are tried once.
_best_effort_client = HyperIDClient(max_retries=0)


def with_token(
    user: UserModel, call: Callable[[Secret], T], tokens: TokenSource | None = None
) -> T:
    """Run ``call`` with the user's access token; on -4/-5 refresh it once and retry.

    The token travels as a :class:`Secret`, so that no frame of a traceback shows it.
    """
    provider = get_adapter().get_token_provider()
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


# --- following a request ----------------------------------------------------------------


def refresh_request(
    mfa_request: MFARequest, *, force: bool = False, watched: bool = False
) -> MFARequest:
    """Bring a pending request up to date with HyperID and return it.

    No HTTP for a finished request. At most one status-get per request per
    ``MIN_REFRESH_INTERVAL`` whoever calls (``force`` skips the interval, not the
    claim): the caller that wins a conditional UPDATE of ``last_checked_at`` asks
    HyperID, the others read the row as it stands. ``watched``: the caller is someone
    waiting for the answer (a poll of the request), and the interval is
    ``WATCHED_REFRESH_INTERVAL`` instead (see :func:`refresh_interval`). Past
    ``expires_at`` the request expires locally and the push is withdrawn (best
    effort). Times are the database's.

    Raises the :class:`HyperIDError` of a failed check after recording it; the
    request stays pending.
    """
    if mfa_request.is_terminal:
        return mfa_request
    if looks_expired(mfa_request) and expire_locally(mfa_request):
        return mfa_request
    if not mfa_request.is_pending:
        return mfa_request
    if not _claim(mfa_request, force=force, gap=refresh_interval(watched=watched)):
        mfa_request.refresh_from_db()
        return mfa_request
    return ask_hyperid(mfa_request)


def refresh_interval(*, watched: bool) -> float:
    """Seconds between two status-gets of one pending request.

    ``MIN_REFRESH_INTERVAL`` for callers nobody waits on (the poller, Celery tasks);
    while someone waits (a page or client polling the request, the gated request
    sent again), ``WATCHED_REFRESH_INTERVAL``, never longer than the former. Every
    caller claims the same ``last_checked_at``, so a request that many wait on is
    still asked about once per interval, and the background callers, finding it
    checked recently, leave it to the waiters.
    """
    gap = float(mfa_settings.MIN_REFRESH_INTERVAL)
    if watched:
        return min(gap, float(mfa_settings.WATCHED_REFRESH_INTERVAL))
    return gap


def looks_expired(mfa_request: MFARequest) -> bool:
    # The local clock only suggests: the expiring UPDATE checks the database's.
    return timezone.now() >= mfa_request.expires_at


def _claim(mfa_request: MFARequest, *, force: bool, gap: float) -> bool:
    rows = MFARequest.objects.filter(pk=mfa_request.pk, status=RequestStatus.PENDING)
    if not force:
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


def ask_hyperid(
    mfa_request: MFARequest, tokens: TokenSource | None = None, *, consume: bool = False
) -> MFARequest:
    """The status-get of a claimed request, and the transition it implies.

    With ``consume``, an approval learnt now is also consumed, in the same UPDATE (the
    gate, which asked in order to run the view).
    """
    client = get_client()
    try:
        answer = with_token(
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
            consume=consume and approved,
        )
        if not completed and mfa_request.is_pending:
            expire_locally(mfa_request)
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
    consume: bool = False,
) -> bool:
    """Move a pending request to a final status, once; send its signals if we did it.

    ``only_if`` adds a condition the row must meet; ``consume`` also consumes the
    approval. ``completed_at`` is the database's time. Returns whether this call made
    the change; either way the copy shows the outcome afterwards.
    """
    old_state = mfa_request.state
    values = {
        "status": status,
        "complete_result": complete_result,
        "completed_at": Now(),
        "last_result": storable_result(result),
        "last_error": error,
    }
    if consume:
        values["consumed_at"] = Now()
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
    if consume:
        mfa_request.consumed_at = mfa_request.completed_at
    new_state = State.APPROVED if consume else mfa_request.state
    audit.log(f"{old_state} -> {new_state}", mfa_request=mfa_request)
    signals.mfa_request_status_changed.send(
        sender=MFARequest, mfa_request=mfa_request, old_state=old_state, new_state=new_state
    )
    if new_state == State.APPROVED:
        signals.mfa_request_approved.send(sender=MFARequest, mfa_request=mfa_request)
    elif new_state == State.DENIED:
        signals.mfa_request_denied.send(sender=MFARequest, mfa_request=mfa_request)
    if consume:
        announce_consumption(mfa_request)
    return True


def expire_locally(mfa_request: MFARequest) -> bool:
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
    withdraw(mfa_request.user, mfa_request.transaction_id)


def replace_request(mfa_request: MFARequest, newer: MFARequest) -> bool:
    """Withdraw a pending push that ``newer`` replaces; whether it did.

    At HyperID first: a push the user has already answered stays as it is (its page
    may be about to use the approval), and is learnt as usual.
    """
    if not mfa_request.is_pending or not withdraw(mfa_request.user, mfa_request.transaction_id):
        return False
    if not _transition(mfa_request, RequestStatus.CANCELED):
        return False
    audit.log(f"replaced by the newer push {newer.transaction_id}", mfa_request=mfa_request)
    return True


def withdraw(user: UserModel, transaction_id: int, *, token: Secret | None = None) -> bool:
    """Cancel a push at HyperID, once and best effort; whether it is gone from the phone.

    ``token``: the access token to cancel with, where the caller holds one (the
    token store may be out of reach); by default the user's, refreshed if refused.
    """
    try:
        if token is not None:
            _best_effort_client.cancel_transaction(token, transaction_id)
        else:
            with_token(
                user, lambda token: _best_effort_client.cancel_transaction(token, transaction_id)
            )
    except TransactionAlreadyCompleted:
        return False  # the user answered just now; locally the request stays final
    except HyperIDError as err:
        logger.info("Could not withdraw push %s upstream: %s", transaction_id, err)
        return False
    return True


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


def settle(
    user: UserModel, action: str, fingerprint: str = "", max_age: float | None = None
) -> tuple[MFARequest | None, bool]:
    """For the gate: consume a usable approval of (user, action, fingerprint), or bring
    its pending request up to date and consume the approval HyperID reports now.

    Returns ``(request, True)`` when an approval was consumed, ``(request, False)`` with
    the newest pending (or just finished) request otherwise, ``(None, False)`` when
    there is none. Costs one query when an approval is waiting; four when HyperID is
    asked and approves (claim, token, the UPDATE that completes and consumes it).
    """
    approval = consume_approval(user, action, fingerprint, max_age)
    if approval is not None:
        return approval, True
    claimed = _claim_newest_pending(user, action, fingerprint)
    if claimed is None:
        pending = pending_request(user, action, fingerprint)
        if pending is None:
            return None, False
        pending.user = user
        if looks_expired(pending):
            expire_locally(pending)
        return pending, False
    claimed.user = user  # the caller's: no query to read it again
    ask_hyperid(claimed, consume=True)
    return claimed, claimed.is_consumed


def _claim_newest_pending(user: UserModel, action: str, fingerprint: str) -> MFARequest | None:
    """Claim the status-get of the newest pending, unexpired request of the triple, if
    nobody asked about it within the watched interval (the user sent the gated
    request again: someone waits): the claimed row, or None."""
    using = router.db_for_write(MFARequest)
    if not can_update_returning(using):
        pending = pending_request(user, action, fingerprint)
        if (
            pending is None
            or looks_expired(pending)
            or not _claim(pending, force=False, gap=refresh_interval(watched=True))
        ):
            return None
        return pending
    gap = refresh_interval(watched=True)
    newest = (
        MFARequest.objects.bound_to(user, action, fingerprint)
        .pending()
        .filter(expires_at__gt=Now())
        .order_by("-created_at")
    )
    rows = MFARequest.objects.using(using).filter(
        Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=seconds_ago(gap)),
        pk__in=Subquery(newest.values("pk")[:1]),
        status=RequestStatus.PENDING,
    )
    claimed = rows.update_returning(last_checked_at=Now(), check_count=F("check_count") + 1)
    return claimed[0] if claimed else None


def pending_request(user: UserModel, action: str, fingerprint: str = "") -> MFARequest | None:
    """The newest pending request for (user, action, fingerprint), if any."""
    return (
        MFARequest.objects.bound_to(user, action, fingerprint)
        .pending()
        .order_by("-created_at")
        .first()
    )


def refresh_by_id(mfa_request_id: uuid.UUID | str, *, force: bool = False) -> MFARequest | None:
    """:func:`refresh_request` for the request with this primary key; None if it is gone.

    For callers that hold an id rather than a row (a task scheduled after a push,
    whose request may have been purged or its user deleted meanwhile).
    """
    mfa_request = MFARequest.objects.select_related("user").filter(pk=mfa_request_id).first()
    if mfa_request is None:
        return None
    return refresh_request(mfa_request, force=force)
