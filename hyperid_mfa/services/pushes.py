"""Sending a push: the question, the code to match, the push limit, the outcome.

A push is counted against ``START_RATE_LIMIT`` before it is sent (see
:mod:`hyperid_mfa.services.ratelimit`), and given back only when HyperID certainly did not
send it. Reached through :mod:`hyperid_mfa.services`.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import secrets
import unicodedata
from datetime import datetime, timedelta

from django.db import IntegrityError, router, transaction
from django.utils.translation import gettext

from .. import audit, signals
from ..client.calls import get_client
from ..conf import mfa_settings, start_rate
from ..constants import TOKEN, CompleteResult, Result
from ..exceptions import (
    DenialCooldown,
    HyperIDError,
    ProtocolError,
    QuestionNotShowable,
    RateLimited,
)
from ..models import MFARequest, PushOutcome, RequestStatus, UserModel, database_now
from ..sensitive import Secret
from . import dependencies, ratelimit
from .lifecycle import replace_request, with_token, withdraw

logger = logging.getLogger("hyperid_mfa")

MAX_QUESTION_LENGTH = MFARequest._meta.get_field("question").max_length or 500
MAX_ACTION_LENGTH = MFARequest._meta.get_field("action").max_length or 200


def new_code() -> str:
    """The two-digit number the user matches on the phone: uniform over 00..99."""
    return f"{secrets.randbelow(100):02d}"


def default_question(action: str) -> str:
    return gettext("Approve: %(action)s?") % {"action": action}


# Unicode categories a question never carries: controls (Cc), format characters
# (Cf: bidi embeddings, overrides, isolates and marks, zero-width characters),
# surrogates (Cs), line and paragraph separators (Zl, Zp).
_BREAKS = frozenset({"Cc", "Zl", "Zp"})
_INVISIBLE = frozenset({"Cf", "Cs"})
_SPACES = re.compile(r"\s+")


def clean_question(question: str) -> str:
    """The question as the phone shows it, whoever wrote it (the gate's default, a
    ``question=``, a window's, the admin's): bidi and other invisible format
    characters removed, control characters and line breaks made spaces, runs of
    spaces made one, so that text cannot reorder, hide or push away the rest."""
    kept = []
    for char in question:
        category = unicodedata.category(char)
        if category in _INVISIBLE:
            continue
        kept.append(" " if category in _BREAKS else char)
    return _SPACES.sub(" ", "".join(kept)).strip()


def _fitting(question: str) -> str:
    """``question`` if HyperID can show it whole; a shortened question would hide a
    value, so a longer one is refused before any push (and any push slot)."""
    if len(question) <= MAX_QUESTION_LENGTH:
        return question
    raise QuestionNotShowable(
        f"the question has {len(question)} characters; HyperID shows at most {MAX_QUESTION_LENGTH}",
        hint=(
            "Pass question= to the gate (or return a shorter text from it): the default "
            "question names every value the approval binds, and these do not fit."
        ),
    )


def _check_cooldown(user: UserModel, now: datetime) -> None:
    """Raise :class:`DenialCooldown` if the user denied a push less than
    ``DENIAL_COOLDOWN`` seconds ago (``now`` is the database's clock)."""
    wait = _cooldown_wait(user, now)
    if wait is not None:
        audit.log("refused: cooldown after a denial", user_id=user.pk)
        raise DenialCooldown(retry_after=wait)


def _cooldown_wait(user: UserModel, now: datetime) -> int | None:
    """Seconds until the user's last denial leaves them a push; None where it does now."""
    cooldown = mfa_settings.DENIAL_COOLDOWN
    if not cooldown:
        return None
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
    if last_denial is None:
        return None
    return max(1, int((last_denial - since).total_seconds()) + 1)


def next_push_wait(user: UserModel) -> int | None:
    """Seconds until the user may be sent a new push, by the denial cooldown and the
    pushes recorded against ``START_RATE_LIMIT``; None where one may be sent now.

    What a page that ended without approval counts down before it offers to ask
    again, so that asking again is not answered by a refusal to wait.
    """
    now = database_now()
    waits = [wait for wait in (_cooldown_wait(user, now), _recorded_pushes_wait(user, now)) if wait]
    return max(waits) if waits else None


def _reserve_push(user: UserModel, now: datetime) -> ratelimit.Reservation:
    """Take one of the user's push slots, or raise :class:`RateLimited`."""
    _check_cooldown(user, now)
    wait = _recorded_pushes_wait(user, now)
    reservation = ratelimit.reserve(user.pk, now=now.timestamp()) if wait is None else None
    if reservation is None or not reservation.allowed:
        audit.log("refused: push rate limit", user_id=user.pk)
        raise RateLimited(retry_after=wait if reservation is None else reservation.retry_after)
    return reservation


def _recorded_pushes_wait(user: UserModel, now: datetime) -> int | None:
    """Seconds until the pushes recorded in the database leave the user a push within
    ``START_RATE_LIMIT``; None where they do now (``now`` is the database's clock).

    The cache's slots hold the limit between concurrent requests; but a cache forgets
    keys to make room (LocMemCache and the database cache cull past ``MAX_ENTRIES``,
    Memcached and an evicting Redis drop the least recently used), and whoever can make
    the site write other keys (failed sign-ins do) would free the slots. The pushes the
    database recorded in the period count whatever the cache forgot.
    """
    rate = start_rate()
    if rate is None:
        return None
    recent = list(
        MFARequest.objects.filter(user=user, created_at__gt=now - timedelta(seconds=rate.period))
        .order_by("-created_at")
        .values_list("created_at", flat=True)[: rate.count]
    )
    if len(recent) < rate.count:
        return None
    # Once the oldest of the newest ``count`` leaves the period, a push fits again.
    frees = recent[-1] + timedelta(seconds=rate.period)
    return max(1, math.ceil((frees - now).total_seconds()))


def start_request(
    user: UserModel,
    action: str,
    *,
    question: str | None = None,
    fingerprint: str = "",
    replace_twins: bool = False,
) -> MFARequest:
    """Send a push to the user's HyperID Authenticator and record it, pending.

    With ``replace_twins`` (the gate's way), the user's older pending pushes with the
    same action and question are withdrawn: one card on the phone per thing.

    The question is cleaned (:func:`clean_question`) and must fit whole: a longer
    one raises :class:`QuestionNotShowable` (a ``ValueError``) before anything is
    counted or sent.

    The push is counted against ``START_RATE_LIMIT`` before it is sent. Raises
    :class:`RateLimited` (nothing sent), :class:`CacheUnavailable` (the limit
    could not count: nothing sent), :class:`TokenUnavailable`, or the
    :class:`HyperIDError` of a failed start. A start that certainly had no effect
    at HyperID gives its slot back; one whose answer was lost or garbled keeps it
    (the push may be on the phone) and is withdrawn where the answer still named
    its transaction. A push sent but not recorded (the database failed) is
    withdrawn too, keeps its slot, and raises
    :class:`~hyperid_mfa.exceptions.DatabaseUnavailable`.
    """
    if not isinstance(action, str) or not action.strip() or len(action) > MAX_ACTION_LENGTH:
        raise ValueError(
            f"action must be a non-empty string of at most {MAX_ACTION_LENGTH} characters"
        )
    text = clean_question(question if question is not None else default_question(action))
    if not text:
        raise ValueError("question must not be empty")
    text = _fitting(text)
    now = database_now()
    try:
        reservation = _reserve_push(user, now)
    except RateLimited as refusal:
        _not_sent(user, action, refusal)
        raise
    code = new_code()
    client = get_client()
    late = functools.partial(_late_push, user.pk, action)
    tokens: list[Secret] = []

    def start(token: Secret) -> int:
        tokens.append(token)
        return client.start_transaction(token, question=text, code=code, on_late_push=late)

    try:
        transaction_id = with_token(user, start)
    except HyperIDError as err:
        # A failed token refresh comes before any start that could have sent a push.
        if err.no_effect or err.call == TOKEN:
            reservation.release()
        else:
            _start_outcome_unknown(user, action, err)
        _not_sent(user, action, err)
        raise
    except dependencies.failures():
        # The token could not be read or refreshed (the database failed): HyperID
        # was not asked to send anything after that.
        reservation.release()
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
        duplicate = ProtocolError(
            "HyperID returned a transaction_id that is already in use",
            call="start",
            transaction_id=transaction_id,
        )
        _not_sent(user, action, duplicate)
        raise duplicate from None
    except dependencies.DATABASE_ERRORS as err:
        _unrecorded(user, transaction_id, tokens[-1])
        raise dependencies.database_refusal(err) from err
    audit.log("started", mfa_request=mfa_request)
    signals.mfa_request_started.send(sender=MFARequest, mfa_request=mfa_request)
    if replace_twins:
        _withdraw_older_twins(mfa_request)
    return mfa_request


def _not_sent(user: UserModel, action: str, error: HyperIDError) -> None:
    """Say that a push did not go out (or may not have): ``mfa_push_not_sent``."""
    if isinstance(error, DenialCooldown):
        outcome = PushOutcome.COOLDOWN
    elif isinstance(error, RateLimited):
        outcome = PushOutcome.LIMITED
    else:
        outcome = PushOutcome.FAILED
    signals.mfa_push_not_sent.send(
        sender=MFARequest, user=user, action=action, outcome=outcome.value, error=error
    )


def _withdraw_older_twins(mfa_request: MFARequest) -> None:
    """Withdraw the user's older pending pushes that show the same card: the same
    action and question (started from another session, say, while a tab left behind
    still waits). The phone then holds one card per thing to approve."""
    twins = MFARequest.objects.filter(
        user=mfa_request.user,
        action=mfa_request.action,
        question=mfa_request.question,
        status=RequestStatus.PENDING,
        created_at__lte=mfa_request.created_at,
    ).exclude(pk=mfa_request.pk)
    for twin in twins:
        twin.user = mfa_request.user
        replace_request(twin, mfa_request)


def _unrecorded(user: UserModel, transaction_id: int, token: Secret) -> None:
    """A push HyperID sent that could not be recorded (the database failed): nothing
    here would ever follow it, so it is withdrawn, with the token that sent it (the
    stored one may be out of reach with the database). It keeps its slot."""
    withdrawn = withdraw(user, transaction_id, token=token)
    outcome = "withdrew" if withdrawn else "could not withdraw"
    audit.log(f"{outcome} the push {transaction_id}: it could not be recorded", user_id=user.pk)


def _start_outcome_unknown(user: UserModel, action: str, err: HyperIDError) -> None:
    """A start whose answer was lost: the push may be on the phone. It keeps its
    slot in the push limit; where the answer still named a transaction, the push
    is withdrawn, since nothing here will ever follow it."""
    logger.warning(
        "HyperID's response to a start for user %s was lost (%s): a push may have reached "
        "the phone; it counts against START_RATE_LIMIT",
        user.pk,
        err,
    )
    audit.log(f"start outcome unknown ({action}): the push may have been sent", user_id=user.pk)
    orphan = err.transaction_id
    if orphan is not None and withdraw(user, orphan):
        audit.log(f"withdrew the orphaned push {orphan}", user_id=user.pk)


def _late_push(user_id: object, action: str, transaction_id: int, withdrawn: bool) -> None:
    """The answer of a start whose outcome was unknown came after all, naming its push
    (the client withdrew it, or tried to; this runs in the client's background thread)."""
    if withdrawn:
        audit.log(
            f"withdrew the push {transaction_id} ({action}): its start answered after the deadline",
            user_id=user_id,
        )
    else:
        audit.log(
            f"could not withdraw the push {transaction_id} ({action}) whose start answered "
            "after the deadline: the user may still see it, and should deny it",
            user_id=user_id,
            level=logging.WARNING,
        )
