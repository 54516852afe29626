"""Failures carry their meaning: what the gate, the API and the admin make of each."""

from __future__ import annotations

import importlib
import logging
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from hyperid_mfa import exceptions
from hyperid_mfa.constants import CANCEL, START, STATUS_GET, Result
from hyperid_mfa.exceptions import (
    MISCONFIGURED,
    RATE_LIMITED,
    REAUTHENTICATE,
    UNAVAILABLE,
    HyperIDError,
    error_for,
    results_of,
)
from hyperid_mfa.models import MFARequest

JSON = {"HTTP_ACCEPT": "application/json"}


def all_refusal_classes() -> list[type[exceptions.MFARefusal]]:
    found, pending = [], [exceptions.MFARefusal]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", all_refusal_classes(), ids=lambda cls: cls.__name__)
def test_every_refusal_says_what_it_means_consistently(cls):
    assert cls.code.startswith("mfa_")
    assert 400 <= cls.status_code < 600
    assert str(cls.user_message)
    if cls.retryable:
        # Worth retrying means "later": an outage or a limit, never a client error.
        assert cls.status_code in (429, 503)
    if cls.code == MISCONFIGURED:
        assert cls.status_code == 500
        assert not cls.retryable


@pytest.mark.parametrize("cls", all_refusal_classes(), ids=lambda cls: cls.__name__)
def test_the_gate_logs_an_error_exactly_for_an_outage_or_what_only_the_site_can_fix(cls):
    """``log_level`` is the class's own account of who must act: ERROR for a service
    that is down (unavailable, worth retrying) and for what only the site's
    maintainers can fix (misconfigured, or a refusal that carries a hint for them);
    nothing for what the user or HyperID decided."""
    outage = cls.code == exceptions.UNAVAILABLE and cls.retryable
    site_must_act = cls.code == MISCONFIGURED or cls.__name__ == "QuestionNotShowable"
    expected = logging.ERROR if outage or site_must_act else None
    assert cls.log_level == expected


def test_each_call_accepts_exactly_the_results_hyperid_documents():
    assert results_of(STATUS_GET) == frozenset(range(-6, 1))
    assert results_of(START) == frozenset({0, -1, -2, -3, -4, -5, -7, -8})
    assert results_of(CANCEL) == frozenset({0, -1, -2, -3, -4, -5, -6, -8, -9, -10})
    assert results_of("availability") == frozenset(range(-5, 1))


def test_a_code_that_means_two_things_finds_the_class_of_the_call():
    assert error_for(START, -8) is exceptions.TemplateNotFound
    assert error_for(CANCEL, -8) is exceptions.TransactionAlreadyExpired
    assert error_for(START, -6) is None  # start never answers "not found"


@pytest.mark.parametrize(
    ("result", "code", "status"),
    [
        (Result.TEMPLATE_NOT_FOUND, MISCONFIGURED, 500),
        (Result.INVALID_PARAMETERS, MISCONFIGURED, 500),
        (Result.ACCESS_DENIED, REAUTHENTICATE, 403),
        (Result.SERVICE_UNAVAILABLE, UNAVAILABLE, 503),
    ],
)
@pytest.mark.django_db
def test_a_start_refused_by_hyperid_answers_with_the_refusals_meaning(
    fake_hyperid, browser, caplog, result, code, status
):
    fake_hyperid.inject("result", call="start", result=int(result))
    with caplog.at_level(logging.INFO, logger="hyperid_mfa"):
        response = browser.post("/gate/default/", {"amount": "1"}, **JSON)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert ("Retry-After" in response) == (status == 503)
    if code == MISCONFIGURED:
        # A misconfiguration is not an outage: nobody should retry it for ever, and
        # the log says what to fix.
        [line] = [
            r for r in caplog.records if r.levelno == logging.ERROR and r.name == "hyperid_mfa"
        ]
        assert "TEMPLATE_ID" in line.getMessage()


@pytest.mark.django_db
def test_a_retry_after_a_denial_says_a_denial_was_just_recorded(fake_hyperid, browser):
    first = browser.post("/gate/default/", {"amount": "1"}, **JSON).json()["mfa_request"]
    fake_hyperid.deny(first["transaction_id"])

    response = browser.post("/gate/default/", {"amount": "1"}, **JSON)

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == RATE_LIMITED
    assert "denied" in body["detail"]
    assert str(response["Retry-After"]) in body["detail"]


def test_no_exception_text_holds_more_than_its_fields():
    err = HyperIDError("boom", result=-1, call="start", http_status=502, transaction_id=7)
    assert str(err) == "boom (call=start, result=-1, http_status=502, transaction_id=7)"


@pytest.mark.django_db
def test_the_admin_stops_refreshing_when_hyperid_is_down_whatever_the_class(
    admin_client, fake_hyperid, hyperid_user
):
    from hyperid_mfa import services

    requests = [services.start_request(hyperid_user, "a", fingerprint=str(n)) for n in range(3)]
    fake_hyperid.inject("malformed_json", call="status-get", times=None)  # a ProtocolError
    response = admin_client.post(
        "/admin/hyperid_mfa/mfarequest/",
        {"action": "refresh_from_hyperid", "_selected_action": [str(r.pk) for r in requests]},
        follow=True,
    )
    assert fake_hyperid.call_count("status-get") == 1
    assert "2 more requests were not asked about" in response.content.decode()
    assert all(r.is_pending for r in MFARequest.objects.all())


@pytest.fixture
def admin_client(db, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


# --- an optional part without its extra ---------------------------------------------------


def forget_modules(monkeypatch: pytest.MonkeyPatch, *prefixes: str) -> None:
    """Unload the modules named ``prefixes`` (restored after the test)."""
    for name in list(sys.modules):
        if name.startswith(prefixes):
            monkeypatch.delitem(sys.modules, name)


def test_a_missing_extra_is_a_configuration_error_naming_what_to_install():
    error = exceptions.MissingExtra("celery", "hyperid_mfa.tasks", "celery")

    assert isinstance(error, ImproperlyConfigured)
    assert isinstance(error, ImportError)  # `except ImportError` around the import still works
    assert str(error) == (
        "hyperid_mfa.tasks needs the [celery] extra (celery is not installed): "
        'pip install "django-hyperid-mfa[celery]"'
    )


def test_the_mozilla_backend_without_mozilla_django_oidc_names_the_oidc_extra(monkeypatch):
    forget_modules(monkeypatch, "mozilla_django_oidc", "hyperid_mfa.contrib.mozilla_oidc")
    monkeypatch.setitem(sys.modules, "mozilla_django_oidc", None)

    with pytest.raises(exceptions.MissingExtra, match=r"\[oidc\] extra") as raised:
        importlib.import_module("hyperid_mfa.contrib.mozilla_oidc")

    assert raised.value.extra == "oidc"
    assert raised.value.needed_by == "hyperid_mfa.contrib.mozilla_oidc"


def test_mocking_the_fake_without_responses_names_the_testing_extra(monkeypatch):
    from hyperid_mfa.testing import FakeHyperID

    monkeypatch.setitem(sys.modules, "responses", None)

    with (
        pytest.raises(exceptions.MissingExtra, match=r"FakeHyperID.mock\(\) needs the \[testing\]"),
        FakeHyperID().mock(),
    ):
        pass


def test_the_schema_view_without_drf_spectacular_names_the_openapi_extra(monkeypatch):
    from hyperid_mfa.api import schema

    monkeypatch.setattr(schema, "HAVE_SPECTACULAR", False)

    with pytest.raises(exceptions.MissingExtra, match=r"schema_view needs the \[openapi\] extra"):
        schema.schema_view()
