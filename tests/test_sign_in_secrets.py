"""No token in any error report of a sign-in: both libraries, DEBUG on and off.

A sign-in holds the access, refresh and ID tokens in clear for a moment, in the
sign-in library's frames and in the app's. When something fails then (here: the
database refuses to store the tokens), Django reports the error: the technical 500
page with every frame's local variables (DEBUG on), the ``django.request`` mail to
the ADMINS with the same frames (HTML and text), the ERROR log line with its
traceback. None of them may show a token or the client secret.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.core import mail
from django.db import OperationalError, connection
from django.test import Client
from django.utils.log import AdminEmailHandler
from django.views.debug import (
    SafeExceptionReporterFilter,
    get_default_exception_reporter_filter,
    get_exception_reporter_filter,
)

from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.sensitive import protect_sign_in
from hyperid_mfa.testing import FakeHyperID, oidc
from tests import oidc_flow as flow
from tests.oidc_flow import ALLAUTH, BOTH

pytestmark = pytest.mark.django_db

#: What Django's report shows in place of a hidden value.
CLEANSED = SafeExceptionReporterFilter.cleansed_substitute


@pytest.fixture
def hyperid() -> Iterator[FakeHyperID]:
    fake = flow.new_fake()
    with fake.serve():
        yield fake


@pytest.fixture
def token_answers(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What HyperID's token endpoint answered, each answer's JSON, in order."""
    answers: list[dict[str, Any]] = []
    answer_call = oidc.token_endpoint

    def recorded(*args: Any, **kwargs: Any) -> Any:
        answer = answer_call(*args, **kwargs)
        answers.append(dict(answer.payload))
        return answer

    monkeypatch.setattr(oidc, "token_endpoint", recorded)
    return answers


#: DEFAULT_EXCEPTION_REPORTER_FILTER: Django's own, and the app's (the README's).
REPORTER_FILTERS = {
    "djangos-filter": "django.views.debug.SafeExceptionReporterFilter",
    "apps-filter": "hyperid_mfa.sensitive.SignInExceptionReporterFilter",
}


@pytest.fixture(params=list(REPORTER_FILTERS))
def reporter_filter(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """The project's DEFAULT_EXCEPTION_REPORTER_FILTER, each in turn: without the
    app's, the sign-in code itself must keep the tokens out."""
    settings.DEFAULT_EXCEPTION_REPORTER_FILTER = REPORTER_FILTERS[request.param]
    get_default_exception_reporter_filter.cache_clear()  # Django keeps the first one
    yield request.param
    get_default_exception_reporter_filter.cache_clear()


@pytest.fixture
def admins_mail(settings: Any) -> Iterator[None]:
    """Django's error mail to the ADMINS, as a production LOGGING sends it."""
    # Django 6.0 takes plain addresses and deprecates the (name, address) pairs of 5.2.
    address = "ops@bank.example"
    settings.ADMINS = [address] if django.VERSION >= (6, 0) else [("Ops", address)]
    handler = AdminEmailHandler(include_html=True)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)


