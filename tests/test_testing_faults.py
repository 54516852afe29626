"""FakeHyperID's faults on a share of the calls, their listing, and their spelling on
the command line (``KIND[:NAME=VALUE,...]``, read by ``parse_fault``)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from hyperid_mfa.constants import AVAILABILITY_PATH, START_PATH
from hyperid_mfa.testing import FakeHyperID
from hyperid_mfa.testing.faults import parse_fault

BASE = "https://api.hyperid.test"
START_BODY = json.dumps(
    {
        "template_id": 4,
        "values": json.dumps({"version": 1, "action": {"type": "question", "action_info": "?"}}),
        "code": "42",
    }
).encode()


def answers(fake: FakeHyperID, token: str, n: int, path: str = AVAILABILITY_PATH) -> list[int]:
    """The HTTP status of ``n`` calls in a row (an availability check by default)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = START_BODY if path == START_PATH else b"{}"
    return [fake.handle("POST", path, headers, body).status for _ in range(n)]


def fake_with_token(seed: int | None = None) -> tuple[FakeHyperID, str]:
    fake = FakeHyperID(BASE, seed=seed)
    return fake, fake.issue_tokens("alice").access_token


def test_a_fault_with_a_share_meets_about_that_share_of_the_calls():
    fake, token = fake_with_token(seed=1)
    fake.inject("http_503", times=None, share=0.3)

    statuses = answers(fake, token, 1000)

    assert set(statuses) == {200, 503}
    assert 240 <= statuses.count(503) <= 360


def test_the_same_seed_meets_the_same_calls_and_another_seed_others():
    runs = []
    for seed in (7, 7, 8):
        fake, token = fake_with_token(seed=seed)
        fake.inject("http_503", times=None, share=0.5)
        runs.append(answers(fake, token, 64))

    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_a_call_that_a_shared_fault_misses_meets_the_next_fault():
    fake, token = fake_with_token(seed=3)
    fake.inject("http_500", times=None, share=0.5)
    fake.inject("http_502", times=None)

    statuses = answers(fake, token, 100)

    assert set(statuses) == {500, 502}


def test_a_shared_fault_with_times_counts_only_the_calls_it_met():
    fake, token = fake_with_token(seed=5)
    fake.inject("http_503", times=3, share=0.5)

    statuses = answers(fake, token, 100)

    assert statuses.count(503) == 3
    assert fake.faults() == []


def test_the_faults_waiting_are_listed_with_the_calls_they_have_left():
    fake, token = fake_with_token()
    fake.inject("http_503", call="start", retry_after=30, times=2)
    fake.inject("result", result=-1, times=None, share=0.25)
    answers(fake, token, 1, START_PATH)

    assert fake.faults() == [
        {"fault": "http_503", "call": "start", "times": 1, "share": 1.0, "retry_after": 30},
        {"fault": "result", "call": None, "times": None, "share": 0.25, "result": -1},
    ]


def test_the_result_fault_bends_the_mfa_calls_and_leaves_the_token_endpoint_alone():
    fake, token = fake_with_token()
    fake.inject("result", result=-1, times=None)
    refresh = fake.issue_tokens("alice").refresh_token
    form = f"grant_type=refresh_token&refresh_token={refresh}&client_id=fake-client"
    form += "&client_secret=fake-secret"

    refreshed = fake.handle(
        "POST",
        "/auth/realms/HyperID/protocol/openid-connect/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        form.encode(),
    )

    assert refreshed.status == 200
    assert "access_token" in refreshed.json()
    headers = {"Authorization": f"Bearer {token}"}
    assert fake.handle("POST", AVAILABILITY_PATH, headers, b"{}").json() == {"result": -1}
    with pytest.raises(ValueError, match="never applies to 'token'"):
        fake.inject("result", result=-1, call="token")


@pytest.mark.parametrize(
    ("share", "error"),
    [(0, ValueError), (1.5, ValueError), (-0.1, ValueError), (float("nan"), ValueError),
     ("0.5", TypeError), (True, TypeError)],
)  # fmt: skip
def test_a_share_outside_0_to_1_is_refused(share: Any, error: type[Exception]):
    with pytest.raises(error, match="share"):
        FakeHyperID(BASE).inject("http_500", share=share)


def test_the_control_endpoints_list_add_and_clear_faults_with_shares():
    fake = FakeHyperID(BASE)

    def control(method: str, body: Any = None) -> Any:
        data = b"" if body is None else json.dumps(body).encode()
        answer = fake.handle(method, "/_fake/faults", {}, data)
        assert answer.status == 200, answer.body
        return answer.json()

    control("POST", {"fault": "result", "result": -1, "times": None, "share": 0.2})
    assert control("GET") == [
        {"fault": "result", "call": None, "times": None, "share": 0.2, "result": -1}
    ]
    refused = fake.handle("POST", "/_fake/faults", {}, b'{"fault": "html", "share": 2}')
    assert refused.status == 400
    assert "share" in refused.json()["error"]
    control("DELETE")
    assert control("GET") == []


# --- the command line's spelling ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fault", "keywords"),
    [
        ("html", "html", {"times": None}),
        ("http_503:retry_after=30", "http_503", {"times": None, "retry_after": 30}),
        (
            " http_503 : retry_after = 30 , call = start ",
            "http_503",
            {"times": None, "call": "start", "retry_after": 30},
        ),
        ("result:result=-1,share=0.2", "result", {"times": None, "share": 0.2, "result": -1}),
        ("delay:seconds=2.5,call=start,times=3", "delay",
         {"call": "start", "times": 3, "seconds": 2.5}),
        ("missing_field:field=transaction_id", "missing_field",
         {"times": None, "field": "transaction_id"}),
        ('status:value="1"', "status", {"times": None, "value": "1"}),
        ("status:value=null", "status", {"times": None, "value": None}),
    ],
)  # fmt: skip
def test_a_fault_is_spelled_kind_colon_name_equals_value(text, fault, keywords):
    assert parse_fault(text) == (fault, keywords)
    FakeHyperID(BASE).inject(fault, **keywords)  # what the simulator then does


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "unknown fault ''"),
        ("http_999", "unknown fault 'http_999'"),
        ("delay", "needs parameter(s) ['seconds']"),
        ("delay:seconds", "'seconds' in 'delay:seconds' is not NAME=VALUE"),
        ("delay:seconds=", "is not NAME=VALUE"),
        ("delay:=1", "is not NAME=VALUE"),
        ("delay:seconds=1,,", "is not NAME=VALUE"),
        ("delay:seconds=1,seconds=2", "seconds is given twice"),
        ("delay:seconds=-1", "seconds must be a non-negative number"),
        ("delay:seconds=abc", "seconds must be a number"),
        ("html:colour=red", "takes no parameter(s) ['colour']"),
        ("html:call=phone", "unknown call 'phone'"),
        ("status:value=3,call=start", "never applies to 'start'"),
        ("html:share=0", "share must be more than 0"),
        ("html:share=lots", "share must be a number"),
        ("html:times=-1", "times must be a non-negative int"),
    ],
)
def test_a_fault_spelled_wrong_is_refused_with_the_reason(text: str, reason: str):
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_fault(text)
