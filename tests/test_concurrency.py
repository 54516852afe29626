"""Races that matter, with real concurrent connections.

Each thread has its own database connection, as separate processes would. The consumption
races run on SQLite (the test database is a file, so threads wait on its lock as a
site's would) and on PostgreSQL; the others need PostgreSQL's concurrent writers and
skip on SQLite, which serialises writers and cannot show those races either way.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hyperid_mfa import services
from hyperid_mfa.models import MFARequest, State
from hyperid_mfa.models.requests import MFARequestQuerySet
from hyperid_mfa.services import consuming
from tests.conftest import race

pytestmark = pytest.mark.django_db(transaction=True)

ACTION = "payments.withdraw"
CONSUMERS = 16


def race_n(n: int, call: Callable[[], Any]) -> list[Any]:
    return race([call] * n)


@pytest.fixture
def no_rate_limit(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}


@pytest.fixture
def approval(fake_hyperid, hyperid_user):
    """An approval of (ACTION, "fp"), learnt and not yet consumed."""
    request = services.start_request(hyperid_user, ACTION, fingerprint="fp")
    fake_hyperid.approve(request.transaction_id)
    assert services.refresh_request(request).is_approved
    return request


@pytest.fixture(params=["update-returning", "find-then-update"])
def consume_path(request, monkeypatch, approval):
    """The consumption as the database allows: one ``UPDATE ... RETURNING`` (PostgreSQL,
    SQLite), or find the approval then consume it with a conditional ``UPDATE``
    (databases without RETURNING). On the second path every consumer has found the
    approval before any of them consumes it: the UPDATE's own condition must decide."""
    if request.param == "find-then-update":
        monkeypatch.setattr(consuming, "_statement", lambda using: None)
        all_found = threading.Barrier(CONSUMERS)
        update = MFARequestQuerySet.update

        def update_once_all_have_found(self, **values):
            all_found.wait(timeout=10)
            return update(self, **values)

        monkeypatch.setattr(MFARequestQuerySet, "update", update_once_all_have_found)
    return request.param


def test_sixteen_concurrent_consumers_of_one_approval_exactly_one_wins(
    hyperid_user, approval, consume_path
):
    results = race_n(CONSUMERS, lambda: services.consume_approval(hyperid_user, ACTION, "fp"))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert results.count(None) == CONSUMERS - 1
    assert winners[0].pk == approval.pk
    assert MFARequest.objects.get(pk=approval.pk).state == State.CONSUMED


def test_the_consume_requires_the_row_unconsumed_in_its_own_condition(hyperid_user, approval):
    """The one-statement consumption picks the approval in a subquery and consumes it only if
    it is still unconsumed. PostgreSQL, when two consumptions meet on the row, re-reads only
    the UPDATE's own condition for the one that waited (not the subquery's), so that
    condition must say "unconsumed" for the second spender to find nothing (the race
    above shows it on PostgreSQL; SQLite's writers never meet, so it is read here)."""
    with CaptureQueriesContext(connection) as captured:
        assert services.consume_approval(hyperid_user, ACTION, "fp") is not None

    [consume] = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    outside = _without_subqueries(consume.split(" WHERE ", 1)[1].split(" RETURNING ")[0])
    assert re.search(r'"consumed_at" IS NULL', outside), consume


def _without_subqueries(sql: str) -> str:
    """``sql`` with every parenthesised ``SELECT`` cut out."""
    while (start := sql.find("(SELECT")) != -1:
        depth = 0
        for end in range(start, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        sql = sql[:start] + sql[end + 1 :]
    return sql


@pytest.mark.postgres
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
    # The caller that asked saw the approval; the others read the row as it stood.
    assert Counter(r.state for r in results)[State.APPROVED] >= 1
    assert {r.state for r in results} <= {State.PENDING, State.APPROVED}
    assert {r.pk for r in results} == {request.pk}


@pytest.mark.postgres
def test_twenty_waiters_polling_one_request_ask_hyperid_once_per_watched_interval(
    fake_hyperid, hyperid_user
):
    import math
    import time

    from hyperid_mfa.services.lifecycle import refresh_interval

    request = services.start_request(hyperid_user, "payments.withdraw")
    fake_hyperid.inject("delay", call="status-get", times=None, seconds=0.05)
    gap = refresh_interval(watched=True)
    began = time.monotonic()
    until = began + 3 * gap + 0.1

    def wait_as_a_page_does() -> int:
        polls = 0
        while time.monotonic() < until:
            services.refresh_request(MFARequest.objects.get(pk=request.pk), watched=True)
            polls += 1
            time.sleep(0.02)
        return polls

    polls = sum(race_n(20, wait_as_a_page_does))
    elapsed = time.monotonic() - began

    calls = fake_hyperid.call_count("status-get")
    # Once at the start, then at most once per interval, however many wait...
    assert calls <= math.floor(elapsed / gap) + 1, (calls, polls, elapsed)
    # ...and at the watched pace, not MIN_REFRESH_INTERVAL's (one call in 1.6 s).
    assert calls >= 2, (calls, polls, elapsed)
    assert polls > 10 * calls


@pytest.mark.postgres
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
        results = race_n(
            8, lambda: services.refresh_request(MFARequest.objects.get(pk=request.pk), force=True)
        )
    finally:
        mfa_request_approved.disconnect(receiver)
    assert fired == [request.pk]
    assert {r.pk for r in results} == {request.pk}
    assert {r.state for r in results} <= {State.PENDING, State.APPROVED}


@pytest.mark.postgres
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