def refuse_token_writes(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    """The database fails the write of the sign-in's tokens (a full disk, a failover)."""
    table = HyperIDToken._meta.db_table
    if table in sql and sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
        raise OperationalError("could not extend file: No space left on device")
    return execute(sql, params, many, context)


def secrets_of(answers: list[dict[str, Any]], fake: FakeHyperID) -> dict[str, str]:
    [answer] = answers
    return {
        "access token": answer["access_token"],
        "refresh token": answer["refresh_token"],
        "ID token": answer["id_token"],
        "client secret": fake.client_secret,
    }


def shown(text: str, secrets: dict[str, str]) -> list[str]:
    """Which secrets ``text`` shows, whole or by the signature part of a JWT (a
    report trims long values, and every JWT of one issuer starts alike)."""
    return [
        name for name, value in secrets.items() if value in text or value.rsplit(".", 1)[-1] in text
    ]


def reports(response: Any, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """Every report of the error: the answer's page, each mail to the ADMINS (text,
    and HTML where it has one), the log."""
    rendered = {"page": response.content.decode(), "log": caplog.text}
    for number, message in enumerate(mail.outbox):
        rendered[f"mail {number}"] = message.body
        for alternative, _type in message.alternatives:
            rendered[f"mail {number}, HTML"] = str(alternative)
    return rendered


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG-on", "DEBUG-off"])
@pytest.mark.parametrize("accept", ["text/html", "text/plain"])
@pytest.mark.parametrize("library", BOTH)
def test_no_token_shows_in_the_error_reports_of_a_sign_in_whose_tokens_cannot_be_stored(
    hyperid, settings, token_answers, admins_mail, caplog, library, debug, accept, reporter_filter
):
    # Attack 5 of issue 17.
    flow.configure(settings, hyperid, library)
    settings.DEFAULT_EXCEPTION_REPORTER_FILTER = REPORTER_FILTERS[reporter_filter]
    settings.DEBUG = debug
    site = Client(HTTP_HOST=flow.SITE_HOST, HTTP_ACCEPT=accept, raise_request_exception=False)

    with connection.execute_wrapper(refuse_token_writes):
        response = flow.sign_in(site, library, "alice")

    assert response.status_code == 500
    assert not HyperIDToken.objects.exists()
    rendered = reports(response, caplog)
    # The reports are there, and say what went wrong; Django's own mail (DEBUG off)
    # comes on top of the HTML one this test asked for.
    assert "mail 0, HTML" in rendered
    assert len(mail.outbox) == (1 if debug else 2)
    for where in [name for name in rendered if name.startswith("mail")]:
        assert "No space left on device" in rendered[where], where
    if debug:  # the technical 500 page, which shows each frame's variables
        assert "No space left on device" in rendered["page"]
        if accept == "text/html":
            assert "Local vars" in rendered["page"]
            assert CLEANSED in rendered["page"]  # the frames are there, their values hidden
    secrets = secrets_of(token_answers, hyperid)
    assert {where: shown(text, secrets) for where, text in rendered.items()} == {
        where: [] for where in rendered
    }


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG-on", "DEBUG-off"])
@pytest.mark.parametrize("library", [ALLAUTH])
def test_with_the_apps_reporter_filter_an_error_inside_allauths_callback_shows_no_token(
    hyperid, settings, token_answers, admins_mail, caplog, monkeypatch, library, debug
):
    # allauth fails after it traded the code, before the app hears of the sign-in:
    # only DEFAULT_EXCEPTION_REPORTER_FILTER can hide allauth's frames then (W029).
    from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the provider's answer could not be read")

    monkeypatch.setattr(OpenIDConnectProvider, "sociallogin_from_response", fail)
    flow.configure(settings, hyperid, library)
    settings.DEBUG = debug
    rendered: dict[str, dict[str, str]] = {}
    for name, reporter_filter in REPORTER_FILTERS.items():
        settings.DEFAULT_EXCEPTION_REPORTER_FILTER = reporter_filter
        get_default_exception_reporter_filter.cache_clear()
        mail.outbox.clear()
        caplog.clear()
        site = Client(HTTP_HOST=flow.SITE_HOST, raise_request_exception=False)
        response = flow.sign_in(site, library, "alice")
        assert response.status_code == 500
        rendered[name] = reports(response, caplog)
    get_default_exception_reporter_filter.cache_clear()

    secrets = [secrets_of([answer], hyperid) for answer in token_answers]
    # Django's own filter shows allauth's variables: the tokens of that sign-in.
    assert "access token" in shown(rendered["djangos-filter"]["mail 0, HTML"], secrets[0])
    # The app's hides them, and still reports the error.
    assert "could not be read" in rendered["apps-filter"]["mail 0, HTML"]
    assert {where: shown(text, secrets[1]) for where, text in rendered["apps-filter"].items()} == {
        where: [] for where in rendered["apps-filter"]
    }


class ProjectFilter(SafeExceptionReporterFilter):
    """A project's own filter, which also hides its SENTRY_DSN setting."""

    hidden_settings = re.compile("DSN|API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE", re.I)


def test_a_sign_ins_report_keeps_what_the_projects_own_filter_hides(rf, settings):
    settings.DEFAULT_EXCEPTION_REPORTER_FILTER = f"{__name__}.ProjectFilter"
    settings.DEBUG = True
    settings.SENTRY_DSN = "https://public@sentry.bank.example/1"
    get_default_exception_reporter_filter.cache_clear()
    request = rf.get("/oidc/callback/", {"code": "c", "state": "s"})
    access_token = "an-access-token-in-clear"  # noqa: F841 - what a library's frame holds

    protect_sign_in(request)

    reporter_filter = get_exception_reporter_filter(request)
    get_default_exception_reporter_filter.cache_clear()
    assert isinstance(reporter_filter, ProjectFilter)
    assert reporter_filter.is_active(request)  # with DEBUG on too
    variables = dict(reporter_filter.get_traceback_frame_variables(request, sys._getframe()))
    assert variables["access_token"] == CLEANSED
    assert set(variables.values()) == {CLEANSED}
    assert reporter_filter.get_safe_settings()["SENTRY_DSN"] == CLEANSED
