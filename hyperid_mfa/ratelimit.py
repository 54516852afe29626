"""Per-user limit on new pushes (``START_RATE_LIMIT``), kept in Django's cache.

A sliding window approximated from two fixed windows: the previous window's count
weighs in proportion to how much of it still overlaps the sliding window. It needs
two cache keys per user and holds across processes when the cache is shared
(Redis, Memcached); with the per-process local-memory cache it holds per process.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from .conf import Rate, start_rate

KEY_PREFIX = "hyperid_mfa:starts"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0


def _keys(user_key: object, rate: Rate, now: float) -> tuple[str, str, float]:
    window = int(now // rate.period)
    elapsed = (now % rate.period) / rate.period
    return (
        f"{KEY_PREFIX}:{user_key}:{rate.period}:{window}",
        f"{KEY_PREFIX}:{user_key}:{rate.period}:{window - 1}",
        elapsed,
    )


def check(user_key: object, *, now: float | None = None) -> Decision:
    """Whether ``user_key`` may be sent one more push now."""
    rate = start_rate()
    if rate is None:
        return Decision(True)
    now = time.time() if now is None else now
    current_key, previous_key, elapsed = _keys(user_key, rate, now)
    counts = cache.get_many([current_key, previous_key])
    current = int(counts.get(current_key, 0))
    previous = int(counts.get(previous_key, 0))
    weighted = previous * (1 - elapsed) + current
    if weighted + 1 <= rate.count:
        return Decision(True)
    # The earliest moment the weighted count leaves room for one more push.
    if current < rate.count:
        # Within this window, as the previous window's weight fades.
        wait = (weighted + 1 - rate.count) / previous * rate.period
    else:
        # After the roll-over, as this window (then the previous one) fades.
        wait = rate.period * (1 - elapsed) + rate.period * (1 - (rate.count - 1) / current)
    return Decision(False, retry_after=max(1, math.ceil(wait)))


def record(user_key: object, *, now: float | None = None) -> None:
    """Count one push sent to ``user_key``."""
    rate = start_rate()
    if rate is None:
        return
    now = time.time() if now is None else now
    current_key, _previous, _elapsed = _keys(user_key, rate, now)
    # The key lives two windows: it is the "previous" window for the next one.
    if not cache.add(current_key, 1, timeout=2 * rate.period + 1):
        try:
            cache.incr(current_key)
        except ValueError:  # expired between add() and incr()
            cache.add(current_key, 1, timeout=2 * rate.period + 1)


def reset(user_key: object) -> None:
    """Forget the user's recent pushes (an admin unblocking a user, tests)."""
    rate = start_rate()
    if rate is None:
        return
    current_key, previous_key, _elapsed = _keys(user_key, rate, time.time())
    cache.delete_many([current_key, previous_key])
