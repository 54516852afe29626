"""hyperid_mfa.tasks run in-process (no broker), and the REFRESH_AFTER_START receiver."""

from __future__ import annotations

import importlib
import logging
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from hyperid_mfa import services
from hyperid_mfa.models import MFARequest, State
from hyperid_mfa.services import receivers
from tests.conftest import import_or_skip
from tests.factories import make_request

import_or_skip("celery")

from hyperid_mfa import tasks  # noqa: E402 (needs Celery, checked just above)

pytestmark = [pytest.mark.django_db, pytest.mark.celery]


def started(user) -> MFARequest:
    return services.start_request(user, "payments.withdraw")


@pytest.fixture
def no_rate_limit(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}


def test_tasks_keep_the_names_beat_schedules_refer_to():
    assert tasks.refresh_pending.name == "hyperid_mfa.refresh_pending"
    assert tasks.refresh_request.name == "hyperid_mfa.refresh_request"
    assert tasks.purge_finished.name == "hyperid_mfa.purge_finished"


def test_the_periodic_task_runs_one_poll_round(fake_hyperid, hyperid_user, no_rate_limit):
    approved, waiting = started(hyperid_user), started(hyperid_user)
    fake_hyperid.approve(approved.transaction_id)

    assert tasks.refresh_pending.apply(kwargs={"concurrency": 1}).get() == 2

    assert MFARequest.objects.get(pk=approved.pk).state == State.APPROVED
    assert MFARequest.objects.get(pk=waiting.pk).state == State.PENDING


def test_refreshing_one_request_returns_its_state(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    fake_hyperid.deny(request.transaction_id)
    assert tasks.refresh_request.apply(args=[str(request.pk)]).get() == State.DENIED


def test_refreshing_a_request_that_is_gone_returns_none(user):
    request = make_request(user)
    pk = str(request.pk)
    request.delete()
    assert tasks.refresh_request.apply(args=[pk]).get() is None


def test_with_hyperid_down_the_task_succeeds_and_the_request_waits_for_the_next_round(
    fake_hyperid, hyperid_user
):
    request = started(hyperid_user)
    fake_hyperid.approve(request.transaction_id)
    fake_hyperid.inject("http_503", call="status-get", times=None)

    result = tasks.refresh_request.apply(args=[str(request.pk)])

    assert result.successful()
    assert result.get() == State.PENDING
    assert MFARequest.objects.get(pk=request.pk).last_error.startswith("ServiceUnavailable")


def test_the_purge_task_deletes_old_finished_requests(user):
    old = timezone.now() - timedelta(days=40)
    make_request(user, "expired", created_at=old)
    pending = make_request(user, "pending", created_at=old)
    assert tasks.purge_finished.apply().get() == 1
    assert tasks.purge_finished.apply(args=[3600]).get() == 0
    assert list(MFARequest.objects.all()) == [pending]


def test_importing_the_tasks_without_celery_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "celery", None)  # import celery -> ImportError
    monkeypatch.delitem(sys.modules, "hyperid_mfa.tasks")
    with pytest.raises(ImportError, match=r'pip install "django-hyperid-mfa\[celery\]"') as raised:
        importlib.import_module("hyperid_mfa.tasks")

    assert isinstance(raised.value, ImproperlyConfigured)  # a configuration error, too
    assert str(raised.value).startswith("hyperid_mfa.tasks needs the [celery] extra")


# --- REFRESH_AFTER_START ------------------------------------------------------------------------


@pytest.fixture
def scheduled(monkeypatch):
    """The refresh tasks sent to the broker, as (args, options)."""
    sent: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(
        tasks.refresh_request, "apply_async", lambda args, **options: sent.append((args, options))
    )
    return sent


@pytest.fixture
def refresh_after_start(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REFRESH_AFTER_START": 3}


def test_a_push_schedules_its_refresh_once_the_transaction_commits(
    fake_hyperid, hyperid_user, scheduled, refresh_after_start, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as on_commit:
        request = started(hyperid_user)
    assert scheduled == []  # a worker could not see the row yet

    for callback in on_commit:
        callback()

    assert scheduled == [((str(request.pk),), {"countdown": 3})]


def test_without_the_setting_no_refresh_is_scheduled(
    fake_hyperid, hyperid_user, scheduled, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        started(hyperid_user)
    assert scheduled == []


def test_a_broker_outage_does_not_fail_the_push(
    fake_hyperid,
    hyperid_user,
    refresh_after_start,
    monkeypatch,
    caplog,
    django_capture_on_commit_callbacks,
):
    from kombu.exceptions import OperationalError

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.refresh_request, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        request = started(hyperid_user)

    assert MFARequest.objects.get(pk=request.pk).state == State.PENDING
    assert f"Could not schedule the refresh of MFA request {request.pk}" in caplog.text


def test_the_setting_without_celery_installed_is_reported_once(
    fake_hyperid,
    hyperid_user,
    refresh_after_start,
    no_rate_limit,
    monkeypatch,
    caplog,
    django_capture_on_commit_callbacks,
):
    monkeypatch.setitem(sys.modules, "hyperid_mfa.tasks", None)  # import -> ImportError
    monkeypatch.setattr(receivers, "_celery_missing_reported", False)
    caplog.set_level(logging.WARNING, logger="hyperid_mfa")
    with django_capture_on_commit_callbacks(execute=True) as on_commit:
        started(hyperid_user)
        started(hyperid_user)

    assert on_commit == []
    warnings = [r for r in caplog.records if "Celery is not installed" in r.getMessage()]
    assert len(warnings) == 1
