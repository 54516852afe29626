"""A start whose answer comes after its deadline: the push it names is withdrawn.

The caller (the gate) has its timeout at the deadline, as before; the exchange goes
on in the background, and when HyperID's response turns up it names a push that
nothing here will ever follow, which the client withdraws. Against FakeHyperID over
real HTTP, its ``delay`` fault holding the answer past the deadline.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest
import responses
from django.test import Client

from hyperid_mfa import services
from hyperid_mfa.client import transport
from hyperid_mfa.client.calls import HyperIDClient
from hyperid_mfa.constants import START_PATH
from hyperid_mfa.exceptions import ServiceUnavailable
from hyperid_mfa.models import MFARequest
from hyperid_mfa.testing import FakeHyperID
from tests.conftest import eventually, link

# Connect + read: the deadline of each attempt is 0.6 s.
TIMEOUT = (0.3, 0.3)
LATE = 1.5  # seconds HyperID takes to answer the start: past the deadline
JSON = {"HTTP_ACCEPT": "application/json"}

pytestmark = pytest.mark.slow


def start_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hyperid-mfa-start"]


@pytest.fixture
def served() -> Iterator[tuple[FakeHyperID, str]]:
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:
        subject = fake.add_user()
        yield fake, fake.issue_tokens(subject).access_token
        server.stop()  # ends the answers still held back, so no thread outlives the test
        eventually(lambda: not start_threads())


@pytest.fixture
def client(served: tuple[FakeHyperID, str]) -> HyperIDClient:
    fake, _token = served
    return HyperIDClient(base_url=fake.base_url, timeout=TIMEOUT, max_retries=0)


def test_a_push_whose_start_answers_after_the_deadline_is_withdrawn(served, client):
    fake, token = served
    fake.inject("delay", call="start", seconds=LATE)
    learnt: list[tuple[int, bool]] = []

    began = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="timed out") as refused:
        client.start_transaction(
            token, question="Withdraw?", code="12", on_late_push=lambda *a: learnt.append(a)
        )
    waited = time.monotonic() - began

    # The caller is answered at the deadline, not when HyperID answers; and it is told
    # that the push may have been sent.
    assert waited < LATE - 0.3
    assert refused.value.call == "start"
    assert refused.value.no_effect is False
    [push] = fake.transactions()
    eventually(lambda: learnt)
    assert learnt == [(push.transaction_id, True)]
    assert fake.transaction(push.transaction_id).state == "canceled"
    assert [call.name for call in fake.calls] == ["start", "cancel"]


def test_an_answer_in_time_is_the_callers_and_nothing_is_withdrawn(served, client):
    fake, token = served
    fake.inject("delay", call="start", seconds=0.1)

    transaction_id = client.start_transaction(token, question="Withdraw?", code="12")

    assert fake.transaction(transaction_id).is_pending
    eventually(lambda: not start_threads())
    assert fake.call_count("cancel") == 0


def test_a_late_answer_that_refuses_the_start_withdraws_nothing(caplog):
    client = HyperIDClient(base_url="https://api.hyperid.test", timeout=TIMEOUT, max_retries=0)
    learnt: list[tuple[int, bool]] = []

    def late_refusal(request):
        time.sleep(LATE)
        # No authenticator device: HyperID sent nothing (and names an id anyway).
        return 200, {}, json.dumps({"result": -7, "transaction_id": 5})

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, "https://api.hyperid.test" + START_PATH, late_refusal)
        caplog.set_level(logging.INFO, logger="hyperid_mfa.client.calls")
        with pytest.raises(ServiceUnavailable):
            client.start_transaction(
                "a.b.c", question="?", code="12", on_late_push=lambda *a: learnt.append(a)
            )
        eventually(lambda: "naming no push" in caplog.text)
        eventually(lambda: not start_threads())
        assert len(rsps.calls) == 1  # no cancel
    assert learnt == []


def test_an_answer_later_than_the_late_window_is_given_up(served, client, monkeypatch, caplog):
    fake, token = served
    monkeypatch.setattr(transport, "LATE_ANSWER_SECONDS", 0.4)
    fake.inject("delay", call="start", seconds=3)
    caplog.set_level(logging.WARNING, logger="hyperid_mfa.client.calls")

    with pytest.raises(ServiceUnavailable):
        client.start_transaction(token, question="Withdraw?", code="12")

    eventually(lambda: "no answer after its deadline either" in caplog.text)
    eventually(lambda: not start_threads(), seconds=2)
    [push] = fake.transactions()
    assert push.is_pending  # lost for good: the user should deny it
    assert fake.call_count("cancel") == 0


def test_beyond_the_late_exchanges_allowed_a_start_is_cut_at_its_deadline(
    served, client, monkeypatch, caplog
):
    fake, token = served
    monkeypatch.setattr(transport, "MAX_LATE_EXCHANGES", 0)
    fake.inject("delay", call="start", seconds=LATE)
    caplog.set_level(logging.WARNING, logger="hyperid_mfa.client.calls")
    learnt: list[tuple[int, bool]] = []

    with pytest.raises(ServiceUnavailable):
        client.start_transaction(
            token, question="Withdraw?", code="12", on_late_push=lambda *a: learnt.append(a)
        )

    assert "this one is cut" in caplog.text
    # The connection is shut down at once: its thread ends long before HyperID answers.
    eventually(lambda: not start_threads(), seconds=LATE - 0.5)
    time.sleep(LATE)
    assert learnt == []
    assert fake.call_count("cancel") == 0


def test_the_late_exchanges_allowed_are_given_back(served, client):
    fake, token = served
    fake.inject("delay", call="start", seconds=0.8, times=None)
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            client.start_transaction(token, question="Withdraw?", code="12")

    eventually(lambda: fake.call_count("cancel") == 3)
    eventually(lambda: not start_threads())
    assert transport._Handoff._lingering == 0


# --- through the services and the gate -------------------------------------------------------


@pytest.fixture
def served_user(user, settings) -> Iterator[FakeHyperID]:
    """``user`` signed in to a FakeHyperID served over HTTP, the app pointed at it."""
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:
        settings.HYPERID_MFA = {
            **settings.HYPERID_MFA,
            **fake.settings(),
            "TIMEOUT": TIMEOUT,
            "MAX_RETRIES": 0,
        }
        link(fake, user)
        yield fake
        server.stop()
        eventually(lambda: not start_threads())


@pytest.mark.django_db
def test_the_audit_log_says_the_late_push_was_withdrawn(served_user, user, caplog):
    fake = served_user
    fake.inject("delay", call="start", seconds=LATE)
    caplog.set_level(logging.INFO, logger="hyperid_mfa.audit")

    with pytest.raises(ServiceUnavailable) as refused:
        services.start_request(user, "payments.withdraw")

    assert refused.value.no_effect is False  # what the gate gets: the push may be out
    [push] = fake.transactions()
    eventually(lambda: f"withdrew the push {push.transaction_id}" in caplog.text)
    assert fake.transaction(push.transaction_id).state == "canceled"
    [line] = [r for r in caplog.records if "withdrew the push" in r.getMessage()]
    assert line.user_id == user.pk
    assert "payments.withdraw" in line.getMessage()
    assert not MFARequest.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_gate_answers_unavailable_at_the_deadline_and_the_push_is_withdrawn(served_user, user):
    fake = served_user
    fake.inject("delay", call="start", seconds=3)
    browser = Client()
    browser.force_login(user)

    began = time.monotonic()
    answer = browser.post("/gate/default/", {"amount": "500"}, **JSON)

    assert time.monotonic() - began < 2  # the deadline is 0.6 s; HyperID answers at 3 s
    assert (answer.status_code, answer.json()["code"]) == (503, "mfa_unavailable")
    [push] = fake.transactions()
    eventually(lambda: fake.transaction(push.transaction_id).state == "canceled")
