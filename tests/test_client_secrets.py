"""HyperIDClient keeps tokens and the client secret out of every report of a failure.

Django's error report and Sentry print the local variables of every frame an
exception passed through, at every level of its chain; with ``DEBUG = True`` no
``sensitive_variables`` marker hides anything. So each failure is rendered both ways
and searched for the clear values, along with the log at DEBUG and ``repr``/``str``.
"""

from __future__ import annotations

import json
import logging
import secrets

import pytest
import requests
import responses
import urllib3
from django.views.debug import ExceptionReporter

from hyperid_mfa import exceptions
from hyperid_mfa.client.calls import HyperIDClient, TokenResponse
from hyperid_mfa.sensitive import Secret

# Random parts: a value that appeared in the report's source excerpts would be found
# there, not leaked; these never appear in the source.
ACCESS = f"eyJhbGciOi.access{secrets.token_hex(12)}.c2lnbmF0dXJl"
REFRESH = f"refresh{secrets.token_hex(12)}"
CLIENT_SECRET = f"clientsecret{secrets.token_hex(12)}"
NEW_ACCESS = f"eyJhbGciOi.newaccess{secrets.token_hex(12)}.c2lnbmF0dXJl"
NEW_REFRESH = f"newrefresh{secrets.token_hex(12)}"
SECRETS = (ACCESS, REFRESH, CLIENT_SECRET, NEW_ACCESS, NEW_REFRESH)
NAMES = ("access token", "refresh token", "client secret", "new access token", "new refresh")

BASE = "https://hyperid.example"
STATUS_URL = BASE + "/mfa-client/transaction/status-get"
START_URL = BASE + "/mfa-client/transaction/start/v2"
CANCEL_URL = BASE + "/mfa-client/transaction/cancel"
AVAIL_URL = BASE + "/mfa-client/availability-check"
TOKEN_URL = "https://login.example/realms/x/protocol/openid-connect/token"
# Nothing listens there; the failures injected below happen before any connection.
UNREACHABLE = "http://127.0.0.1:9"


def wrapped(kind: str, value: str) -> str | Secret:
    return Secret(value) if kind == "secret" else value


# Each scenario calls the client with the values written inline, so that no frame of
# the test holds them in a local variable: whatever the report shows came from the app.


def status_get(client: HyperIDClient, kind: str) -> object:
    return client.get_transaction_status(wrapped(kind, ACCESS), 7)


def start(client: HyperIDClient, kind: str) -> object:
    return client.start_transaction(wrapped(kind, ACCESS), question="Pay?", code="12")


def refresh(client: HyperIDClient, kind: str) -> object:
    return client.refresh_access_token(
        wrapped(kind, REFRESH),
        client_id="cid",
        client_secret=wrapped(kind, CLIENT_SECRET),
        token_url=TOKEN_URL if client.base_url == BASE else UNREACHABLE + "/token",
    )


def refresh_with_settings_secret(client: HyperIDClient, kind: str) -> object:
    return client.refresh_access_token(wrapped(kind, REFRESH), token_url=TOKEN_URL)


def failure_of(scenario, client: HyperIDClient, kind: str) -> BaseException:
    try:
        scenario(client, kind)
    except Exception as err:
        return err
    pytest.fail("the call did not fail")


def leaks(text: str) -> list[str]:
    return [name for name, value in zip(NAMES, SECRETS, strict=True) if value in text]


def assert_nothing_leaks(error: BaseException, caplog, client: HyperIDClient, settings) -> None:
    rendered = {}
    for debug in (True, False):
        settings.DEBUG = debug
        reporter = ExceptionReporter(None, type(error), error, error.__traceback__)
        rendered[f"html, DEBUG={debug}"] = reporter.get_traceback_html()
        rendered[f"text, DEBUG={debug}"] = reporter.get_traceback_text()
    rendered["str"] = str(error)
    rendered["repr"] = repr(error)
    rendered["log"] = caplog.text
    rendered["client"] = repr(client)
    found = {where: leaks(text) for where, text in rendered.items() if leaks(text)}
    assert found == {}


