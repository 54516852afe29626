"""HyperIDClient on the wire: what it sends, what it accepts, what it refuses."""

from __future__ import annotations

import json
import logging
import traceback

import pytest
import requests
import responses
from responses import matchers

from hyperid_mfa import exceptions
from hyperid_mfa.client.calls import USER_AGENT, HyperIDClient, StatusResponse
from hyperid_mfa.constants import CompleteResult, Result, Status

BASE = "https://hyperid.example"
STATUS_URL = BASE + "/mfa-client/transaction/status-get"
START_URL = BASE + "/mfa-client/transaction/start/v2"
CANCEL_URL = BASE + "/mfa-client/transaction/cancel"
AVAIL_URL = BASE + "/mfa-client/availability-check"
TOKEN_URL = "https://login.example/realms/x/protocol/openid-connect/token"
TOKEN = "eyJhbGciOi.SECRET-TOKEN-VALUE.c2lnbmF0dXJl"


@pytest.fixture
def client(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(HyperIDClient, "sleep", lambda self, seconds: waits.append(seconds))
    c = HyperIDClient(base_url=BASE, timeout=(1, 2), max_retries=2)
    c.waits = waits
    return c


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def status_answer(tid=7, status=0, complete=0, result=0, **extra):
    body = {
        "result": result,
        "transaction_id": tid,
        "transaction_status": status,
        "transaction_complete_result": complete,
    }
    body.update(extra)
    return body


# --- status-get: the seed -----------------------------------------------------------------


def test_status_get_sends_the_seed_request_shape(client, rsps):
    rsps.post(
        STATUS_URL,
        json=status_answer(tid=3),
        match=[
            matchers.json_params_matcher({"transaction_id": 3}, strict_match=True),
            matchers.header_matcher(
                {
                    "Authorization": f"Bearer {TOKEN}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                }
            ),
        ],
    )
    answer = client.get_transaction_status(TOKEN, 3)
    assert answer == StatusResponse(0, 3, Status.PENDING, None)
    assert answer.is_pending
    assert not answer.is_terminal
    assert not answer.is_approved


def test_status_get_reads_approval_only_from_completed_and_approved(client, rsps):
    rsps.post(STATUS_URL, json=status_answer(tid=1234, status=1, complete=0))
    answer = client.get_transaction_status(TOKEN, 1234)
    assert answer.is_approved
    assert answer.is_terminal
    assert answer.transaction_complete_result is CompleteResult.APPROVED


def test_status_get_reads_denial(client, rsps):
    rsps.post(STATUS_URL, json=status_answer(status=1, complete=1))
    answer = client.get_transaction_status(TOKEN, 7)
    assert answer.is_denied
    assert not answer.is_approved


@pytest.mark.parametrize("status", [Status.EXPIRED, Status.CANCELED])
def test_expired_and_declined_are_terminal_and_never_approved(client, rsps, status):
    # HyperID may send complete_result 0 ("approved") where it means nothing.
    rsps.post(STATUS_URL, json=status_answer(status=int(status), complete=0))
    answer = client.get_transaction_status(TOKEN, 7)
    assert answer.is_terminal
    assert not answer.is_approved
    assert not answer.is_denied
    assert answer.transaction_complete_result is None


def test_complete_result_is_ignored_while_pending_even_if_garbage(client, rsps):
    rsps.post(STATUS_URL, json=status_answer(status=0, complete="approved"))
    assert client.get_transaction_status(TOKEN, 7).is_pending


def test_complete_result_may_be_absent_while_pending(client, rsps):
    rsps.post(STATUS_URL, json={"result": 0, "transaction_id": 7, "transaction_status": 0})
    assert client.get_transaction_status(TOKEN, 7).is_pending


@pytest.mark.parametrize(
    ("result", "exception"),
    [
        (-2, exceptions.InvalidParameters),
        (-3, exceptions.AccessDenied),
        (-4, exceptions.TokenExpired),
        (-5, exceptions.TokenInvalid),
        (-6, exceptions.TransactionNotFound),
    ],
)
def test_each_seed_result_code_raises_its_own_exception(client, rsps, result, exception):
    rsps.post(STATUS_URL, json={"result": result})
    with pytest.raises(exception) as info:
        client.get_transaction_status(TOKEN, 7)
    assert info.value.result == result
    assert info.value.call == "status-get"
    assert info.value.transaction_id == 7
    assert len(rsps.calls) == 1  # not transient: not retried


def test_result_minus_one_is_retried_then_reported_unavailable(client, rsps):
    rsps.post(STATUS_URL, json={"result": -1})
    with pytest.raises(exceptions.ServiceUnavailable) as info:
        client.get_transaction_status(TOKEN, 7)
    assert info.value.result == Result.SERVICE_UNAVAILABLE
    assert len(rsps.calls) == 3  # 1 + MAX_RETRIES
    assert len(client.waits) == 2


def test_transient_failure_then_success_returns_the_answer(client, rsps):
    rsps.post(STATUS_URL, status=503)
    rsps.post(STATUS_URL, body=requests.ConnectionError("reset"))
    rsps.post(STATUS_URL, json=status_answer(status=1, complete=0))
    assert client.get_transaction_status(TOKEN, 7).is_approved
    assert len(rsps.calls) == 3


def test_backoff_grows_with_jitter_within_bounds(client, rsps, monkeypatch):
    monkeypatch.setattr("hyperid_mfa.client.calls.random.random", lambda: 1.0)
    rsps.post(STATUS_URL, status=502)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.get_transaction_status(TOKEN, 7)
    assert client.waits == [0.25, 0.5]


def test_retry_after_is_honoured_when_short(client, rsps):
    rsps.post(STATUS_URL, status=503, headers={"Retry-After": "3"})
    rsps.post(STATUS_URL, json=status_answer())
    client.get_transaction_status(TOKEN, 7)
    assert client.waits == [3.0]


def test_long_retry_after_is_not_waited_for_but_reported(client, rsps):
    rsps.post(STATUS_URL, status=503, headers={"Retry-After": "120"})
    with pytest.raises(exceptions.ServiceUnavailable) as info:
        client.get_transaction_status(TOKEN, 7)
    assert info.value.retry_after == 120
    assert info.value.http_status == 503
    assert len(rsps.calls) == 1
    assert client.waits == []


def test_client_errors_are_not_retried(client, rsps):
    rsps.post(STATUS_URL, status=404)
    with pytest.raises(exceptions.ServiceUnavailable) as info:
        client.get_transaction_status(TOKEN, 7)
    assert info.value.http_status == 404
    assert len(rsps.calls) == 1


def test_redirects_are_not_followed(client, rsps):
    rsps.post(STATUS_URL, status=302, headers={"Location": "https://evil.example/x"})
    with pytest.raises(exceptions.ServiceUnavailable):
        client.get_transaction_status(TOKEN, 7)
    assert [c.request.url for c in rsps.calls] == [STATUS_URL]


def test_timeouts_are_always_set(client, rsps):
    seen = []

    def callback(request):
        seen.append(request.req_kwargs["timeout"])
        return (200, {}, json.dumps(status_answer()))

    rsps.add_callback(responses.POST, STATUS_URL, callback=callback)
    client.get_transaction_status(TOKEN, 7)
    assert seen == [(1.0, 2.0)]


def test_timeout_is_retried_for_status_get(client, rsps):
    rsps.post(STATUS_URL, body=requests.ReadTimeout("slow"))
    rsps.post(STATUS_URL, json=status_answer())
    assert client.get_transaction_status(TOKEN, 7).is_pending


# --- status-get: answers that cannot be trusted -----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b'{"result": 0, "transaction_id": 7, "transac',
        b"",
        b"[]",
        b"null",
        b'"ok"',
        b'{"result": NaN}',
        b"\xff\xfe",
        b'{"result": 0, "result": -5, "transaction_id": 7, "transaction_status": 1}',
    ],
    ids=["html", "truncated", "empty", "array", "null", "string", "nan", "not-utf8", "dup-keys"],
)
def test_unparsable_answers_are_protocol_errors(client, rsps, body):
    rsps.post(STATUS_URL, body=body, status=200)
    with pytest.raises(exceptions.ProtocolError):
        client.get_transaction_status(TOKEN, 7)


