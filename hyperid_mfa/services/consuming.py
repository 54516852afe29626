"""Consuming an approval: the gate's hot path, one statement.

One conditional ``UPDATE ... RETURNING`` finds the newest usable approval of (user,
action, fingerprint) and marks it consumed; its own condition (not yet consumed) decides a
race, so of N concurrent callers exactly one gets it. The statement is the ORM's,
compiled once per database and bound to each call's values: building and compiling
the query took longer than running it. Databases without ``RETURNING`` take two
steps (find, then a conditional ``UPDATE``). Reached through
:mod:`hyperid_mfa.services`.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.signals import setting_changed
from django.db import connections, models, router
from django.db.models import Subquery
from django.db.models.functions import Now
from django.utils import timezone

from .. import audit, signals
from ..conf import mfa_settings
from ..models import MFARequest, ReturningUpdate, UserModel, can_update_returning

# Values no call can have, to find each one's place among the compiled parameters.
_SENTINEL_ACTION = "\x00hyperid-mfa:action\x00"
_SENTINEL_FINGERPRINT = "\x00hyperid-mfa:fingerprint\x00"
_SENTINEL_AGE = timedelta(seconds=987_654_321, microseconds=123_457)


def announce_consumption(mfa_request: MFARequest) -> None:
    """What follows a consumption, whoever made it: the audit line and the signal."""
    audit.log("consumed", mfa_request=mfa_request)
    signals.mfa_request_consumed.send(sender=MFARequest, mfa_request=mfa_request)


def consume_approval(
    user: UserModel,
    action: str,
    fingerprint: str = "",
    max_age: float | None = None,
) -> MFARequest | None:
    """Use the user's approval of (action, fingerprint), once; None if there is none.

    An approval is usable for ``max_age`` seconds (default ``APPROVAL_MAX_AGE``)
    after it was learnt, by the database's clock. One conditional UPDATE finds and
    consumes it: of N concurrent callers exactly one gets it.
    """
    age = mfa_settings.APPROVAL_MAX_AGE if max_age is None else max_age
    using = router.db_for_write(MFARequest)
    statement = _statement(using)
    if statement is not None:
        rows = statement.run(user.pk, action, fingerprint, timedelta(seconds=age))
        if not rows:
            return None
        announce_consumption(rows[0])
        return rows[0]
    usable = MFARequest.objects.bound_to(user, action, fingerprint).consumable(max_age=age)
    for candidate in usable.order_by("-completed_at")[:3]:
        if usable.filter(pk=candidate.pk).update(consumed_at=Now()):
            candidate.consumed_at = timezone.now()  # the row holds the database's time
            announce_consumption(candidate)
            return candidate
    return None


def _consume_query(user_pk: Any, action: str, fingerprint: str, age: timedelta) -> Any:
    usable = MFARequest.objects.filter(
        user_id=user_pk, action=action, fingerprint=fingerprint
    ).consumable(max_age=age)
    newest = usable.order_by("-completed_at")
    # The UPDATE's own condition (not yet consumed) decides the race; the subquery only
    # points at the row.
    return MFARequest.objects.filter(
        pk__in=Subquery(newest.values("pk")[:1]), consumed_at__isnull=True
    )


@dataclass(frozen=True)
class _Statement:
    """The compiled consumption, and where each call's values go among its parameters."""

    update: ReturningUpdate
    slots: tuple[tuple[int, str], ...]  # (position, which value)
    prepare: dict[str, Any]  # which value -> the field that prepares it for the database

    def run(self, user_pk: Any, action: str, fingerprint: str, age: timedelta) -> list[Any]:
        connection = connections[self.update.using]
        given = {"user": user_pk, "action": action, "fingerprint": fingerprint, "age": age}
        params = list(self.update.params)
        for position, name in self.slots:
            params[position] = self.prepare[name].get_db_prep_value(given[name], connection)
        return self.update.run(params)


_statements: dict[str, _Statement | None] = {}
_statements_lock = threading.Lock()


def _statement(using: str) -> _Statement | None:
    """The consumption compiled for ``using``; None where it cannot be (no RETURNING, a user
    key of a kind without a sentinel, parameters not found once each)."""
    if using not in _statements:
        with _statements_lock:
            if using not in _statements:
                _statements[using] = _compile(using)
    return _statements[using]


def _compile(using: str) -> _Statement | None:
    if not can_update_returning(using):
        return None
    user_key = MFARequest._meta.get_field("user").target_field
    user_sentinel = _sentinel_for(user_key)
    if user_sentinel is None:
        return None
    connection = connections[using]
    prepare: dict[str, Any] = {
        "user": user_key,
        "action": MFARequest._meta.get_field("action"),
        "fingerprint": MFARequest._meta.get_field("fingerprint"),
        "age": models.DurationField(),
    }
    sentinels = {
        "user": user_sentinel,
        "action": _SENTINEL_ACTION,
        "fingerprint": _SENTINEL_FINGERPRINT,
        "age": _SENTINEL_AGE,
    }
    query = _consume_query(user_sentinel, _SENTINEL_ACTION, _SENTINEL_FINGERPRINT, _SENTINEL_AGE)
    update = query.using(using).compile_update_returning(consumed_at=Now())
    slots = []
    for name, sentinel in sentinels.items():
        prepared = prepare[name].get_db_prep_value(sentinel, connection)
        positions = [i for i, param in enumerate(update.params) if param == prepared]
        if len(positions) != 1:
            return None  # the ORM wrote it otherwise: the general path, uncompiled
        slots.append((positions[0], name))
    return _Statement(update, tuple(slots), prepare)


def _sentinel_for(field: Any) -> Any:
    if isinstance(field, (models.AutoField, models.IntegerField)):
        return -876_543_210_987
    if isinstance(field, models.UUIDField):
        return uuid.UUID("00000000-dead-beef-0000-876543210987")
    if isinstance(field, models.CharField):
        return "\x00hyperid-mfa:user\x00"
    return None


def _forget(*, setting: str, **kwargs: Any) -> None:
    # A test may swap databases or routers; the statements are compiled again.
    if setting in ("DATABASES", "DATABASE_ROUTERS"):
        _statements.clear()


setting_changed.connect(_forget, dispatch_uid="hyperid_mfa.consuming.forget")