@pytest.fixture
def client(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "CLIENT_SECRET": CLIENT_SECRET}
    return HyperIDClient(base_url=BASE, timeout=(1, 2), max_retries=1)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(autouse=True)
def _debug_log(caplog):
    caplog.set_level(logging.DEBUG)


KINDS = ["str", "secret"]


# --- the MFA calls ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("scenario", "url", "failure", "expected"),
    [
        (
            status_get,
            STATUS_URL,
            {"body": requests.ConnectionError("connection refused")},
            exceptions.ServiceUnavailable,
        ),
        (
            status_get,
            STATUS_URL,
            {"body": requests.ReadTimeout("read timed out")},
            exceptions.ServiceUnavailable,
        ),
        (status_get, STATUS_URL, {"body": b"garbage"}, exceptions.ProtocolError),
        (status_get, STATUS_URL, {"json": {"result": -5}}, exceptions.TokenInvalid),
        (status_get, STATUS_URL, {"status": 502}, exceptions.ServiceUnavailable),
        (start, START_URL, {"body": b'{"result": 0, "transac'}, exceptions.ProtocolError),
        (
            start,
            START_URL,
            {"body": requests.ReadTimeout("read timed out")},
            exceptions.ServiceUnavailable,
        ),
    ],
    ids=[
        "status-connection-error",
        "status-timeout",
        "status-garbled",
        "status-token-invalid",
        "status-http-502",
        "start-truncated",
        "start-timeout",
    ],
)
def test_no_mfa_call_failure_shows_the_access_token(
    client, rsps, caplog, settings, kind, scenario, url, failure, expected
):
    rsps.post(url, **failure)
    error = failure_of(scenario, client, kind)
    assert isinstance(error, expected)
    assert_nothing_leaks(error, caplog, client, settings)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scenario", [status_get, start, refresh], ids=["status", "start", "token"])
def test_an_unexpected_error_inside_the_http_library_is_reported_without_its_frames(
    settings, caplog, monkeypatch, kind, scenario
):
    def broken_make_request(self, conn, method, url, body=None, headers=None, **kwargs):
        # A library bug whose message quotes the request, as such messages do.
        raise RuntimeError(f"unexpected state for {headers!r} {body!r}")

    monkeypatch.setattr(
        urllib3.connectionpool.HTTPConnectionPool, "_make_request", broken_make_request
    )
    client = HyperIDClient(base_url=UNREACHABLE, timeout=(1, 2), max_retries=2)
    error = failure_of(scenario, client, kind)
    assert isinstance(error, exceptions.ServiceUnavailable)
    assert error.__cause__ is None
    assert error.__context__ is None
    # Logged by class, never by message: the message may quote the headers.
    assert "RuntimeError" in caplog.text
    assert "unexpected state" not in caplog.text
    assert_nothing_leaks(error, caplog, client, settings)


def test_an_unexpected_error_is_not_retried_even_for_an_idempotent_call(monkeypatch):
    calls = []

    def broken_send(self, request, *args, **kwargs):
        calls.append(request.url)
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", broken_send)
    client = HyperIDClient(base_url=UNREACHABLE, max_retries=2)
    with pytest.raises(exceptions.ServiceUnavailable, match="RuntimeError"):
        client.get_transaction_status(ACCESS, 7)
    assert len(calls) == 1