@pytest.mark.parametrize(
    "body",
    [
        {"transaction_id": 7, "transaction_status": 1, "transaction_complete_result": 0},
        {"result": "0", "transaction_id": 7, "transaction_status": 1},
        {"result": False, "transaction_id": 7, "transaction_status": 1},
        {"result": 0.0, "transaction_id": 7, "transaction_status": 1},
        {"result": -9},
        {"result": 42},
        status_answer(tid=8, status=1, complete=0),
        status_answer(tid="7", status=1, complete=0),
        status_answer(tid=True, status=1, complete=0),
        {"result": 0, "transaction_status": 1, "transaction_complete_result": 0},
        status_answer(status=3, complete=0),
        status_answer(status=5, complete=0),
        status_answer(status=-1, complete=0),
        status_answer(status=True, complete=0),
        status_answer(status="1", complete=0),
        status_answer(status=1.0, complete=0),
        status_answer(status=None, complete=0),
        {"result": 0, "transaction_id": 7, "transaction_complete_result": 0},
        status_answer(status=1, complete=2),
        status_answer(status=1, complete=-1),
        status_answer(status=1, complete=False),
        status_answer(status=1, complete="0"),
        status_answer(status=1, complete=None),
        {"result": 0, "transaction_id": 7, "transaction_status": 1},
    ],
    ids=[
        "no-result",
        "result-string",
        "result-bool",
        "result-float",
        "result-of-another-call",
        "result-unknown",
        "other-transaction",
        "tid-string",
        "tid-bool",
        "tid-missing",
        "status-3",
        "status-5",
        "status-negative",
        "status-bool",
        "status-string",
        "status-float",
        "status-null",
        "status-missing",
        "complete-2",
        "complete-negative",
        "complete-bool",
        "complete-string",
        "complete-null",
        "complete-missing",
    ],
)
def test_answers_outside_the_protocol_raise_and_are_never_approval(client, rsps, body):
    rsps.post(STATUS_URL, json=body)
    with pytest.raises(exceptions.ProtocolError):
        client.get_transaction_status(TOKEN, 7)
    assert len(rsps.calls) == 1


