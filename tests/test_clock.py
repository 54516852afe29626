"""One clock decides: the database's, however far an app server's clock drifts.

Expiry, the age of an approval and the claim window of a status-get are compared in
SQL against the database's time, and the times they are compared with were written
by the database too. Each test runs the app with its clock an hour off.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from hyperid_mfa import services
from hyperid_mfa.models import MFARequest, State, database_now

pytestmark = pytest.mark.django_db

ACTION = "payments.withdraw"


def skew_clock(monkeypatch, offset):
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + offset)


@pytest.fixture
def slow_clock(monkeypatch):
    """This app server's clock runs an hour behind the database's."""
    skew_clock(monkeypatch, -timedelta(hours=1))


@pytest.fixture
def fast_clock(monkeypatch):
    """This app server's clock runs an hour ahead of the database's."""
    skew_clock(monkeypatch, timedelta(hours=1))


def approved(fake, user, fingerprint="fp"):
    request = services.start_request(user, ACTION, fingerprint=fingerprint)
    fake.approve(request.transaction_id)
    services.refresh_request(request)
    assert request.state == State.APPROVED
    return request


def test_an_approval_learnt_50_minutes_ago_is_refused_by_a_slow_server(
    fake_hyperid, hyperid_user, monkeypatch
):
    request = approved(fake_hyperid, hyperid_user)
    MFARequest.objects.filter(pk=request.pk).update(
        completed_at=F("completed_at") - timedelta(minutes=50)
    )
    skew_clock(monkeypatch, -timedelta(hours=1))

    assert services.consume_approval(hyperid_user, ACTION, "fp") is None
    assert MFARequest.objects.get(pk=request.pk).consumed_at is None


def test_a_fresh_approval_is_accepted_by_a_fast_server(fake_hyperid, hyperid_user, fast_clock):
    request = approved(fake_hyperid, hyperid_user)

    assert services.consume_approval(hyperid_user, ACTION, "fp").pk == request.pk


def test_a_request_expired_by_the_database_clock_is_not_approved_on_a_slow_server(
    fake_hyperid, hyperid_user, slow_clock
):
    request = services.start_request(hyperid_user, ACTION, fingerprint="fp")
    MFARequest.objects.filter(pk=request.pk).update(
        expires_at=database_now() - timedelta(seconds=1)
    )
    request.refresh_from_db()
    fake_hyperid.approve(request.transaction_id)

    services.refresh_request(request)

    assert request.state == State.EXPIRED
    assert services.consume_approval(hyperid_user, ACTION, "fp") is None


def test_a_fast_server_does_not_expire_a_request_early(fake_hyperid, hyperid_user, fast_clock):
    request = services.start_request(hyperid_user, ACTION, fingerprint="fp")
    fake_hyperid.approve(request.transaction_id)

    services.refresh_request(request)

    assert request.state == State.APPROVED


def test_the_claim_window_holds_on_a_fast_server(fake_hyperid, hyperid_user, fast_clock):
    request = services.start_request(hyperid_user, ACTION)
    services.refresh_request(request)
    fake_hyperid.clear_calls()

    services.refresh_request(MFARequest.objects.get(pk=request.pk))

    assert fake_hyperid.call_count("status-get") == 0  # checked a moment ago, by the DB


def test_a_request_started_on_a_slow_server_lives_its_full_ttl(
    fake_hyperid, hyperid_user, slow_clock
):
    before = database_now()
    request = MFARequest.objects.get(pk=services.start_request(hyperid_user, ACTION).pk)
    assert before <= request.created_at <= database_now()
    assert request.expires_at - request.created_at == timedelta(seconds=300)
