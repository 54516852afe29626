"""Per-user limit on new pushes (``START_RATE_LIMIT``), kept in Django's cache.

A push is counted *before* it is sent: :func:`reserve` takes a slot with one atomic
increment and gives it back at once if that went past the limit, so of N concurrent
callers no more than the limit ever get one. The caller gives a slot back
(:meth:`Reservation.release`) only when HyperID certainly did not send the push; a
push whose answer was lost keeps its slot, because it may well be on the phone.

A sliding window approximated from two fixed windows: the previous window's count
weighs in proportion to how much of it still overlaps the sliding window. It needs
two cache keys per user. The limit holds across processes when the cache is shared
and increments atomically (Redis, Memcached); with the per-process local-memory
cache it holds per process, and with the database or file cache (whose ``incr``
is a read then a write) concurrent requests may pass it.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from .conf import Rate, start_rate
from .exceptions import HyperIDConfigurationError

KEY_PREFIX = "hyperid_mfa:starts"


@dataclass(frozen=True)
class Reservation:
    """One push slot taken by :func:`reserve`."""

    allowed: bool
    retry_after: int = 0
    #: The cache key the slot was counted under; None when nothing was counted.
    key: str | None = None

    def release(self) -> None:
        """Give the slot back: the push certainly did not go out."""
        if self.key is None:
            return
        # ValueError: the window's key expired meanwhile, nothing left to give back.
        with contextlib.suppress(ValueError):
            cache.decr(self.key)


def _keys(user_key: object, rate: Rate, now: float) -> tuple[str, str, float]:
    window = int(now // rate.period)
    elapsed = (now % rate.period) / rate.period
    return (
        f"{KEY_PREFIX}:{user_key}:{rate.period}:{window}",
        f"{KEY_PREFIX}:{user_key}:{rate.period}:{window - 1}",
        elapsed,
    )


def _wait(rate: Rate, current: int, previous: int, elapsed: float) -> int:
    """Seconds until the weighted count leaves room for one more push."""
    weighted = previous * (1 - elapsed) + current
    if current < rate.count:
        # Within this window, as the previous window's weight fades.
        wait = (weighted + 1 - rate.count) / previous * rate.period
    else:
        # After the roll-over, as this window (then the previous one) fades.
        wait = rate.period * (1 - elapsed) + rate.period * (1 - (rate.count - 1) / current)
    return max(1, math.ceil(wait))


def _increment(key: str, timeout: int) -> int:
    """Add one to ``key`` atomically (where the cache can) and return the new count."""
    for _attempt in range(3):
        cache.add(key, 0, timeout=timeout)
        try:
            return int(cache.incr(key))
        except ValueError:  # expired between add() and incr(): add it again
            continue
    # A cache that keeps nothing (DummyCache) cannot count: refuse rather than let
    # pushes through uncounted.
    raise HyperIDConfigurationError(
        "HYPERID_MFA['START_RATE_LIMIT'] needs a cache that keeps its keys; Django's "
        "default cache keeps none (DummyCache?). Configure a shared cache such as Redis, "
        "or set START_RATE_LIMIT to None."
    )


def reserve(user_key: object, *, now: float | None = None) -> Reservation:
    """Take one push slot for ``user_key``, or be refused with how long to wait.

    ``now`` is the time in seconds since the epoch (the database's clock, from the
    services; the local one by default).
    """
    rate = start_rate()
    if rate is None:
        return Reservation(True)
    now = time.time() if now is None else now
    current_key, previous_key, elapsed = _keys(user_key, rate, now)
    # The key lives two windows: it is the "previous" window for the next one.
    count = _increment(current_key, 2 * rate.period + 1)
    previous = int(cache.get(previous_key, 0))
    if previous * (1 - elapsed) + count <= rate.count:
        return Reservation(True, key=current_key)
    Reservation(True, key=current_key).release()
    return Reservation(False, retry_after=_wait(rate, count - 1, previous, elapsed))


def reset(user_key: object) -> None:
    """Forget the user's recent pushes (an admin unblocking a user, tests)."""
    rate = start_rate()
    if rate is None:
        return
    current_key, previous_key, _elapsed = _keys(user_key, rate, time.time())
    cache.delete_many([current_key, previous_key])