# --- the token endpoint ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ({"status": 400, "json": {"error": "invalid_grant"}}, exceptions.TokenUnavailable),
        ({"status": 401, "json": {"error": "invalid_client"}}, exceptions.TokenUnavailable),
        ({"status": 502}, exceptions.ServiceUnavailable),
        ({"body": requests.ConnectionError("connection refused")}, exceptions.ServiceUnavailable),
        ({"body": requests.ReadTimeout("read timed out")}, exceptions.ServiceUnavailable),
        ({"body": b"<html>not json</html>"}, exceptions.ProtocolError),
        ({"body": b'{"pad": "' + b"x" * 100_000 + b'"}'}, exceptions.ProtocolError),
        # The answer holds new tokens, and is refused after it was parsed.
        ({"json": {"access_token": NEW_ACCESS, "refresh_token": 12}}, exceptions.ProtocolError),
        (
            {"json": {"access_token": NEW_ACCESS + " x", "refresh_token": NEW_REFRESH}},
            exceptions.ProtocolError,
        ),
        (
            {"body": json.dumps({"access_token": NEW_ACCESS, "expires_in": 60})[:-5].encode()},
            exceptions.ProtocolError,
        ),
    ],
    ids=[
        "invalid-grant",
        "invalid-client",
        "http-502",
        "connection-error",
        "timeout",
        "not-json",
        "oversized",
        "bad-refresh-token",
        "bad-access-token",
        "truncated",
    ],
)
def test_no_refresh_failure_shows_a_token_or_the_client_secret(
    client, rsps, caplog, settings, kind, failure, expected
):
    rsps.post(TOKEN_URL, **failure)
    for scenario in (refresh, refresh_with_settings_secret):
        error = failure_of(scenario, client, kind)
        assert isinstance(error, expected)
        assert_nothing_leaks(error, caplog, client, settings)


def test_a_refresh_sends_the_secrets_it_was_given_wrapped(client, rsps):
    rsps.post(
        TOKEN_URL,
        json={"access_token": NEW_ACCESS, "refresh_token": NEW_REFRESH, "expires_in": 60},
        match=[
            responses.matchers.urlencoded_params_matcher(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": REFRESH,
                    "client_id": "cid",
                    "client_secret": CLIENT_SECRET,
                }
            )
        ],
    )
    answer = client.refresh_access_token(
        Secret(REFRESH), client_id="cid", client_secret=Secret(CLIENT_SECRET), token_url=TOKEN_URL
    )
    assert isinstance(answer, TokenResponse)
    assert (answer.access_token, answer.refresh_token) == (NEW_ACCESS, NEW_REFRESH)
    assert leaks(repr(answer)) == []
    assert leaks(str(answer)) == []


def test_the_client_secret_setting_is_sent_and_never_shown(client, rsps, caplog):
    rsps.post(
        TOKEN_URL,
        json={"access_token": NEW_ACCESS},
        match=[
            responses.matchers.urlencoded_params_matcher(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": REFRESH,
                    "client_id": "tests",
                    "client_secret": CLIENT_SECRET,
                }
            )
        ],
    )
    answer = client.refresh_access_token(REFRESH, token_url=TOKEN_URL)
    assert answer.access_token == NEW_ACCESS
    assert leaks(caplog.text) == []


def test_the_bearer_header_is_sent_for_a_secret_token(client, rsps):
    rsps.post(
        STATUS_URL,
        json={"result": 0, "transaction_id": 7, "transaction_status": 0},
        match=[responses.matchers.header_matcher({"Authorization": f"Bearer {ACCESS}"})],
    )
    assert client.get_transaction_status(Secret(ACCESS), 7).is_pending


@pytest.mark.parametrize(
    ("url", "body", "call"),
    [
        (
            STATUS_URL,
            {"result": 0, "transaction_id": 7, "transaction_status": 0},
            lambda c, t: c.get_transaction_status(t, 7),
        ),
        (
            START_URL,
            {"result": 0, "transaction_id": 7},
            lambda c, t: c.start_transaction(t, question="Pay?", code="12"),
        ),
        (CANCEL_URL, {"result": 0}, lambda c, t: c.cancel_transaction(t, 7)),
        (AVAIL_URL, {"result": 0, "is_available": True}, lambda c, t: c.check_availability(t)),
    ],
    ids=["status", "start", "cancel", "availability"],
)
def test_every_call_takes_its_token_as_a_secret(client, rsps, url, body, call):
    rsps.post(
        url,
        json=body,
        match=[responses.matchers.header_matcher({"Authorization": f"Bearer {ACCESS}"})],
    )
    call(client, Secret(ACCESS))
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    "token", [Secret(""), Secret("two words"), Secret("line\nbreak"), Secret("trailing\n")]
)
def test_a_malformed_secret_token_is_refused_before_sending(client, rsps, token):
    with pytest.raises(exceptions.TokenInvalid):
        client.get_transaction_status(token, 7)
    assert len(rsps.calls) == 0