def test_oversized_answer_is_refused(client, rsps):
    rsps.post(STATUS_URL, body=b'{"pad": "' + b"x" * 100_000 + b'"}')
    with pytest.raises(exceptions.ProtocolError, match="larger than"):
        client.get_transaction_status(TOKEN, 7)


def test_unknown_extra_fields_are_tolerated(client, rsps):
    rsps.post(STATUS_URL, json=status_answer(status=1, complete=1, note="new field"))
    assert client.get_transaction_status(TOKEN, 7).is_denied


# --- bad input: refused before anything is sent -------------------------------------------


@pytest.mark.parametrize(
    "transaction_id", [True, False, "7", 7.0, 0, -1, 2**63, None, [7], {"id": 7}]
)
def test_bad_transaction_ids_are_refused_before_sending(client, rsps, transaction_id):
    with pytest.raises(exceptions.InvalidParameters):
        client.get_transaction_status(TOKEN, transaction_id)
    with pytest.raises(exceptions.InvalidParameters):
        client.cancel_transaction(TOKEN, transaction_id)
    assert len(rsps.calls) == 0


def test_largest_transaction_id_is_accepted(client, rsps):
    rsps.post(STATUS_URL, json=status_answer(tid=2**63 - 1))
    assert client.get_transaction_status(TOKEN, 2**63 - 1).transaction_id == 2**63 - 1


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", None, 12])
def test_malformed_tokens_are_refused_without_echoing_them(client, rsps, token):
    with pytest.raises(exceptions.TokenInvalid) as info:
        client.get_transaction_status(token, 7)
    assert len(rsps.calls) == 0
    if isinstance(token, str) and token:
        assert token not in str(info.value)


# --- start, cancel, availability ------------------------------------------------------------


def test_start_sends_template_values_and_code(client, rsps):
    rsps.post(START_URL, json={"result": 0, "transaction_id": 99})
    assert client.start_transaction(TOKEN, question="Withdraw 500 EUR?", code="07") == 99
    sent = json.loads(rsps.calls[0].request.body)
    assert sent["template_id"] == 4
    assert sent["code"] == "07"
    assert json.loads(sent["values"]) == {
        "version": 1,
        "action": {"type": "question", "action_info": "Withdraw 500 EUR?"},
    }


@pytest.mark.parametrize("code", ["7", "007", "ab", "\u0660\u0667", 7, None])
def test_start_refuses_codes_that_are_not_two_digits(client, rsps, code):
    with pytest.raises(exceptions.InvalidParameters):
        client.start_transaction(TOKEN, question="q", code=code)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    ("result", "exception"),
    [
        (-7, exceptions.NoAuthenticatorDevice),
        (-8, exceptions.TemplateNotFound),
        (-4, exceptions.TokenExpired),
        (-1, exceptions.ServiceUnavailable),
        (-6, exceptions.ProtocolError),
    ],
)
def test_start_failures(client, rsps, result, exception):
    rsps.post(START_URL, json={"result": result})
    with pytest.raises(exception):
        client.start_transaction(TOKEN, question="q", code="12")


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503},
        {"body": requests.ReadTimeout("slow")},
        {"json": {"result": -1}},
    ],
    ids=["http-503", "read-timeout", "result-minus-one"],
)
def test_start_is_never_retried_once_it_may_have_reached_hyperid(client, rsps, failure):
    rsps.post(START_URL, **failure)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.start_transaction(TOKEN, question="q", code="12")
    assert len(rsps.calls) == 1


def test_start_is_retried_when_the_connection_was_never_made(client, rsps):
    rsps.post(START_URL, body=requests.ConnectTimeout("no route"))
    rsps.post(START_URL, json={"result": 0, "transaction_id": 5})
    assert client.start_transaction(TOKEN, question="q", code="12") == 5


