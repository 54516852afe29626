"""``poll_interval``: how long a client should wait before it asks about a request again.

Modelled on OpenID CIBA's poll mode, where the token endpoint answers ``slow_down``
and the client adds to its interval: while HyperID is healthy the answer is
``POLL_INTERVAL``; each consecutive failed check of the request (HyperID
unreachable, -1, a protocol error, no usable token...) doubles it, a ``Retry-After``
that HyperID sent raises it to at least that, and it never exceeds
:data:`MAX_POLL_INTERVAL` (nor ``POLL_INTERVAL`` when that is configured larger).
It is also never longer than the time left before the request expires (but at
least ``POLL_INTERVAL``), so that the client learns of the expiry promptly.
A finished request has nothing to wait for: ``None``.

The streak of failed checks lives in Django's cache, one small counter per pending
request, because the row only records the last check. The row still decides
whether the streak is current: a request whose last check succeeded (``last_error``
empty, whoever checked it: this API, the poller, a Celery task) has no streak, and
one whose last check failed counts at least one failure even if this process never
saw it (a per-process cache, a failure met by the background poller).
"""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from ..conf import mfa_settings
from ..exceptions import HyperIDError
from ..models import MFARequest

#: Longest interval ever suggested, in seconds, unless POLL_INTERVAL itself is longer.
MAX_POLL_INTERVAL = 60.0
#: Doublings beyond this change nothing under the cap; it keeps 2**n small.
_MAX_DOUBLINGS = 16
KEY_PREFIX = "hyperid_mfa:api:failed-checks"


def _key(mfa_request: MFARequest) -> str:
    return f"{KEY_PREFIX}:{mfa_request.pk}"


def record_check(mfa_request: MFARequest, error: HyperIDError | None) -> None:
    """Note the outcome of this request's refresh: ``error`` if it raised one.

    Call it after every refresh attempt of a pending request, including those the
    service coalesced into another caller's check (they read the row as it stands).
    """
    key = _key(mfa_request)
    if error is not None:
        # The counter outlives the request a little; a finished request ignores it.
        timeout = int(mfa_settings.REQUEST_TTL) + 60
        cache.add(key, 0, timeout)
        try:
            cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout)
    elif mfa_request.is_terminal or not mfa_request.last_error:
        cache.delete(key)


def failed_checks(mfa_request: MFARequest) -> int:
    """Consecutive failed checks of this request, as far as the row and cache tell."""
    if mfa_request.is_terminal or not mfa_request.last_error:
        return 0
    counted = cache.get(_key(mfa_request))
    return max(1, counted if isinstance(counted, int) else 0)


def poll_interval(
    mfa_request: MFARequest,
    error: HyperIDError | None = None,
    *,
    now: datetime | None = None,
) -> float | None:
    """Seconds to wait before the next poll of ``mfa_request``; None once it is finished.

    ``error`` is the failure of the refresh this answer follows, if any: its
    ``retry_after`` (HyperID's ``Retry-After``) is honoured up to the cap.
    """
    if mfa_request.is_terminal:
        return None
    base = float(mfa_settings.POLL_INTERVAL)
    cap = max(base, MAX_POLL_INTERVAL)
    interval = base * 2 ** min(failed_checks(mfa_request), _MAX_DOUBLINGS)
    if error is not None and error.retry_after:
        interval = max(interval, float(error.retry_after))
    interval = min(interval, cap)
    remaining = (mfa_request.expires_at - (now or timezone.now())).total_seconds()
    interval = max(base, min(interval, remaining))
    return round(interval, 3)
