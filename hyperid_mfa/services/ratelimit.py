"""Per-user limit on new pushes (``START_RATE_LIMIT``), kept in Django's cache.

A hard limit: **no span of the rate's period holds more pushes than its count.**
Each user has ``count`` slots, one cache key each. A push takes a free slot with
``cache.add()`` (which writes a key only where none is, atomically on Redis,
Memcached and the local-memory cache) and the key expires one period later (plus a
second, for caches whose clock counts whole seconds). A slot is taken again only
after its key expired, so the pushes one slot grants are at least a period apart,
and ``count`` slots grant at most ``count`` pushes in any span of a period. A push
is refused while every slot is taken, with the time until the first one frees as
its ``Retry-After``.

A slot is taken *before* the push is sent. The caller gives it back
(:meth:`Reservation.release`) only when HyperID certainly did not send the push; a
push whose answer was lost keeps its slot, because it may well be on the phone.

Where it holds: across processes with a shared cache whose ``add`` is atomic
(Redis, Memcached); per process with the local-memory cache; the database cache's
``add`` is atomic for a slot never taken, not for one whose key expired; the file
cache's is a read then a write. A cache that keeps nothing (``DummyCache``) cannot
hold a slot: pushes are refused as a misconfiguration rather than let through.
A cache may also forget a slot to make room for other keys; :mod:`hyperid_mfa.services.pushes`
counts the pushes the database recorded in the period as well.

A cache that fails (its server down, restarting or not answering in time) fails
closed too: :func:`reserve` raises
:class:`~hyperid_mfa.exceptions.CacheUnavailable` and no push is sent; a slot that
cannot be given back stays taken until it expires.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from ..conf import Rate, start_rate
from ..exceptions import CacheUnavailable, HyperIDConfigurationError
from . import dependencies

logger = logging.getLogger("hyperid_mfa")

KEY_PREFIX = "hyperid_mfa:push-slots"
#: Added to each slot's lifetime: Memcached (and some Redis set-ups) count expiry in
#: whole seconds, and a key must never outlive the period by less than the period.
CLOCK_MARGIN = 1


@dataclass(frozen=True)
class Reservation:
    """One push slot taken by :func:`reserve`."""

    allowed: bool
    retry_after: int = 0
    #: The cache key of the slot taken; None when nothing was taken.
    key: str | None = None
    #: What the slot's key holds while it is this reservation's.
    value: str | None = None

    def release(self) -> None:
        """Give the slot back: the push certainly did not go out.

        Best effort: with the cache failing, the slot stays taken until it expires
        (fail closed: a push limit that cannot be read must not grant more).
        """
        if self.key is None:
            return
        try:
            with dependencies.using_cache():
                # Only while it is still ours: expired and taken again, it is another push's.
                if cache.get(self.key) == self.value:
                    cache.delete(self.key)
        except CacheUnavailable as err:
            logger.error(
                "Could not give back a push slot; it stays taken until it expires: %s",
                dependencies.describe(err),
            )


def slot_keys(user_key: object, rate: Rate) -> list[str]:
    return [f"{KEY_PREFIX}:{user_key}:{rate.period}:{slot}" for slot in range(rate.count)]


def reserve(user_key: object, *, now: float | None = None) -> Reservation:
    """Take one push slot for ``user_key``, or be refused with how long to wait.

    ``now`` is the time in seconds since the epoch (the database's clock, from the
    services; the local one by default); it dates the slot for ``Retry-After``. The
    slot's lifetime is kept by the cache.
    """
    rate = start_rate()
    if rate is None:
        return Reservation(True)
    # A cache that fails here raises CacheUnavailable: no slot, so no push. A slot
    # whose add() reached the cache before the failure stays taken (fail closed).
    with dependencies.using_cache():
        return _reserve(user_key, rate, time.time() if now is None else now)


def _reserve(user_key: object, rate: Rate, now: float) -> Reservation:
    lifetime = rate.period + CLOCK_MARGIN
    keys = slot_keys(user_key, rate)
    taken = cache.get_many(keys)
    for key in keys:
        if key in taken:
            continue
        value = f"{now + lifetime:.3f}:{secrets.token_hex(8)}"
        if cache.add(key, value, timeout=lifetime):
            if cache.get(key) != value:
                raise HyperIDConfigurationError(
                    "HYPERID_MFA['START_RATE_LIMIT'] needs a cache that keeps its keys; "
                    "Django's default cache keeps none (DummyCache?). Configure a shared "
                    "cache such as Redis, or set START_RATE_LIMIT to None."
                )
            return Reservation(True, key=key, value=value)
        taken[key] = cache.get(key)
    return Reservation(False, retry_after=_wait(taken.values(), now, lifetime))


def _wait(values: Iterable[Any], now: float, lifetime: int) -> int:
    """Seconds until the first taken slot frees (a slot we cannot date: a lifetime)."""
    frees = []
    for value in values:
        try:
            frees.append(float(str(value).split(":", 1)[0]))
        except ValueError:
            frees.append(now + lifetime)
    first = min(frees, default=now + lifetime)
    return max(1, math.ceil(first - now))


def reset(user_key: object) -> None:
    """Forget the cache's slots of the user's recent pushes (tests). The pushes the
    database recorded in the period still count (:mod:`hyperid_mfa.services.pushes`)."""
    rate = start_rate()
    if rate is None:
        return
    cache.delete_many(slot_keys(user_key, rate))
