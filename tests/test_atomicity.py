"""One approval runs a view at most once, whatever transaction the view runs in.

With ``ATOMIC_REQUESTS``, a view that fails rolls its transaction back. Were the
approval consumed inside it, it would come back unconsumed and run the view again: a
payment made through an external API before the failure would go out once per
attempt. These tests commit for real (``transaction=True``), as a site does.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Group
from django.core.checks import run_checks
from django.db import connection, transaction
from django.test import Client

from hyperid_mfa.checks.settings import E009
from hyperid_mfa.gate.atomicity import check_atomic_requests
from tests import atomic_views
from tests.conftest import approve_pending

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def atomic_requests(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    atomic_views.PAYMENTS.clear()


@pytest.fixture
def browser(hyperid_user):
    # A failing view answers 500, as in production, instead of raising in the test.
    client = Client(raise_request_exception=False)
    client.force_login(hyperid_user)
    return client


@pytest.mark.parametrize("kind", ["function", "mixin", "non-atomic-permission"])
def test_one_approval_runs_a_failing_view_once(fake_hyperid, browser, kind):
    url = f"/atomic/{kind}/?fail=1"
    assert browser.post(url, **JSON).status_code == 403
    approve_pending(fake_hyperid)

    failed = browser.post(url, **JSON)
    again = browser.post(url, **JSON)
    and_again = browser.post(url, **JSON)

    assert failed.status_code == 500
    assert again.status_code == 403
    assert and_again.status_code == 403
    assert [kind] == atomic_views.PAYMENTS  # paid once, not once per attempt
    # The view's own writes were rolled back: it still ran in a transaction.
    assert not Group.objects.exists()


@pytest.mark.parametrize("kind", ["function", "mixin"])
def test_the_view_keeps_its_transaction_and_commits_when_it_succeeds(fake_hyperid, browser, kind):
    browser.post(f"/atomic/{kind}/", **JSON)
    approve_pending(fake_hyperid)
    response = browser.post(f"/atomic/{kind}/", **JSON)
    assert response.status_code == 200
    assert response.json() == {"ran": kind, "in_transaction": True}
    assert Group.objects.count() == 1


def test_a_view_marked_non_atomic_by_the_project_stays_so(fake_hyperid, browser):
    browser.post("/atomic/explicit/", **JSON)
    approve_pending(fake_hyperid)
    response = browser.post("/atomic/explicit/", **JSON)
    assert response.json() == {"ran": "explicit", "in_transaction": False}


@pytest.mark.parametrize("url", ["/atomic/permission/", "/atomic/inside-atomic/"])
def test_a_gate_inside_a_transaction_refuses_and_sends_no_push(fake_hyperid, browser, url, caplog):
    with caplog.at_level(logging.ERROR, logger="hyperid_mfa"):
        response = browser.post(url, **JSON)
    assert response.status_code == 500
    assert response.json()["code"] == "mfa_misconfigured"
    assert "Retry-After" not in response
    assert fake_hyperid.call_count() == 0
    assert atomic_views.PAYMENTS == []
    assert "non_atomic_requests" in caplog.text


def test_a_gate_called_inside_atomic_by_the_project_refuses(fake_hyperid, hyperid_user, rf):
    from hyperid_mfa.gate.decide import Gate

    request = rf.post("/anything/")
    request.user = hyperid_user
    with transaction.atomic():
        answer = Gate("payments.pay").check(request)
    assert not answer.allowed
    assert answer.code == "mfa_misconfigured"
    assert fake_hyperid.call_count() == 0


def test_system_check_names_the_gated_views_left_inside_atomic_requests():
    errors = [message for message in check_atomic_requests() if message.id == E009]
    flagged = " ".join(message.msg for message in errors)
    assert "tests.atomic_views.PermissionView " in flagged
    assert "tests.gate_views.PermissionAPIView " in flagged  # DRF permission
    assert "tests.gate_views.DecoratedAPIView " in flagged  # decorated DRF method
    assert "tests.gate_views.DecoratedClassView " in flagged  # method_decorator
    assert "NonAtomicPermissionView" not in flagged
    assert "function_view" not in flagged  # the decorator takes care of itself
    assert "MixinView" not in flagged
    assert all("non_atomic_requests" in message.hint for message in errors)


def test_system_check_leaves_a_broken_urlconf_to_djangos_own_check(settings):
    settings.ROOT_URLCONF = "tests.no_such_urlconf"

    assert check_atomic_requests() == []


def test_system_check_is_silent_without_atomic_requests(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", False)
    assert check_atomic_requests() == []
    assert not [m for m in run_checks(include_deployment_checks=False) if m.id == E009]