@pytest.mark.parametrize("tid", [0, -3, "5", True, None, 2**63])
def test_start_answer_with_impossible_transaction_id_is_a_protocol_error(client, rsps, tid):
    rsps.post(START_URL, json={"result": 0, "transaction_id": tid})
    with pytest.raises(exceptions.ProtocolError):
        client.start_transaction(TOKEN, question="q", code="12")


@pytest.mark.parametrize("result", [0, -8, -10])
def test_cancel_succeeds_when_canceled_or_already_over(client, rsps, result):
    rsps.post(
        CANCEL_URL,
        json={"result": result},
        match=[matchers.json_params_matcher({"transaction_id": 9})],
    )
    assert client.cancel_transaction(TOKEN, 9) is None


def test_cancel_after_the_user_answered_says_so(client, rsps):
    rsps.post(CANCEL_URL, json={"result": -9})
    with pytest.raises(exceptions.TransactionAlreadyCompleted):
        client.cancel_transaction(TOKEN, 9)


@pytest.mark.parametrize("available", [True, False])
def test_availability(client, rsps, available):
    rsps.post(AVAIL_URL, json={"result": 0, "is_available": available})
    assert client.check_availability(TOKEN) is available


@pytest.mark.parametrize("value", [None, 1, "true"])
def test_availability_must_be_a_boolean(client, rsps, value):
    rsps.post(AVAIL_URL, json={"result": 0, "is_available": value})
    with pytest.raises(exceptions.ProtocolError):
        client.check_availability(TOKEN)


# --- token endpoint -------------------------------------------------------------------------


def test_refresh_posts_form_with_client_credentials(client, rsps):
    rsps.post(
        TOKEN_URL,
        json={"access_token": "new.access.token", "refresh_token": "r2", "expires_in": 300},
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": "r1",
                    "client_id": "cid",
                    "client_secret": "csecret",
                }
            )
        ],
    )
    answer = client.refresh_access_token(
        "r1", client_id="cid", client_secret="csecret", token_url=TOKEN_URL
    )
    assert answer.access_token == "new.access.token"
    assert answer.refresh_token == "r2"
    assert answer.expires_in == 300
    assert "new.access.token" not in repr(answer)
    assert "r2" not in repr(answer)


def test_refused_refresh_means_token_unavailable(client, rsps):
    rsps.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(exceptions.TokenUnavailable, match="invalid_grant"):
        client.refresh_access_token("r1", token_url=TOKEN_URL)


def test_token_endpoint_down_is_unavailable_not_reauthentication(client, rsps):
    rsps.post(TOKEN_URL, status=502)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.refresh_access_token("r1", token_url=TOKEN_URL)


# --- tokens never leak ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        {"body": requests.ConnectionError("connection refused")},
        {"body": requests.ReadTimeout("read timed out")},
        {"status": 500},
        {"body": b"garbage"},
        {"json": {"result": -5}},
    ],
)
def test_no_failure_reveals_the_token(client, rsps, failure, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.post(STATUS_URL, **failure)
    with pytest.raises(exceptions.HyperIDError) as info:
        client.get_transaction_status(TOKEN, 7)
    rendered = "".join(traceback.format_exception(info.value))
    texts = [str(info.value), repr(info.value), rendered, caplog.text]
    cause = info.value.__cause__ or info.value.__context__
    if cause is not None:
        texts += [str(cause), repr(cause), repr(getattr(cause, "request", None))]
    for text in texts:
        assert "SECRET-TOKEN-VALUE" not in text


# --- connection reuse and settings ---------------------------------------------------------


def test_one_session_is_reused_across_calls(client, rsps):
    rsps.post(STATUS_URL, json=status_answer())
    client.get_transaction_status(TOKEN, 7)
    first = client.session
    client.get_transaction_status(TOKEN, 7)
    assert client.session is first


def test_default_client_follows_settings_overrides(settings, rsps):
    rsps.post("https://other.example/mfa-client/transaction/status-get", json=status_answer())
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "API_BASE_URL": "https://other.example/"}
    assert HyperIDClient().get_transaction_status(TOKEN, 7).is_pending


def test_session_verify_is_passed_on_every_call(rsps, monkeypatch):
    # requests lets REQUESTS_CA_BUNDLE override a session's verify unless passed per call.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    session = requests.Session()
    session.verify = "/custom/ca.pem"
    seen = []

    def callback(request):
        seen.append(request.req_kwargs["verify"])
        return (200, {}, json.dumps(status_answer()))

    rsps.add_callback(responses.POST, STATUS_URL, callback=callback)
    HyperIDClient(base_url=BASE, session=session).get_transaction_status(TOKEN, 7)
    assert seen == ["/custom/ca.pem"]
