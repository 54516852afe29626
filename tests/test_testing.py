"""FakeHyperID: the in-memory HyperID, its `responses` transport and its HTTP server.

These tests use plain ``requests`` and JSON on purpose: the fake is the reference the
app's client is tested against, so it must not be tested through that client.
The fake needs no Django settings; from the app these tests take only the result
codes each call may answer (``results_of``), the list the fake must keep to.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperid_mfa.constants import (
    AVAILABILITY_PATH,
    CANCEL_PATH,
    START_PATH,
    STATUS_GET_PATH,
    CompleteResult,
    Status,
)
from hyperid_mfa.exceptions import results_of
from hyperid_mfa.testing import (
    CALLS,
    FAULTS,
    FakeHyperID,
    FakeHyperIDServer,
    FakeResponse,
    FakeTransaction,
    RecordedCall,
    TokenPair,
)
from tests.conftest import import_or_skip

BASE = "https://api.hyperid.test"
SUBJECT = "alice-subject"
OTHER = "bob-subject"
T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parent.parent

PATHS = {
    "status-get": STATUS_GET_PATH,
    "start": START_PATH,
    "cancel": CANCEL_PATH,
    "availability": AVAILABILITY_PATH,
}


def values(question: str = "Withdraw 500 EUR?", **overrides: Any) -> str:
    document: dict[str, Any] = {
        "version": 1,
        "action": {"type": "question", "action_info": question},
    }
    document.update(overrides)
    return json.dumps(document)


def start_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"template_id": 4, "values": values(), "code": "07"}
    body.update(overrides)
    return body


def default_body(name: str) -> Any:
    return {
        "status-get": {"transaction_id": 1},
        "start": start_body(),
        "cancel": {"transaction_id": 1},
        "availability": {},
    }[name]


class Api:
    """Plain HTTP calls to a fake, the way any HyperID client would make them."""

    def __init__(self, fake: FakeHyperID, session: requests.Session | None = None) -> None:
        self.fake = fake
        self.http: Any = session or requests

    def post(
        self, name: str, token: str | None, body: Any = None, *, raw: bytes | None = None
    ) -> requests.Response:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else json.dumps(default_body(name) if body is None else body)
        response: requests.Response = self.http.post(
            self.fake.base_url + PATHS[name], data=data, headers=headers, timeout=5
        )
        return response

    def result(self, name: str, token: str | None, body: Any = None, **kw: Any) -> dict[str, Any]:
        response = self.post(name, token, body, **kw)
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        return answer

    def start(self, token: str, **overrides: Any) -> int:
        answer = self.result("start", token, start_body(**overrides))
        assert answer["result"] == 0, answer
        return int(answer["transaction_id"])

    def status(self, token: str, transaction_id: Any) -> dict[str, Any]:
        return self.result("status-get", token, {"transaction_id": transaction_id})

    def cancel(self, token: str, transaction_id: Any) -> dict[str, Any]:
        return self.result("cancel", token, {"transaction_id": transaction_id})

    def refresh(self, refresh_token: str | None, **overrides: Any) -> requests.Response:
        form: dict[str, Any] = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.fake.client_id,
            "client_secret": self.fake.client_secret,
        }
        form.update(overrides)
        form = {k: v for k, v in form.items() if v is not None}
        auth = form.pop("auth", None)
        response: requests.Response = self.http.post(
            self.fake.token_url, data=form, auth=auth, timeout=5
        )
        return response


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


@pytest.fixture
def fake() -> FakeHyperID:
    return FakeHyperID(BASE, clock=lambda: T0)


@pytest.fixture
def api(fake: FakeHyperID) -> Iterator[Api]:
    with fake.mock():
        yield Api(fake)


@pytest.fixture
def token(fake: FakeHyperID) -> str:
    return fake.issue_tokens(SUBJECT).access_token


@pytest.fixture
def other_token(fake: FakeHyperID) -> str:
    return fake.issue_tokens(OTHER).access_token


@pytest.fixture
def served() -> Iterator[tuple[FakeHyperID, FakeHyperIDServer]]:
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:
        yield fake, server
    assert server.errors == []


# ----------------------------------------------------------------------------- package


def test_importing_the_testing_package_does_not_import_django() -> None:
    code = (
        "import sys, hyperid_mfa.testing as t; t.FakeHyperIDServer; "
        "sys.exit(1 if any(m == 'django' or m.startswith('django.') for m in sys.modules) else 0)"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False, timeout=60)
    assert completed.returncode == 0


def test_public_names_are_exported() -> None:
    assert set(CALLS) == {"status-get", "start", "cancel", "availability", "token"}
    assert {"http_503", "timeout", "connection_error", "missing_field", "delay"} <= FAULTS


# ----------------------------------------------------------------------------- accounts and tokens


def test_add_user_makes_a_uuid_subject_when_none_is_given(fake: FakeHyperID) -> None:
    subject = fake.add_user()
    assert len(subject) == 36
    assert subject.count("-") == 4
    assert fake.add_user() != subject


def test_add_user_is_idempotent_and_sets_the_device_state(fake: FakeHyperID, api: Api) -> None:
    assert fake.add_user(SUBJECT) == SUBJECT
    assert fake.add_user(SUBJECT) == SUBJECT
    token = fake.issue_tokens(SUBJECT).access_token
    assert api.result("availability", token) == {"result": 0, "is_available": True}
    fake.add_user(SUBJECT, has_device=False)
    assert api.result("availability", token) == {"result": 0, "is_available": False}


def test_set_device_on_an_unknown_user_raises_key_error(fake: FakeHyperID) -> None:
    with pytest.raises(KeyError):
        fake.set_device("nobody", True)


def test_issued_tokens_are_hs256_jwts_with_the_expected_claims(fake: FakeHyperID) -> None:
    pair = fake.issue_tokens(SUBJECT, scopes=("openid", "mfa-client"), expires_in=120)
    header = claims_of("x." + pair.access_token.split(".")[0])
    assert header["alg"] == "HS256"
    assert header["typ"] == "JWT"
    claims = claims_of(pair.access_token)
    assert claims["sub"] == SUBJECT
    assert claims["scope"] == "openid mfa-client"
    assert claims["iat"] == int(T0)
    assert claims["exp"] == int(T0) + 120
    assert claims["iss"] == BASE + "/auth/realms/HyperID"
    assert claims["jti"]
    assert claims_of(pair.refresh_token)["jti"] != claims["jti"]
    assert pair.expires_in == 120


def test_token_pair_unpacks_and_never_shows_tokens_in_repr(fake: FakeHyperID) -> None:
    pair = fake.issue_tokens(SUBJECT)
    access, refresh, expires_in = pair
    assert (access, refresh, expires_in) == (pair.access_token, pair.refresh_token, 3600)
    assert access not in repr(pair)
    assert refresh not in repr(pair)
    assert isinstance(pair, TokenPair)


def test_issue_tokens_adds_an_unknown_user_with_a_device(fake: FakeHyperID, api: Api) -> None:
    token = fake.issue_tokens("new-user").access_token
    assert api.result("availability", token)["is_available"] is True


def test_subject_of_names_the_owner_of_known_tokens_only(fake: FakeHyperID) -> None:
    pair = fake.issue_tokens(SUBJECT, expires_in=-1)
    assert fake.subject_of(pair.access_token) == SUBJECT
    assert fake.subject_of(pair.refresh_token) is None
    assert fake.subject_of("a.b.c") is None
    assert fake.subject_of(FakeHyperID().issue_tokens(SUBJECT).access_token) is None


@pytest.mark.parametrize("name", list(PATHS))
def test_every_call_answers_minus_5_without_a_usable_authorization(
    fake: FakeHyperID, api: Api, name: str
) -> None:
    headers_to_try = [None, "", "Basic Zm9vOmJhcg==", "Bearer", "Bearer   ", "Bearer abc", "x y z"]
    for authorization in headers_to_try:
        headers = {} if authorization is None else {"Authorization": authorization}
        response = requests.post(
            fake.base_url + PATHS[name], json=default_body(name), headers=headers, timeout=5
        )
        assert response.json() == {"result": -5}, authorization


@pytest.mark.parametrize("name", list(PATHS))
def test_every_call_answers_minus_5_for_forged_foreign_or_refresh_tokens(
    fake: FakeHyperID, api: Api, name: str
) -> None:
    pair = fake.issue_tokens(SUBJECT)
    header, payload, signature = pair.access_token.split(".")
    forged_claims = dict(claims_of(pair.access_token), sub=OTHER)
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=")
    forged = f"{header}.{forged_payload.decode()}.{signature}"
    foreign = FakeHyperID(BASE).issue_tokens(SUBJECT).access_token
    for bad in (forged, foreign, pair.refresh_token, f"{header}.{payload}.", "a.b.c.d"):
        assert api.result(name, bad) == {"result": -5}


@pytest.mark.parametrize("name", list(PATHS))
def test_every_call_answers_minus_4_once_the_access_token_expires(
    fake: FakeHyperID, api: Api, name: str
) -> None:
    token = fake.issue_tokens(SUBJECT, expires_in=60).access_token
    fake.advance(59.5)
    assert api.result(name, token)["result"] != -4
    fake.advance(0.5)
    assert api.result(name, token) == {"result": -4}


def test_expire_access_token_makes_its_next_use_answer_minus_4(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    fake.expire_access_token(token)
    assert api.result("availability", token) == {"result": -4}
    with pytest.raises(ValueError, match="not an access token"):
        fake.expire_access_token("not-a-token")


def test_issue_tokens_with_non_positive_expires_in_gives_an_expired_token(
    fake: FakeHyperID, api: Api
) -> None:
    token = fake.issue_tokens(SUBJECT, expires_in=0).access_token
    assert api.result("availability", token) == {"result": -4}


@pytest.mark.parametrize("name", list(PATHS))
def test_every_call_answers_minus_5_after_the_tokens_are_revoked(
    fake: FakeHyperID, api: Api, token: str, name: str
) -> None:
    expired = fake.issue_tokens(SUBJECT, expires_in=-5).access_token
    fake.revoke_tokens(SUBJECT)
    assert api.result(name, token) == {"result": -5}
    assert api.result(name, expired) == {"result": -5}


def test_revocation_spares_other_users_and_later_sign_ins(
    fake: FakeHyperID, api: Api, token: str, other_token: str
) -> None:
    fake.revoke_tokens(SUBJECT)
    assert api.result("availability", other_token)["result"] == 0
    fresh = fake.issue_tokens(SUBJECT).access_token
    assert api.result("availability", fresh)["result"] == 0
    assert api.result("availability", token) == {"result": -5}


@pytest.mark.parametrize("name", list(PATHS))
def test_every_call_answers_minus_3_without_the_mfa_client_scope(
    fake: FakeHyperID, api: Api, name: str
) -> None:
    token = fake.issue_tokens(SUBJECT, scopes=("openid", "email")).access_token
    assert api.result(name, token) == {"result": -3}
    assert fake.issue_tokens(SUBJECT, scopes="openid mfa-client").access_token


# ----------------------------------------------------------------------------- status-get


def test_status_get_reports_a_pending_transaction(api: Api, token: str) -> None:
    transaction_id = api.start(token)
    assert api.status(token, transaction_id) == {
        "result": 0,
        "transaction_id": transaction_id,
        "transaction_status": 0,
        "transaction_complete_result": 0,
    }


def test_status_get_reports_approval_after_authenticator_approves(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token)
    approved = fake.approve(transaction_id)
    assert approved.is_approved
    assert approved.state == "approved"
    answer = api.status(token, transaction_id)
    assert (answer["transaction_status"], answer["transaction_complete_result"]) == (1, 0)


def test_status_get_reports_denial_after_authenticator_denies(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token)
    assert fake.deny(transaction_id).complete_result == CompleteResult.DENIED
    answer = api.status(token, transaction_id)
    assert (answer["transaction_status"], answer["transaction_complete_result"]) == (1, 1)


@pytest.mark.parametrize(("action", "status"), [("decline", 4), ("expire", 2)])
def test_status_get_reports_declined_and_expired_transactions(
    fake: FakeHyperID, api: Api, token: str, action: str, status: int
) -> None:
    transaction_id = api.start(token)
    after = getattr(fake, action)(transaction_id)
    assert after.status == status
    assert after.complete_result is None
    answer = api.status(token, transaction_id)
    assert (answer["transaction_status"], answer["transaction_complete_result"]) == (status, 0)


def test_status_get_reports_a_pending_transaction_past_its_ttl_as_expired(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token)
    fake.advance(299)
    assert api.status(token, transaction_id)["transaction_status"] == 0
    fake.advance(1)
    assert api.status(token, transaction_id)["transaction_status"] == 2
    assert fake.transaction(transaction_id).status == Status.EXPIRED
    assert fake.pending() == []


def test_status_get_answers_minus_6_for_unknown_foreign_and_forgotten_transactions(
    fake: FakeHyperID, api: Api, token: str, other_token: str
) -> None:
    transaction_id = api.start(token)
    assert api.status(token, transaction_id + 1) == {"result": -6}
    assert api.status(other_token, transaction_id) == {"result": -6}
    assert api.status(token, 2**63 - 1) == {"result": -6}
    fake.forget(transaction_id)
    assert api.status(token, transaction_id) == {"result": -6}


@pytest.mark.parametrize(
    "transaction_id", [True, False, 0, -1, 2**63, "1", 1.0, None, [1], {"id": 1}]
)
def test_status_get_answers_minus_2_for_invalid_transaction_ids(
    api: Api, token: str, transaction_id: Any
) -> None:
    assert api.status(token, transaction_id) == {"result": -2}


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b"1", b'"x"', b"{", b"\xff\xfe", b'{"transaction_id": NaN}', b"{}"]
)
@pytest.mark.parametrize("name", ["status-get", "start", "cancel"])
def test_calls_answer_minus_2_for_bodies_that_are_not_the_expected_json_object(
    api: Api, token: str, raw: bytes, name: str
) -> None:
    assert api.result(name, token, raw=raw) == {"result": -2}


# ----------------------------------------------------------------------------- start


def test_start_creates_a_pending_transaction_with_question_and_code(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token, values=values("Delete the account?"), code="42")
    txn = fake.transaction(transaction_id)
    assert txn == FakeTransaction(
        transaction_id=transaction_id,
        subject=SUBJECT,
        question="Delete the account?",
        code="42",
        template_id=4,
        status=Status.PENDING,
        complete_result=None,
        created_at=T0,
        expires_at=T0 + 300,
    )
    assert txn.is_pending
    assert fake.pending(SUBJECT) == [txn]


def test_start_numbers_transactions_upwards_from_first_transaction_id() -> None:
    fake = FakeHyperID(BASE, first_transaction_id=1000)
    token = fake.issue_tokens(SUBJECT).access_token
    with fake.mock():
        api = Api(fake)
        assert [api.start(token) for _ in range(3)] == [1000, 1001, 1002]


def test_start_answers_minus_8_for_a_template_other_than_4(api: Api, token: str) -> None:
    for template_id in (1, 3, 5, 2**40):
        assert api.result("start", token, start_body(template_id=template_id)) == {"result": -8}


@pytest.mark.parametrize(
    "overrides",
    [
        {"template_id": "4"},
        {"template_id": True},
        {"template_id": None},
        {"template_id": 4.0},
        {"values": json.loads(values())},
        {"values": "{not json"},
        {"values": "[]"},
        {"values": values(version=2)},
        {"values": values(version=True)},
        {"values": values(version="1")},
        {"values": values(action={"type": "confirm", "action_info": "x"})},
        {"values": values(action={"type": "question", "action_info": 7})},
        {"values": values(action={"type": "question"})},
        {"values": json.dumps({"version": 1})},
        {"code": "7"},
        {"code": "007"},
        {"code": "ab"},
        {"code": 7},
        {"code": None},
        {"code": "\u0660\u0667"},
        {"code": "\u00b23"},
        {"code": " 7"},
    ],
)
def test_start_answers_minus_2_for_invalid_parameters(
    fake: FakeHyperID, api: Api, token: str, overrides: dict[str, Any]
) -> None:
    assert api.result("start", token, start_body(**overrides)) == {"result": -2}
    assert fake.transactions() == []


def test_start_answers_minus_2_when_a_field_is_missing(api: Api, token: str) -> None:
    for field in ("template_id", "values", "code"):
        body = start_body()
        del body[field]
        assert api.result("start", token, body) == {"result": -2}


def test_start_answers_minus_7_while_the_user_has_no_device(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    fake.set_device(SUBJECT, False)
    assert api.result("start", token, start_body()) == {"result": -7}
    fake.set_device(SUBJECT, True)
    assert api.start(token) == 1


def test_start_accepts_an_empty_question(api: Api, token: str) -> None:
    assert api.start(token, values=values("")) == 1


# ----------------------------------------------------------------------------- cancel


def test_cancel_of_a_pending_transaction_marks_it_canceled(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token)
    assert api.cancel(token, transaction_id) == {"result": 0}
    assert fake.transaction(transaction_id).status == Status.CANCELED
    assert api.status(token, transaction_id)["transaction_status"] == 4


def test_cancel_answers_minus_8_for_an_expired_transaction(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    expired_by_hand = api.start(token)
    fake.expire(expired_by_hand)
    assert api.cancel(token, expired_by_hand) == {"result": -8}
    expired_by_time = api.start(token)
    fake.advance(300)
    assert api.cancel(token, expired_by_time) == {"result": -8}


def test_cancel_answers_minus_9_for_a_completed_transaction(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    approved, denied = api.start(token), api.start(token)
    fake.approve(approved)
    fake.deny(denied)
    assert api.cancel(token, approved) == {"result": -9}
    assert api.cancel(token, denied) == {"result": -9}


def test_cancel_answers_minus_10_for_a_canceled_transaction(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    canceled, declined = api.start(token), api.start(token)
    api.cancel(token, canceled)
    fake.decline(declined)
    assert api.cancel(token, canceled) == {"result": -10}
    assert api.cancel(token, declined) == {"result": -10}


def test_cancel_answers_minus_6_for_unknown_and_foreign_transactions(
    fake: FakeHyperID, api: Api, token: str, other_token: str
) -> None:
    transaction_id = api.start(token)
    assert api.cancel(other_token, transaction_id) == {"result": -6}
    assert fake.transaction(transaction_id).is_pending
    assert api.cancel(token, transaction_id + 1) == {"result": -6}


@pytest.mark.parametrize("transaction_id", [True, 0, 2**63, "1", None])
def test_cancel_answers_minus_2_for_invalid_transaction_ids(
    api: Api, token: str, transaction_id: Any
) -> None:
    assert api.cancel(token, transaction_id) == {"result": -2}


# ----------------------------------------------------------------------------- availability


def test_availability_check_accepts_an_empty_body(fake: FakeHyperID, api: Api, token: str) -> None:
    assert api.result("availability", token, raw=b"") == {"result": 0, "is_available": True}
    fake.set_device(SUBJECT, False)
    assert api.result("availability", token, raw=b"{}") == {"result": 0, "is_available": False}


def test_availability_check_answers_minus_2_for_a_body_that_is_not_an_object(
    api: Api, token: str
) -> None:
    assert api.result("availability", token, raw=b"[1]") == {"result": -2}


# ----------------------------------------------------------------------------- token endpoint


def test_refresh_returns_new_working_tokens_with_the_same_scopes(
    fake: FakeHyperID, api: Api
) -> None:
    pair = fake.issue_tokens(SUBJECT, scopes=("openid", "mfa-client"))
    response = api.refresh(pair.refresh_token)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    answer = response.json()
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 3600
    assert answer["refresh_expires_in"] == 86400
    assert answer["scope"] == "openid mfa-client"
    assert answer["access_token"] != pair.access_token
    assert answer["refresh_token"] != pair.refresh_token
    assert fake.subject_of(answer["access_token"]) == SUBJECT
    assert api.result("availability", answer["access_token"])["result"] == 0


def test_refresh_rotates_refresh_tokens_so_a_used_one_is_refused(
    fake: FakeHyperID, api: Api
) -> None:
    pair = fake.issue_tokens(SUBJECT)
    second = api.refresh(pair.refresh_token).json()["refresh_token"]
    reused = api.refresh(pair.refresh_token)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert api.refresh(second).status_code == 200


def test_refresh_without_rotation_keeps_the_refresh_token_usable() -> None:
    fake = FakeHyperID(BASE, clock=lambda: T0, rotate_refresh_tokens=False)
    pair = fake.issue_tokens(SUBJECT)
    with fake.mock():
        api = Api(fake)
        fake.advance(100)
        first = api.refresh(pair.refresh_token).json()
        assert first["refresh_token"] == pair.refresh_token
        assert first["refresh_expires_in"] == 86300
        assert api.refresh(pair.refresh_token).status_code == 200


def test_refresh_accepts_http_basic_client_authentication(fake: FakeHyperID, api: Api) -> None:
    pair = fake.issue_tokens(SUBJECT)
    response = api.refresh(
        pair.refresh_token, client_id=None, client_secret=None, auth=("fake-client", "fake-secret")
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_secret": "wrong"},
        {"client_id": "someone-else"},
        {"client_secret": None},
        {"client_id": None, "client_secret": None},
        {"client_id": None, "client_secret": None, "auth": ("fake-client", "wrong")},
        {"client_id": "other", "client_secret": None, "auth": ("fake-client", "fake-secret")},
    ],
)
def test_refresh_with_bad_client_credentials_answers_401_invalid_client(
    fake: FakeHyperID, api: Api, overrides: dict[str, Any]
) -> None:
    response = api.refresh(fake.issue_tokens(SUBJECT).refresh_token, **overrides)
    assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})


def test_refresh_with_garbled_basic_authentication_answers_401(fake: FakeHyperID, api: Api) -> None:
    response = requests.post(
        fake.token_url,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Authorization": "Basic %%%"},
        timeout=5,
    )
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit"])
def test_refresh_with_another_grant_type_answers_unsupported_grant_type(
    fake: FakeHyperID, api: Api, grant_type: str
) -> None:
    response = api.refresh(fake.issue_tokens(SUBJECT).refresh_token, grant_type=grant_type)
    assert (response.status_code, response.json()) == (400, {"error": "unsupported_grant_type"})


def test_refresh_without_grant_type_or_refresh_token_answers_invalid_request(
    fake: FakeHyperID, api: Api
) -> None:
    pair = fake.issue_tokens(SUBJECT)
    for response in (api.refresh(pair.refresh_token, grant_type=None), api.refresh(None)):
        assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("case", ["unknown", "access-token", "foreign", "expired", "revoked"])
def test_refresh_with_an_unusable_refresh_token_answers_invalid_grant(
    fake: FakeHyperID, api: Api, case: str
) -> None:
    pair = fake.issue_tokens(SUBJECT)
    refresh_token = {
        "unknown": "a.b.c",
        "access-token": pair.access_token,
        "foreign": FakeHyperID(BASE).issue_tokens(SUBJECT).refresh_token,
    }.get(case, pair.refresh_token)
    if case == "expired":
        fake.advance(86400)
    if case == "revoked":
        fake.revoke_tokens(SUBJECT)
    response = api.refresh(refresh_token)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})


def test_refresh_after_token_ttl_gives_a_token_that_works_again(
    fake: FakeHyperID, api: Api
) -> None:
    pair = fake.issue_tokens(SUBJECT)
    fake.advance(3600)
    assert api.result("availability", pair.access_token) == {"result": -4}
    fresh = api.refresh(pair.refresh_token).json()["access_token"]
    assert api.result("availability", fresh)["result"] == 0


# ----------------------------------------------------------------------------- routing


def test_unknown_paths_answer_404_and_wrong_methods_405(fake: FakeHyperID, api: Api) -> None:
    assert requests.post(BASE + "/mfa-client/nope", timeout=5).status_code == 404
    assert requests.get(BASE + "/", timeout=5).status_code == 404
    wrong_method = requests.get(BASE + STATUS_GET_PATH, timeout=5)
    assert (wrong_method.status_code, wrong_method.headers["Allow"]) == (405, "POST")
    assert requests.put(fake.token_url, timeout=5).status_code == 405
    assert fake.calls == []


def test_handle_answers_requests_without_any_transport(fake: FakeHyperID, token: str) -> None:
    response = fake.handle(
        "post",
        STATUS_GET_PATH,
        {"authorization": f"bearer {token}"},
        b'{"transaction_id": 5}',
    )
    assert isinstance(response, FakeResponse)
    assert (response.status, response.headers["Content-Type"]) == (200, "application/json")
    assert response.json() == {"result": -6}
    assert token not in repr(response)


def test_a_base_url_with_a_path_routes_below_that_path() -> None:
    fake = FakeHyperID("https://gateway.test/hyperid/")
    assert fake.base_url == "https://gateway.test/hyperid"
    assert (
        fake.token_url
        == "https://gateway.test/hyperid/auth/realms/HyperID/protocol/openid-connect/token"
    )
    token = fake.issue_tokens(SUBJECT).access_token
    with fake.mock():
        assert Api(fake).result("availability", token)["result"] == 0
    assert fake.handle("POST", AVAILABILITY_PATH, {}, b"").status == 404


def test_settings_give_the_app_what_it_needs_to_reach_the_fake() -> None:
    fake = FakeHyperID(BASE, issuer="https://login.hyperid.test/auth/realms/HyperID")
    assert fake.settings() == {
        "API_BASE_URL": BASE,
        "ISSUER": "https://login.hyperid.test/auth/realms/HyperID",
        "CLIENT_ID": "fake-client",
        "CLIENT_SECRET": "fake-secret",
    }
    assert FakeHyperID().issuer == "https://api.hypersecureid.com/auth/realms/HyperID"


@pytest.mark.parametrize("url", ["ftp://x.test", "api.hyperid.test", "https://x.test/?q=1", ""])
def test_a_base_url_that_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        FakeHyperID(url)


# ----------------------------------------------------------------------------- authenticator side


def test_pending_lists_oldest_first_and_filters_by_subject(
    fake: FakeHyperID, api: Api, token: str, other_token: str
) -> None:
    first, second, third = api.start(token), api.start(other_token), api.start(token)
    assert [t.transaction_id for t in fake.pending()] == [first, second, third]
    assert [t.transaction_id for t in fake.pending(SUBJECT)] == [first, third]
    fake.approve(first)
    assert [t.transaction_id for t in fake.pending(SUBJECT)] == [third]
    assert [t.state for t in fake.transactions(SUBJECT)] == ["approved", "pending"]


def test_answering_a_transaction_that_is_not_pending_raises_value_error(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token)
    fake.deny(transaction_id)
    for action in (fake.approve, fake.deny, fake.decline, fake.expire):
        with pytest.raises(ValueError, match="not pending"):
            action(transaction_id)


def test_a_transaction_past_its_ttl_can_no_longer_be_approved(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token)
    fake.advance(300)
    with pytest.raises(ValueError, match="expired"):
        fake.approve(transaction_id)


def test_unknown_transactions_raise_key_error(fake: FakeHyperID) -> None:
    for action in (fake.transaction, fake.approve, fake.forget):
        with pytest.raises(KeyError):
            action(99)


def test_transaction_snapshots_do_not_change_behind_the_callers_back(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    before = fake.transaction(api.start(token))
    fake.approve(before.transaction_id)
    assert before.is_pending
    assert fake.transaction(before.transaction_id).is_approved
    with pytest.raises(AttributeError):
        before.status = Status.COMPLETED  # type: ignore[misc]


def test_advance_moves_the_clock_forward_only(fake: FakeHyperID) -> None:
    fake.advance(10.5)
    assert fake.now() == T0 + 10.5
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="advance"):
            fake.advance(bad)


def test_constructor_refuses_impossible_settings() -> None:
    with pytest.raises(ValueError, match="first_transaction_id"):
        FakeHyperID(first_transaction_id=0)
    with pytest.raises(ValueError, match="transaction_ttl"):
        FakeHyperID(transaction_ttl=0)


# ----------------------------------------------------------------------------- observation


def test_calls_record_every_hyperid_call_with_its_outcome(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token)
    api.status(token, transaction_id)
    api.status("garbage", 7)
    api.refresh(fake.issue_tokens(SUBJECT).refresh_token)
    assert fake.calls == [
        RecordedCall("start", transaction_id, SUBJECT, 200, 0, None),
        RecordedCall("status-get", transaction_id, SUBJECT, 200, 0, None),
        RecordedCall("status-get", None, None, 200, -5, None),
        RecordedCall("token", None, SUBJECT, 200, None, None),
    ]
    assert type(fake.calls[0].result) is int
    assert (fake.call_count(), fake.call_count("status-get"), fake.call_count("cancel")) == (
        4,
        2,
        0,
    )
    fake.clear_calls()
    assert fake.call_count() == 0
    with pytest.raises(ValueError, match="unknown call"):
        fake.call_count("status")


# ----------------------------------------------------------------------------- faults (mock)


@pytest.mark.parametrize(
    ("fault", "status"),
    [("http_500", 500), ("http_502", 502), ("http_503", 503), ("http_429", 429)],
)
def test_http_faults_answer_that_status_without_processing_the_call(
    fake: FakeHyperID, api: Api, token: str, fault: str, status: int
) -> None:
    fake.inject(fault)
    response = api.post("start", token)
    assert response.status_code == status
    assert "Retry-After" not in response.headers
    assert fake.transactions() == []
    assert fake.calls == [RecordedCall("start", None, SUBJECT, status, None, fault)]
    assert api.start(token) == 1


@pytest.mark.parametrize("fault", ["http_503", "http_429"])
def test_retry_after_is_sent_with_503_and_429(
    fake: FakeHyperID, api: Api, token: str, fault: str
) -> None:
    fake.inject(fault, retry_after=7)
    assert api.post("availability", token).headers["Retry-After"] == "7"


def test_timeout_fault_raises_read_timeout_after_the_call_took_effect(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    fake.inject("timeout", call="start")
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post("start", token)
    assert [t.transaction_id for t in fake.pending()] == [1]
    assert fake.calls[-1].fault == "timeout"


def test_connection_error_fault_raises_connection_error_without_processing(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    fake.inject("connection_error")
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post("start", token)
    assert fake.transactions() == []
    assert fake.calls[-1] == RecordedCall("start", None, SUBJECT, None, None, "connection_error")


def test_malformed_json_fault_sends_a_body_that_is_not_json(api: Api, token: str) -> None:
    api.fake.inject("malformed_json")
    response = api.post("availability", token)
    assert response.status_code == 200
    assert response.text == "{not json"


def test_truncated_json_fault_sends_half_a_valid_answer(api: Api, token: str) -> None:
    transaction_id = api.start(token)
    api.fake.inject("truncated_json")
    response = api.post("status-get", token, {"transaction_id": transaction_id})
    full = json.dumps(api.status(token, transaction_id), separators=(",", ":"))
    assert response.text == full[: len(full) // 2]
    with pytest.raises(ValueError):  # noqa: PT011 - json and requests raise different subclasses
        response.json()


def test_html_fault_answers_200_with_an_html_page(api: Api, token: str) -> None:
    api.fake.inject("html")
    response = api.post("status-get", token)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_result_fault_answers_the_given_result_only(api: Api, token: str) -> None:
    api.fake.inject("result", result=-1, call="start")
    assert api.result("start", token, start_body()) == {"result": -1}
    assert api.fake.transactions() == []
    assert api.fake.calls[-1].result == -1


def test_wrong_transaction_id_fault_answers_about_another_transaction(api: Api, token: str) -> None:
    api.fake.inject("wrong_transaction_id", times=2)
    assert api.result("start", token, start_body())["transaction_id"] == 2
    assert api.status(token, 1)["transaction_id"] == 2
    assert api.status(token, 1)["transaction_id"] == 1


@pytest.mark.parametrize("value", [3, "1", True, None, -1])
def test_status_fault_forces_transaction_status(
    fake: FakeHyperID, api: Api, token: str, value: Any
) -> None:
    transaction_id = api.start(token)
    fake.inject("status", value=value)
    assert api.status(token, transaction_id)["transaction_status"] == value
    assert fake.transaction(transaction_id).is_pending


def test_complete_result_fault_forces_transaction_complete_result(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token)
    fake.deny(transaction_id)
    fake.inject("complete_result", value=0)
    assert api.status(token, transaction_id)["transaction_complete_result"] == 0
    assert api.status(token, transaction_id)["transaction_complete_result"] == 1


def test_missing_field_fault_removes_a_field_from_a_success_answer(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    transaction_id = api.start(token)
    fake.inject("missing_field", field="transaction_status")
    fake.inject("missing_field", field="access_token", call="token")
    assert "transaction_status" not in api.status(token, transaction_id)
    refreshed = api.refresh(fake.issue_tokens(SUBJECT).refresh_token).json()
    assert "access_token" not in refreshed
    assert "refresh_token" in refreshed


def test_field_faults_wait_for_a_success_answer_carrying_their_field(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    fake.inject("status", value=3)
    assert api.status(token, 1) == {"result": -6}
    transaction_id = api.start(token)
    assert api.status(token, transaction_id)["transaction_status"] == 3
    assert [c.fault for c in fake.calls] == [None, None, "status"]


def test_delay_fault_answers_correctly_but_late(api: Api, token: str) -> None:
    api.fake.inject("delay", seconds=0.2)
    started = time.perf_counter()
    assert api.result("availability", token)["result"] == 0
    assert time.perf_counter() - started >= 0.2


def test_delay_fault_longer_than_the_read_timeout_raises_read_timeout(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    fake.inject("delay", seconds=5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            fake.base_url + AVAILABILITY_PATH,
            headers={"Authorization": f"Bearer {token}"},
            timeout=(1, 0.05),
        )


def test_faults_apply_to_their_call_only_and_in_injection_order(
    fake: FakeHyperID, api: Api, token: str
) -> None:
    fake.inject("http_502", call="start")
    fake.inject("result", result=-1)
    fake.inject("http_500")
    assert api.result("availability", token) == {"result": -1}
    assert api.post("start", token).status_code == 502
    assert api.post("start", token).status_code == 500
    assert api.start(token) == 1


@pytest.mark.parametrize("forever", [None, 0])
def test_faults_with_times_none_or_zero_last_until_cleared(
    fake: FakeHyperID, api: Api, token: str, forever: int | None
) -> None:
    fake.inject("http_503", call="availability", times=forever)
    assert all(api.post("availability", token).status_code == 503 for _ in range(5))
    fake.clear_faults()
    assert api.post("availability", token).status_code == 200


def test_a_fault_with_times_lasts_that_many_calls(api: Api, token: str) -> None:
    api.fake.inject("http_500", times=3)
    assert [api.post("availability", token).status_code for _ in range(4)] == [500, 500, 500, 200]


def test_faults_hit_the_token_endpoint_too(fake: FakeHyperID, api: Api) -> None:
    fake.inject("http_503", call="token", retry_after=2)
    pair = fake.issue_tokens(SUBJECT)
    response = api.refresh(pair.refresh_token)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    assert api.refresh(pair.refresh_token).status_code == 200


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("no_such_fault",), {}, ValueError),
        (("http_500",), {"call": "status"}, ValueError),
        (("status",), {"call": "start", "value": 3}, ValueError),
        (("status",), {}, TypeError),
        (("missing_field",), {}, TypeError),
        (("http_500",), {"seconds": 1}, TypeError),
        (("delay",), {"seconds": -1}, ValueError),
        (("delay",), {"seconds": "1"}, TypeError),
        (("http_503",), {"retry_after": "1\r\nX-Evil: 1"}, ValueError),
        (("http_500",), {"times": -1}, ValueError),
        (("result",), {"result": object()}, TypeError),
    ],
)
def test_inject_refuses_faults_it_cannot_apply(
    fake: FakeHyperID, args: tuple[str], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        fake.inject(*args, **kwargs)


# ----------------------------------------------------------------------------- mock()


def test_mock_without_rsps_refuses_other_urls(fake: FakeHyperID) -> None:
    with fake.mock(), pytest.raises(requests.exceptions.ConnectionError):
        requests.get("https://elsewhere.test/", timeout=5)


def test_mock_with_a_callers_rsps_shares_it_and_removes_its_rules_on_exit(
    fake: FakeHyperID, token: str
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, "https://elsewhere.test/ping", json={"pong": True})
        with fake.mock(rsps):
            assert requests.get("https://elsewhere.test/ping", timeout=5).json() == {"pong": True}
            assert Api(fake).result("availability", token)["result"] == 0
        assert len(rsps.registered()) == 1
        with pytest.raises(requests.exceptions.ConnectionError):
            Api(fake).post("availability", token)


def test_mock_intercepts_an_issuer_on_another_host() -> None:
    fake = FakeHyperID(BASE, issuer="https://login.hyperid.test/auth/realms/HyperID")
    pair = fake.issue_tokens(SUBJECT)
    with fake.mock():
        assert Api(fake).refresh(pair.refresh_token).status_code == 200
    assert claims_of(pair.access_token)["iss"] == "https://login.hyperid.test/auth/realms/HyperID"


def test_mock_of_a_fake_without_address_explains_itself() -> None:
    fake = FakeHyperID(base_url=None)
    with pytest.raises(RuntimeError, match="serve"), fake.mock():
        pass


# ----------------------------------------------------------------------------- thread safety


def test_concurrent_starts_get_distinct_consecutive_ids(fake: FakeHyperID) -> None:
    tokens = [fake.issue_tokens(f"user-{i}").access_token for i in range(20)]
    ids: list[int] = []
    ids_lock = threading.Lock()
    body = json.dumps(start_body()).encode()

    def start_many(token: str) -> None:
        for _ in range(25):
            answer = fake.handle("POST", START_PATH, {"Authorization": f"Bearer {token}"}, body)
            with ids_lock:
                ids.append(answer.json()["transaction_id"])

    threads = [threading.Thread(target=start_many, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ids) == list(range(1, 501))
    assert fake.call_count("start") == 500


# ----------------------------------------------------------------------------- property


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_bodies = st.one_of(
    st.binary(max_size=64),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "transaction_id": _json_values,
            "template_id": _json_values,
            "values": _json_values,
            "code": _json_values,
        },
    ).map(lambda v: json.dumps(v).encode()),
)
_PROPERTY_FAKE = FakeHyperID(BASE)
_PROPERTY_TOKEN = _PROPERTY_FAKE.issue_tokens(SUBJECT).access_token


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies, name=st.sampled_from(["status-get", "start", "cancel"]))
def test_any_body_gets_a_200_answer_with_a_documented_result(body: bytes, name: str) -> None:
    response = _PROPERTY_FAKE.handle(
        "POST", PATHS[name], {"Authorization": f"Bearer {_PROPERTY_TOKEN}"}, body
    )
    assert response.status == 200
    assert response.json()["result"] in results_of(name)


# ----------------------------------------------------------------------------- the HTTP server


def test_serve_binds_a_fake_without_address_to_the_server(
    served: tuple[FakeHyperID, FakeHyperIDServer],
) -> None:
    fake, server = served
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert (server.host, fake.base_url) == ("127.0.0.1", server.url)
    assert fake.issuer == server.url + "/auth/realms/HyperID"
    assert fake.settings()["API_BASE_URL"] == server.url


def test_serve_moves_explicit_urls_to_the_server_keeping_their_paths() -> None:
    fake = FakeHyperID(
        "https://gateway.test/hyperid", issuer="https://login.test/auth/realms/HyperID"
    )
    pair = fake.issue_tokens(SUBJECT)
    with fake.serve() as server:
        assert fake.base_url == server.url + "/hyperid"
        assert fake.issuer == server.url + "/auth/realms/HyperID"
        api = Api(fake)
        assert api.result("availability", pair.access_token)["result"] == 0
        assert api.refresh(pair.refresh_token).status_code == 200
        fake.base_url = "http://hyperid.internal:8765/hyperid"
        assert fake.settings()["API_BASE_URL"] == "http://hyperid.internal:8765/hyperid"


def test_a_fake_without_address_has_no_base_url_before_serve() -> None:
    fake = FakeHyperID(base_url=None)
    with pytest.raises(RuntimeError, match="serve"):
        fake.settings()
    assert claims_of(fake.issue_tokens(SUBJECT).access_token)["iss"] == "/auth/realms/HyperID"


def test_the_full_flow_works_over_http(served: tuple[FakeHyperID, FakeHyperIDServer]) -> None:
    fake, server = served
    token = fake.issue_tokens(SUBJECT).access_token
    with requests.Session() as session:
        api = Api(fake, session)
        transaction_id = api.start(token, code="55")
        assert fake.pending(SUBJECT)[0].code == "55"
        fake.approve(transaction_id)
        answer = api.status(token, transaction_id)
        assert (answer["transaction_status"], answer["transaction_complete_result"]) == (1, 0)
        assert api.cancel(token, transaction_id) == {"result": -9}
        assert session.get(server.url + "/nowhere", timeout=5).status_code == 404
        assert session.get(fake.base_url + STATUS_GET_PATH, timeout=5).status_code == 405
    assert server.requests_handled == 5


def test_the_server_reuses_keep_alive_connections_without_nagle_stalls(
    served: tuple[FakeHyperID, FakeHyperIDServer],
) -> None:
    fake, server = served
    token = fake.issue_tokens(SUBJECT).access_token
    with requests.Session() as session:
        api = Api(fake, session)
        transaction_id = api.start(token)  # warms the pool
        durations = []
        for _ in range(50):
            started = time.perf_counter()
            assert api.status(token, transaction_id)["result"] == 0
            durations.append(time.perf_counter() - started)
    assert server.connections_accepted <= 2
    assert server.requests_handled == 51
    # Nagle against delayed ACK stalls every keep-alive request ~40 ms; load slows some
    # requests, never all: the fastest of 50 tells the two apart on a busy machine.
    assert min(durations) < 0.035, f"every keep-alive request took 35 ms or more: {durations}"


def test_with_an_ssl_context_the_server_speaks_https_and_keeps_connections_alive(
    tmp_path: Path,
) -> None:
    trustme = import_or_skip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    fake = FakeHyperID(base_url=None)
    with fake.serve(ssl_context=context) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert fake.settings()["API_BASE_URL"] == server.url
        token = fake.issue_tokens(SUBJECT).access_token
        with requests.Session() as session:
            session.verify = str(bundle)
            session.trust_env = False  # else REQUESTS_CA_BUNDLE would override verify
            api = Api(fake, session)
            transaction_id = api.start(token)
            for _ in range(5):
                assert api.status(token, transaction_id)["result"] == 0
        assert server.connections_accepted == 1
        assert server.requests_handled == 6
        # A client that does not trust the certificate's CA is refused; the server
        # drops that connection quietly and goes on serving.
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(fake.base_url + AVAILABILITY_PATH, timeout=5)
        answer = requests.post(
            fake.base_url + AVAILABILITY_PATH,
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
            verify=str(bundle),
        )
        assert answer.json() == {"result": 0, "is_available": True}
        # Plain HTTP to the HTTPS port gets no answer, and costs the server nothing.
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(server.url.replace("https://", "http://") + "/_fake/calls", timeout=5)
    assert server.errors == []


def test_answers_carry_content_length_and_come_in_one_piece(
    served: tuple[FakeHyperID, FakeHyperIDServer],
) -> None:
    fake, server = served
    token = fake.issue_tokens(SUBJECT).access_token
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        body = b"{}"
        request = (
            f"POST {AVAILABILITY_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for _ in range(2):  # the same connection, twice
            sock.sendall(request)
            head, _, rest = sock.recv(65536).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert b"Content-Length: %d" % len(rest) in head
            assert json.loads(rest) == {"result": 0, "is_available": True}
    assert server.connections_accepted == 1


def test_the_server_refuses_chunked_bodies(served: tuple[FakeHyperID, FakeHyperIDServer]) -> None:
    fake, _ = served
    response = requests.post(
        fake.base_url + STATUS_GET_PATH, data=iter([b"{}"]), timeout=5
    )  # a generator body is sent chunked
    assert response.status_code == 411


def test_head_requests_get_headers_only(served: tuple[FakeHyperID, FakeHyperIDServer]) -> None:
    fake, _ = served
    response = requests.head(fake.base_url + "/nowhere", timeout=5)
    assert response.status_code == 404
    assert int(response.headers["Content-Length"]) > 0
    assert response.content == b""


def test_latency_delays_every_answer(served: tuple[FakeHyperID, FakeHyperIDServer]) -> None:
    fake, server = served
    server.latency = 0.15
    started = time.perf_counter()
    requests.get(fake.base_url + "/_fake/calls", timeout=5)
    assert time.perf_counter() - started >= 0.15
    with pytest.raises(ValueError, match="latency"):
        server.latency = -1


def test_http_faults_over_the_server(served: tuple[FakeHyperID, FakeHyperIDServer]) -> None:
    fake, _ = served
    token = fake.issue_tokens(SUBJECT).access_token
    with requests.Session() as session:
        api = Api(fake, session)
        fake.inject("http_503", retry_after=3)
        response = api.post("availability", token)
        assert (response.status_code, response.headers["Retry-After"]) == (503, "3")
        fake.inject("malformed_json")
        assert api.post("availability", token).text == "{not json"
        fake.inject("html")
        assert api.post("availability", token).headers["Content-Type"].startswith("text/html")
        fake.inject("status", value="1")
        transaction_id = api.start(token)
        assert api.status(token, transaction_id)["transaction_status"] == "1"


def test_connection_error_fault_closes_the_connection_without_answering(
    served: tuple[FakeHyperID, FakeHyperIDServer],
) -> None:
    fake, server = served
    token = fake.issue_tokens(SUBJECT).access_token
    with requests.Session() as session:
        api = Api(fake, session)
        assert api.result("availability", token)["result"] == 0
        fake.inject("connection_error")
        with pytest.raises(requests.exceptions.ConnectionError):
            api.post("availability", token)
        assert api.result("availability", token)["result"] == 0
    assert server.connections_accepted == 2


def test_timeout_and_delay_faults_answer_late_over_the_server(
    served: tuple[FakeHyperID, FakeHyperIDServer],
) -> None:
    fake, _ = served
    token = fake.issue_tokens(SUBJECT).access_token
    url = fake.base_url + AVAILABILITY_PATH
    headers = {"Authorization": f"Bearer {token}"}
    fake.inject("timeout", seconds=5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(url, headers=headers, timeout=(2, 0.2))
    fake.inject("delay", seconds=0.2)
    started = time.perf_counter()
    assert requests.post(url, headers=headers, timeout=5).json()["result"] == 0
    assert time.perf_counter() - started >= 0.2


def test_stop_is_prompt_with_idle_keep_alive_connections_and_answers_in_flight() -> None:
    fake = FakeHyperID(base_url=None)
    server = fake.serve()
    token = fake.issue_tokens(SUBJECT).access_token
    idle = requests.Session()
    try:
        assert Api(fake, idle).result("availability", token)["result"] == 0  # stays open, idle
        fake.inject("timeout", seconds=30)
        outcome: list[BaseException] = []

        def wait_for_the_slow_answer() -> None:
            try:
                Api(fake).post("availability", token)
            except requests.exceptions.RequestException as error:
                outcome.append(error)

        stuck = threading.Thread(target=wait_for_the_slow_answer, daemon=True)
        stuck.start()
        deadline = time.monotonic() + 5
        while server.requests_handled < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.perf_counter()
        server.stop()
        assert time.perf_counter() - started < 2
        stuck.join(5)
        assert not stuck.is_alive()
        assert len(outcome) == 1
        server.stop()  # idempotent
        assert not server.running
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(server.url + "/_fake/calls", timeout=2)
    finally:
        idle.close()
        server.stop()


def test_concurrent_clients_over_the_server_get_distinct_ids(
    served: tuple[FakeHyperID, FakeHyperIDServer],
) -> None:
    fake, server = served
    tokens = [fake.issue_tokens(f"user-{i}").access_token for i in range(8)]
    ids: list[int] = []
    lock = threading.Lock()

    def start_many(token: str) -> None:
        with requests.Session() as session:
            for _ in range(10):
                transaction_id = Api(fake, session).start(token)
                with lock:
                    ids.append(transaction_id)

    threads = [threading.Thread(target=start_many, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ids) == list(range(1, 81))
    assert server.connections_accepted == 8


# ----------------------------------------------------------------------------- control endpoints


def test_control_endpoints_let_another_process_play_the_phone(
    served: tuple[FakeHyperID, FakeHyperIDServer],
) -> None:
    fake, _ = served
    control = fake.base_url + "/_fake"
    with requests.Session() as http:
        user = http.post(control + "/users", json={"subject": SUBJECT}, timeout=5).json()
        assert user["subject"] == SUBJECT
        assert fake.subject_of(user["access_token"]) == SUBJECT
        api = Api(fake, http)
        first, second, third = (api.start(user["access_token"]) for _ in range(3))
        listed = http.get(control + "/transactions?state=pending", timeout=5).json()
        assert [t["transaction_id"] for t in listed] == [first, second, third]
        assert listed[0]["code"] == "07"
        assert listed[0]["question"] == "Withdraw 500 EUR?"
        approved = http.post(control + f"/transactions/{first}/approve", timeout=5)
        assert approved.json()["state"] == "approved"
        assert http.post(control + f"/transactions/{second}/deny", timeout=5).json()["status"] == 1
        assert http.post(control + f"/transactions/{third}/decline", timeout=5).status_code == 200
        again = http.post(control + f"/transactions/{first}/expire", timeout=5)
        assert again.status_code == 409
        assert http.post(control + "/transactions/999/approve", timeout=5).status_code == 404
        assert http.get(control + "/transactions?state=pending", timeout=5).json() == []
        mine = http.get(control + f"/transactions?subject={SUBJECT}", timeout=5).json()
        assert [t["state"] for t in mine] == ["approved", "denied", "canceled"]
        assert http.get(control + "/transactions?subject=nobody", timeout=5).json() == []
        forgotten = http.post(control + f"/transactions/{first}/forget", timeout=5)
        assert forgotten.json() == {"transaction_id": first, "forgotten": True}
        assert http.get(control + "/calls", timeout=5).json() == {
            "status-get": 0,
            "start": 3,
            "cancel": 0,
            "availability": 0,
            "token": 0,
        }


def test_control_endpoints_create_users_without_a_device_and_with_chosen_scopes(
    served: tuple[FakeHyperID, FakeHyperIDServer],
) -> None:
    fake, _ = served
    answer = requests.post(
        fake.base_url + "/_fake/users",
        json={"has_device": False, "scopes": ["openid"], "expires_in": 60},
        timeout=5,
    ).json()
    assert len(answer["subject"]) == 36
    assert answer["expires_in"] == 60
    assert Api(fake).result("availability", answer["access_token"]) == {"result": -3}


def test_control_endpoints_inject_faults_and_advance_the_clock(
    served: tuple[FakeHyperID, FakeHyperIDServer],
) -> None:
    fake, _ = served
    control = fake.base_url + "/_fake"
    token = fake.issue_tokens(SUBJECT, expires_in=60).access_token
    injected = requests.post(
        control + "/faults",
        json={"fault": "http_503", "call": "availability", "times": 0},
        timeout=5,
    )
    assert injected.status_code == 200
    assert Api(fake).post("availability", token).status_code == 503
    assert requests.delete(control + "/faults", timeout=5).status_code == 200
    assert requests.post(control + "/advance", json={"seconds": 60}, timeout=5).status_code == 200
    assert Api(fake).result("availability", token) == {"result": -4}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/_fake/transactions?state=nonsense", None, 400),
        ("POST", "/_fake/transactions", None, 405),
        ("GET", "/_fake/transactions/1/approve", None, 405),
        ("POST", "/_fake/users", b"[]", 400),
        ("POST", "/_fake/users", b'{"has_device": "yes"}', 400),
        ("POST", "/_fake/users", b'{"subject": ""}', 400),
        ("POST", "/_fake/users", b'{"scopes": "openid"}', 400),
        ("POST", "/_fake/faults", b'{"fault": "nope"}', 400),
        ("POST", "/_fake/faults", b'{"fault": "delay"}', 400),
        ("POST", "/_fake/advance", b'{"seconds": -1}', 400),
        ("POST", "/_fake/advance", b'{"seconds": "1"}', 400),
        ("GET", "/_fake/nothing", None, 404),
    ],
)
def test_control_endpoints_answer_bad_requests_with_4xx(
    fake: FakeHyperID, method: str, path: str, body: bytes | None, status: int
) -> None:
    response = fake.handle(method, path, {}, body or b"")
    assert response.status == status
    assert "error" in response.json()


def test_the_server_runs_as_a_process_of_its_own() -> None:
    process = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "hyperid_mfa.testing.server", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert first_line.startswith("FakeHyperID serving at http://127.0.0.1:"), first_line
        url = first_line.rsplit(" ", 1)[1].strip()
        user = requests.post(url + "/_fake/users", json={}, timeout=5).json()
        answer = requests.post(
            url + AVAILABILITY_PATH,
            headers={"Authorization": f"Bearer {user['access_token']}"},
            timeout=5,
        ).json()
        assert answer == {"result": 0, "is_available": True}
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "Warning" not in stderr


def test_a_long_running_fake_keeps_a_bounded_call_log_with_exact_counts(monkeypatch):
    from hyperid_mfa.testing import fake as fake_module

    monkeypatch.setattr(fake_module, "MAX_RECORDED_CALLS", 5)
    fake = FakeHyperID()
    token = fake.issue_tokens(fake.add_user()).access_token
    for _ in range(8):
        fake.handle(
            "POST",
            "/mfa-client/availability-check",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            b"{}",
        )
    assert fake.call_count("availability") == 8
    assert len(fake.calls) == 5
