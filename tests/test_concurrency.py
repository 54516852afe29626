"""Races that matter, on PostgreSQL with real concurrent connections.

Each thread has its own database connection, as separate processes would. On SQLite
these tests skip: it serialises writers, so it cannot show a race either way.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from hyperid_mfa import services
from hyperid_mfa.models import MFARequest, State
from tests.conftest import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race_n(n: int, call: Callable[[], Any]) -> list[Any]:
    return race([call] * n)


@pytest.fixture
def no_rate_limit(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}


def test_sixteen_concurrent_consumers_of_one_approval_exactly_one_wins(fake_hyperid, hyperid_user):
    request = services.start_request(hyperid_user, "payments.withdraw", fingerprint="fp")
    fake_hyperid.approve(request.transaction_id)
    services.refresh_request(request)

    results = race_n(16, lambda: services.consume_approval(hyperid_user, "payments.withdraw", "fp"))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].pk == request.pk
    assert MFARequest.objects.get(pk=request.pk).state == State.CONSUMED


def test_eight_concurrent_refreshes_of_one_request_make_one_upstream_call(
    fake_hyperid, hyperid_user
):
    request = services.start_request(hyperid_user, "payments.withdraw")
    fake_hyperid.approve(request.transaction_id)
    # A slow HyperID keeps the first call in flight while the others arrive.
    fake_hyperid.inject("delay", call="status-get", times=None, seconds=0.3)

    results = race_n(8, lambda: services.refresh_request(MFARequest.objects.get(pk=request.pk)))

    assert fake_hyperid.call_count("status-get") == 1
    assert MFARequest.objects.get(pk=request.pk).state == State.APPROVED
    assert sum(r.state == State.APPROVED for r in results) >= 1


def test_concurrent_refreshes_send_each_transition_signal_once(fake_hyperid, hyperid_user):
    from hyperid_mfa.signals import mfa_request_approved

    request = services.start_request(hyperid_user, "payments.withdraw")
    fake_hyperid.approve(request.transaction_id)
    fired: list[Any] = []
    lock = threading.Lock()

    def receiver(sender, mfa_request, **kwargs):
        with lock:
            fired.append(mfa_request.pk)

    mfa_request_approved.connect(receiver)
    try:
        race_n(
            8, lambda: services.refresh_request(MFARequest.objects.get(pk=request.pk), force=True)
        )
    finally:
        mfa_request_approved.disconnect(receiver)
    assert fired == [request.pk]


def test_two_pollers_never_ask_about_the_same_request_twice(
    fake_hyperid, hyperid_user, no_rate_limit
):
    requests = [services.start_request(hyperid_user, "payments.withdraw") for _ in range(40)]
    fake_hyperid.clear_calls()
    fake_hyperid.inject("delay", call="status-get", times=None, seconds=0.02)

    counts = race_n(2, lambda: services.refresh_pending(concurrency=4))

    assert sum(counts) == 40
    asked = Counter(c.transaction_id for c in fake_hyperid.calls if c.name == "status-get")
    assert set(asked) == {r.transaction_id for r in requests}
    assert max(asked.values()) == 1
