"""START_RATE_LIMIT is a hard limit: no span of the period holds more pushes than the
count (issue 17, attack 7: 9 pushes within 8.1 minutes with "5/10m", across the
boundary of the fixed windows an approximate sliding window counted in).

The local-memory cache is driven by a fake clock here, so that pushes can be spread
over hours in a moment; tests/test_push_limit.py races real requests against it and
against Redis.
"""

from __future__ import annotations

import time
import types

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hyperid_mfa.exceptions import HyperIDConfigurationError
from hyperid_mfa.services import ratelimit
from tests.conftest import race
from tests.test_push_limit import redis_cache  # noqa: F401 (a fixture, used by name)

LIMIT = 5
PERIOD = 600
#: How long a slot is held: the period and a second's margin for caches whose clock
#: counts whole seconds (ratelimit.CLOCK_MARGIN).
LIFETIME = PERIOD + 1
T0 = 1_000_000 * 600.0


class Clock:
    """The time for the app and the local-memory cache alike."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(T0)
    fake_time = types.SimpleNamespace(time=clock.time)
    monkeypatch.setattr("django.core.cache.backends.locmem.time", fake_time)
    monkeypatch.setattr("django.core.cache.backends.base.time", fake_time)
    monkeypatch.setattr(ratelimit, "time", fake_time)
    return clock


def reserve(user="u"):
    return ratelimit.reserve(user)


def most_in_any_span(times: list[float], span: float) -> int:
    """The most of ``times`` that any half-open interval [t, t + span) holds."""
    times = sorted(times)
    most, first = 0, 0
    for last, end in enumerate(times):
        while times[first] <= end - span:
            first += 1
        most = max(most, last - first + 1)
    return most


def attempt_at(clock, moments: list[float]) -> list[float]:
    """Ask for a push at each moment (seconds after T0); the moments granted."""
    granted = []
    for moment in moments:
        clock.now = T0 + moment
        if reserve().allowed:
            granted.append(moment)
    return granted


def test_five_pushes_then_refused_until_the_first_slot_frees(clock):
    for _ in range(LIMIT):
        assert reserve().allowed
        clock.advance(1)

    refused = reserve()

    assert not refused.allowed
    assert refused.retry_after == LIFETIME - LIMIT
    clock.advance(refused.retry_after - 1)
    assert not reserve().allowed
    clock.advance(1)
    assert reserve().allowed
    assert not reserve().allowed  # one slot freed, one push


def test_no_ten_minutes_hold_more_than_five_pushes_across_window_boundaries(clock):
    # The attack: five pushes late in one ten-minute window, then one every ten
    # seconds. Counted in fixed windows with the previous one fading out, the next
    # window let one more through every two minutes: 9 pushes within 8.1 minutes.
    moments = [550 + 10 * n for n in range(200)]

    granted = attempt_at(clock, moments)

    assert most_in_any_span(granted, PERIOD) == LIMIT
    # Not stricter than the limit either: a slot is taken again as soon as it frees.
    assert granted[:LIMIT] == [550, 560, 570, 580, 590]
    assert granted[LIMIT] == 1160  # the first moment after 550 + 601


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(gaps=st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), max_size=60))
@example(gaps=[590] + [10] * 60)
@example(gaps=[0] * 5 + [PERIOD, 0.5, 0.5, 0.5])
def test_no_span_of_the_period_holds_more_pushes_than_the_limit(clock, gaps):
    ratelimit.reset("u")
    moments, moment = [], 0.0
    for gap in gaps:
        moment += gap
        moments.append(moment)

    granted = attempt_at(clock, moments)

    assert most_in_any_span(granted, PERIOD) <= LIMIT
    # And exact: a push is refused only while the limit's pushes are still held.
    for moment in set(moments) - set(granted):
        held = [g for g in granted if moment - LIFETIME < g <= moment]
        assert len(held) >= LIMIT, (moment, granted)


def test_the_retry_after_is_when_the_first_slot_frees(clock):
    for _ in range(LIMIT):
        assert reserve().allowed
        clock.advance(60)

    refused = reserve()  # 300 s after the first push

    assert refused.retry_after == LIFETIME - 300
    clock.advance(refused.retry_after)
    assert reserve().allowed


def test_users_are_counted_apart(clock):
    assert all(reserve("u").allowed for _ in range(LIMIT))
    assert reserve("someone-else").allowed
    assert not reserve("u").allowed


def test_a_released_slot_is_free_at_once(clock):
    reservations = [reserve() for _ in range(LIMIT)]
    assert not reserve().allowed

    reservations[2].release()

    assert reserve().allowed
    assert not reserve().allowed


def test_releasing_a_slot_another_push_took_since_frees_nothing(clock):
    stale = reserve()
    clock.advance(LIFETIME)  # its key expired; the slot is taken again
    fresh = [reserve() for _ in range(LIMIT)]
    assert fresh[0].key == stale.key

    stale.release()

    assert not reserve().allowed


def test_reset_forgets_the_users_pushes(clock):
    assert all(reserve().allowed for _ in range(LIMIT))
    assert not reserve().allowed

    ratelimit.reset("u")

    assert all(reserve().allowed for _ in range(LIMIT))
    assert not reserve().allowed


def test_reset_forgets_only_that_users_pushes(clock):
    assert all(reserve().allowed for _ in range(LIMIT))
    assert all(reserve("v").allowed for _ in range(LIMIT))

    ratelimit.reset("u")

    assert reserve().allowed
    assert not reserve("v").allowed


def test_reset_without_a_limit_does_nothing():
    with override_settings(HYPERID_MFA={"START_RATE_LIMIT": None}):
        ratelimit.reset("u")
        assert reserve().allowed


def test_limit_can_be_switched_off():
    with override_settings(HYPERID_MFA={"START_RATE_LIMIT": None}):
        assert all(reserve().allowed for _ in range(50))


def test_a_cache_that_keeps_nothing_cannot_hold_a_slot(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

    with pytest.raises(HyperIDConfigurationError, match="START_RATE_LIMIT"):
        reserve()


# --- concurrent requests -------------------------------------------------------------------


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def shared_cache(request):
    """The local-memory cache (one process's threads), or Redis as app servers share it."""
    if request.param == "redis":
        request.getfixturevalue("redis_cache")


def test_concurrent_reservations_are_granted_exactly_the_limit(shared_cache):
    results = race([lambda: ratelimit.reserve("u").allowed] * 40)

    assert results.count(True) == LIMIT
    assert results.count(False) == 40 - LIMIT


@pytest.mark.redis
@pytest.mark.parametrize("shared_cache", ["redis"], indirect=True)
def test_on_redis_no_span_of_the_period_holds_more_than_the_limit(shared_cache, settings):
    # Redis keeps the slots' time itself: a short rate, asked for as fast as possible.
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": "2/1s"}
    granted = []
    end = time.monotonic() + 4.5
    while time.monotonic() < end:
        asked = time.monotonic()
        if ratelimit.reserve("u").allowed:
            granted.append(asked)
        time.sleep(0.02)

    assert most_in_any_span(granted, 1.0) <= 2
    assert len(granted) >= 4  # a slot frees after its lifetime: 1 s and the margin
