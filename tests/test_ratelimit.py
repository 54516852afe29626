"""START_RATE_LIMIT: how many pushes a user may be sent, and when the next one may go."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from hyperid_mfa import ratelimit

T0 = 1_000_000 * 600.0  # the start of a 10-minute window


def send(n, at):
    for _ in range(n):
        assert ratelimit.reserve("u", now=at).allowed


def test_five_pushes_in_ten_minutes_then_refused():
    send(5, T0 + 10)
    decision = ratelimit.reserve("u", now=T0 + 11)
    assert not decision.allowed
    # This window is full: room comes after the roll-over, once it has faded by 1/5.
    assert decision.retry_after == 589 + 120


def test_users_are_counted_apart():
    send(5, T0)
    assert ratelimit.reserve("someone-else", now=T0).allowed


def test_the_previous_window_fades_out_gradually():
    send(5, T0 + 590)  # late in the first window
    early_next = ratelimit.reserve("u", now=T0 + 600 + 60)  # 90% of it still counts
    assert not early_next.allowed
    assert early_next.retry_after == 60  # by then only 4 of the 5 still count
    assert ratelimit.reserve("u", now=T0 + 600 + 121).allowed


def test_refusal_says_how_long_to_wait_and_waiting_that_long_works():
    send(3, T0 + 100)
    send(2, T0 + 700)
    decision = ratelimit.reserve("u", now=T0 + 700)
    assert not decision.allowed
    assert ratelimit.reserve("u", now=T0 + 700 + decision.retry_after).allowed
    assert not ratelimit.reserve("u", now=T0 + 700 + decision.retry_after - 2).allowed


def test_reset_forgets_the_users_pushes():
    send(5, time.time())  # reset() works on the windows of now
    assert not ratelimit.reserve("u").allowed

    ratelimit.reset("u")

    send(5, time.time())
    assert not ratelimit.reserve("u").allowed


def test_reset_forgets_only_that_users_pushes():
    send(5, time.time())
    for _ in range(5):
        assert ratelimit.reserve("v").allowed

    ratelimit.reset("u")

    assert ratelimit.reserve("u").allowed
    assert not ratelimit.reserve("v").allowed


def test_reset_without_a_limit_does_nothing():
    with override_settings(HYPERID_MFA={"START_RATE_LIMIT": None}):
        ratelimit.reset("u")
        assert ratelimit.reserve("u").allowed


@pytest.mark.parametrize("limit", [None])
def test_limit_can_be_switched_off(limit):
    with override_settings(HYPERID_MFA={"START_RATE_LIMIT": limit}):
        for _ in range(50):
            assert ratelimit.reserve("u").allowed


def test_a_wait_of_under_a_second_is_asked_as_one_second():
    send(5, T0 - 300)  # the previous window's five fade out as this one goes on
    decision = ratelimit.reserve("u", now=T0 + 119.4)

    assert not decision.allowed
    assert decision.retry_after == 1
    assert ratelimit.reserve("u", now=T0 + 119.4 + decision.retry_after).allowed


def test_giving_back_a_slot_whose_window_has_gone_is_harmless():
    from django.core.cache import cache

    reservation = ratelimit.reserve("u", now=T0)
    cache.delete(reservation.key)  # the window's key expired meanwhile

    reservation.release()
    assert cache.get(reservation.key) is None
