"""The HyperID simulator: its authenticator pages and ``manage.py hyperid_mfa_simulator``.

The pages are driven through ``Authenticator.handle`` (what the server calls for each
request) and, where the transport matters, over real HTTP. Pushes are started through
HyperID's own start call, as the app starts them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from hyperid_mfa.constants import AVAILABILITY_PATH, START_PATH, STATUS_GET_PATH
from hyperid_mfa.testing import Authenticator, FakeHyperID, FakeResponse
from tests import docs_examples
from tests.simulator_process import SimulatorProcess, run_simulator

REPO = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000.0
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeHyperID:
    return FakeHyperID("http://127.0.0.1:8765", clock=Clock(), transaction_ttl=300)


@pytest.fixture
def phone(fake: FakeHyperID) -> Authenticator:
    return Authenticator(fake)


def push(fake: FakeHyperID, subject: str = "alice", question: str = "Pay 5 EUR?", code: str = "42"):
    """Start a push the way the app does: HyperID's start call with the user's token."""
    token = fake.issue_tokens(subject).access_token
    values = json.dumps({"version": 1, "action": {"type": "question", "action_info": question}})
    answer = fake.handle(
        "POST",
        START_PATH,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        json.dumps({"template_id": 4, "values": values, "code": code}).encode(),
    ).json()
    assert answer["result"] == 0, answer
    return fake.transaction(answer["transaction_id"])


def get(phone: Authenticator, path: str) -> FakeResponse:
    return phone.handle("GET", path, {}, b"")


def answer(
    phone: Authenticator, subject: str, transaction_id: int, decision: str, code: str | None = None
) -> FakeResponse:
    body = f"decision={decision}" + ("" if code is None else f"&code={code}")
    return phone.handle(
        "POST", f"/authenticator/{subject}/{transaction_id}/", FORM, body.encode("ascii")
    )


def text(response: FakeResponse) -> str:
    return response.body.decode("utf-8")


def shown_pushes(response: FakeResponse) -> list[int]:
    return [
        int(tid) for tid in re.findall(r'class="push" data-transaction-id="(\d+)"', text(response))
    ]


def offered_numbers(response: FakeResponse, transaction_id: int) -> list[str]:
    section = re.search(
        rf'data-transaction-id="{transaction_id}">(.*?)</section>', text(response), re.S
    )
    assert section is not None
    return re.findall(r'name="code" value="(\d\d)"', section.group(1))


def wrong_number(phone: Authenticator, transaction_id: int, code: str) -> str:
    return next(n for n in phone.choices(transaction_id) if n != code)


# ----------------------------------------------------------------------------- the phone


def test_a_phone_shows_only_its_own_users_pending_pushes(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    mine = push(fake, "alice", "Transfer 250.00 EUR to Bob?")
    push(fake, "bob", "Transfer 9.00 EUR to Mallory?")
    answered = push(fake, "alice", "Transfer 1.00 EUR to Carol?")
    fake.approve(answered.transaction_id)

    page = get(phone, "/authenticator/alice/")

    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert shown_pushes(page) == [mine.transaction_id]
    assert "Transfer 250.00 EUR to Bob?" in text(page)
    assert "Mallory" not in text(page)
    # Answered pushes are listed under "Recent", without a form.
    assert re.search(r"approved</span> Transfer 1.00 EUR to Carol\?", text(page))


def test_a_phone_without_pushes_says_it_waits_for_one(phone: Authenticator) -> None:
    page = get(phone, "/authenticator/alice/")
    assert page.status == 200
    assert "No pushes waiting" in text(page)


def test_the_phone_offers_the_sites_number_among_decoys_that_stay_the_same_on_reload(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    txn = push(fake, code="42")

    numbers = offered_numbers(get(phone, "/authenticator/alice/"), txn.transaction_id)

    assert "42" in numbers
    assert len(numbers) == len(set(numbers)) == 3
    assert all(re.fullmatch(r"\d\d", n) for n in numbers)
    assert numbers == phone.choices(txn.transaction_id) == sorted(numbers)
    assert offered_numbers(get(phone, "/authenticator/alice/"), txn.transaction_id) == numbers


def test_approving_with_the_number_the_site_shows_approves_the_push(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    txn = push(fake, code="42")

    response = answer(phone, "alice", txn.transaction_id, "approve", "42")

    assert response.status == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/authenticator/alice/"
    assert parse_qs(location.query) == {
        "answered": [str(txn.transaction_id)],
        "outcome": ["approved"],
    }
    assert fake.transaction(txn.transaction_id).is_approved
    after = get(phone, response.headers["Location"])
    assert 'data-outcome="approved"' in text(after)
    assert shown_pushes(after) == []


def test_picking_a_number_that_does_not_match_denies_the_push(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    txn = push(fake, code="42")
    other = wrong_number(phone, txn.transaction_id, "42")

    response = answer(phone, "alice", txn.transaction_id, "approve", other)

    assert response.status == 303
    assert "outcome=mismatch" in response.headers["Location"]
    assert fake.transaction(txn.transaction_id).is_denied
    page = text(get(phone, response.headers["Location"]))
    assert 'data-outcome="mismatch"' in page
    assert "does not match" in page


def test_deny_needs_no_number(fake: FakeHyperID, phone: Authenticator) -> None:
    txn = push(fake)

    response = answer(phone, "alice", txn.transaction_id, "deny")

    assert response.status == 303
    assert "outcome=denied" in response.headers["Location"]
    assert fake.transaction(txn.transaction_id).is_denied


@pytest.mark.parametrize("code", [None, "", "7", "4x", "424", "not-offered"])
def test_approving_without_an_offered_number_is_refused_and_the_push_keeps_waiting(
    fake: FakeHyperID, phone: Authenticator, code: str | None
) -> None:
    txn = push(fake, code="42")
    if code == "not-offered":
        code = next(f"{n:02d}" for n in range(100) if f"{n:02d}" not in phone.choices(1))

    response = answer(phone, "alice", txn.transaction_id, "approve", code)

    assert response.status == 400
    assert "Pick the number" in text(response)
    assert fake.transaction(txn.transaction_id).is_pending


@pytest.mark.parametrize("decision", ["", "maybe", "APPROVE"])
def test_an_answer_that_is_neither_approve_nor_deny_changes_nothing(
    fake: FakeHyperID, phone: Authenticator, decision: str
) -> None:
    txn = push(fake, code="42")
    assert answer(phone, "alice", txn.transaction_id, decision, "42").status == 400
    assert (
        phone.handle("POST", f"/authenticator/alice/{txn.transaction_id}/", FORM, b"\xff").status
        == 400
    )
    assert fake.transaction(txn.transaction_id).is_pending


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_a_phone_cannot_answer_another_users_push(
    fake: FakeHyperID, phone: Authenticator, decision: str
) -> None:
    alices = push(fake, "alice", code="42")
    push(fake, "bob")

    response = answer(phone, "bob", alices.transaction_id, decision, "42")

    assert response.status == 404
    assert f"bob's phone has no push {alices.transaction_id}" in text(response).replace(
        "&#x27;", "'"
    )
    assert fake.transaction(alices.transaction_id).is_pending


def test_answering_an_unknown_push_is_refused(phone: Authenticator) -> None:
    assert answer(phone, "alice", 99, "approve", "42").status == 404


@pytest.mark.parametrize("ending", ["approve", "deny", "decline", "expire"])
def test_a_push_that_no_longer_waits_cannot_be_answered(
    fake: FakeHyperID, phone: Authenticator, ending: str
) -> None:
    txn = push(fake, code="42")
    getattr(fake, ending)(txn.transaction_id)
    before = fake.transaction(txn.transaction_id)

    for decision in ("approve", "deny"):
        response = answer(phone, "alice", txn.transaction_id, decision, "42")
        assert response.status == 409
        assert f"is {before.state} already" in text(response)
    assert fake.transaction(txn.transaction_id) == before


def test_a_push_past_its_time_cannot_be_approved(fake: FakeHyperID, phone: Authenticator) -> None:
    txn = push(fake, code="42")
    fake.advance(301)

    response = answer(phone, "alice", txn.transaction_id, "approve", "42")

    assert response.status == 409
    assert fake.transaction(txn.transaction_id).state == "expired"
    assert shown_pushes(get(phone, "/authenticator/alice/")) == []


def test_questions_and_names_are_shown_as_text_never_as_markup(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    subject = 'eve"><script>alert(1)</script>'
    txn = push(fake, subject, "Pay <img src=x onerror=alert(1)> & co?")

    phone_page = text(get(phone, Authenticator.phone_path(subject)))
    index_page = text(get(phone, "/authenticator/"))

    for page in (phone_page, index_page):
        assert "<script>" not in page
        assert "<img" not in page
    assert "Pay &lt;img src=x onerror=alert(1)&gt; &amp; co?" in phone_page
    assert shown_pushes(get(phone, Authenticator.phone_path(subject))) == [txn.transaction_id]


def test_the_index_lists_every_account_with_how_many_pushes_wait(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    push(fake, "alice")
    push(fake, "alice")
    fake.add_user("bob")

    page = text(get(phone, "/authenticator/"))

    assert re.search(
        r'href="/authenticator/alice/">alice</a> <span class="count" data-count="2"', page
    )
    assert re.search(r'href="/authenticator/bob/">bob</a> <span class="count" data-count="0"', page)


def test_an_empty_index_says_how_accounts_appear(phone: Authenticator) -> None:
    assert "Sign in to the site with HyperID first" in text(get(phone, "/authenticator/"))


def test_the_state_the_pages_poll_changes_when_a_push_arrives_or_is_answered(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    def state(path: str) -> str:
        response = get(phone, path)
        assert response.status == 200
        return str(response.json()["state"])

    fake.add_user("alice")
    empty_phone, empty_index = state("/authenticator/alice/state"), state("/authenticator/state")
    txn = push(fake)
    assert state("/authenticator/alice/state") == str(txn.transaction_id) != empty_phone
    assert state("/authenticator/state") == "alice=1" != empty_index
    fake.deny(txn.transaction_id)
    assert state("/authenticator/alice/state") == empty_phone
    # The page names its poll URL and the state it was rendered with.
    page = text(get(phone, "/authenticator/alice/"))
    assert 'data-state-url="/authenticator/alice/state" data-state=""' in page


def test_the_pages_load_their_script_and_style_from_the_simulator_under_a_strict_policy(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    push(fake)
    page = get(phone, "/authenticator/alice/")

    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in text(page)
    assert "style=" not in text(page)
    script = get(phone, "/authenticator/authenticator.js")
    style = get(phone, "/authenticator/authenticator.css")
    assert script.status == style.status == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert style.headers["Content-Type"].startswith("text/css")


def test_wrong_methods_and_unknown_pages_are_refused(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    txn = push(fake)
    assert phone.handle("POST", "/authenticator/alice/", FORM, b"").status == 405
    assert phone.handle("DELETE", "/authenticator/", {}, b"").status == 405
    refused = get(phone, f"/authenticator/alice/{txn.transaction_id}/")
    assert refused.status == 405
    assert refused.headers["Allow"] == "POST"
    assert get(phone, "/authenticator/alice/nothing/here").status == 404
    assert fake.transaction(txn.transaction_id).is_pending


def test_the_servers_root_leads_to_the_phones(phone: Authenticator) -> None:
    assert get(phone, "/").headers["Location"] == "/authenticator/"
    assert get(phone, "/authenticator").headers["Location"] == "/authenticator/"


def test_hyperids_api_and_the_control_endpoints_answer_as_without_the_pages(
    fake: FakeHyperID, phone: Authenticator
) -> None:
    txn = push(fake)
    token = fake.issue_tokens("alice").access_token
    status = phone.handle(
        "POST",
        STATUS_GET_PATH,
        {"Authorization": f"Bearer {token}"},
        json.dumps({"transaction_id": txn.transaction_id}).encode(),
    )
    assert status.json()["transaction_status"] == 0
    listed = get(phone, "/_fake/transactions?state=pending").json()
    assert [t["transaction_id"] for t in listed] == [txn.transaction_id]


def test_a_push_offers_as_many_numbers_as_asked(fake: FakeHyperID) -> None:
    txn = push(fake, code="07")
    numbers = Authenticator(fake, choice_count=5).choices(txn.transaction_id)
    assert len(set(numbers)) == 5
    assert "07" in numbers
    with pytest.raises(ValueError, match="choice_count"):
        Authenticator(fake, choice_count=1)


def test_the_phone_works_over_http_from_a_browser_form() -> None:
    fake = FakeHyperID(base_url=None)
    phone = Authenticator(fake)
    with fake.serve(handler=phone.handle) as server, requests.Session() as http:
        txn = push(fake, code="42")
        response = http.post(
            f"{server.url}/authenticator/alice/{txn.transaction_id}/",
            data={"decision": "approve", "code": "42"},
            timeout=5,
        )
        assert response.status_code == 200  # after the redirect back to the phone
        assert 'data-outcome="approved"' in response.text
        assert fake.transaction(txn.transaction_id).is_approved
        # HyperID's API is still served by the same server.
        assert http.post(f"{server.url}/_fake/users", json={}, timeout=5).status_code == 200
    assert server.errors == []


# ----------------------------------------------------------------------------- the command


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_the_simulator_says_clearly_when_its_port_is_taken(taken_port: int) -> None:
    with pytest.raises(CommandError, match=rf"127\.0\.0\.1:{taken_port}.*already in use.*--port"):
        call_command("hyperid_mfa_simulator", port=taken_port, verbosity=0)


def test_the_simulator_listens_where_the_projects_settings_point_by_default(
    settings, taken_port: int
) -> None:
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "API_BASE_URL": f"http://127.0.0.1:{taken_port}",
    }
    with pytest.raises(CommandError, match=rf"127\.0\.0\.1:{taken_port}"):
        call_command("hyperid_mfa_simulator", verbosity=0)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])  # noqa: S104 - refused
def test_the_simulator_refuses_to_listen_beyond_loopback_unless_allowed(host: str) -> None:
    with pytest.raises(CommandError, match=r"^Error: refusing .*no authentication.*--allow-remote"):
        call_command("hyperid_mfa_simulator", host=host, port=0, verbosity=0)


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("port", 70000, "70000 is more than 65535"),
        ("port", -1, "-1 is not 0 or more"),
        ("port", "http", "'http' is not a whole number"),
        ("transaction_ttl", 0, "0 is not a positive number of seconds"),
        ("token_ttl", "inf", "inf is not a positive number of seconds"),
        ("latency", -1, "-1 is not zero or a positive number of seconds"),
        ("first_transaction_id", 0, "0 is not 1 or more"),
        ("first_transaction_id", 2**62, f"{2**62} is more than {2**62 - 1}"),
    ],
)
def test_the_simulator_refuses_impossible_options(option: str, value: object, reason: str) -> None:
    flag = "--" + option.replace("_", "-")
    message = f"^Error: argument {flag}: {re.escape(reason)}"
    with pytest.raises(CommandError, match=message):
        call_command("hyperid_mfa_simulator", f"{flag}={value}", verbosity=0)
    # call_command's keyword options meet the same check.
    with pytest.raises(CommandError, match=message):
        call_command("hyperid_mfa_simulator", **{option: value, "verbosity": 0})


def test_the_simulator_serves_hyperid_and_the_phones_until_terminated() -> None:
    before = time.time()
    process = run_simulator("--port", "0")
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.match(r"HyperID simulator at (http://127\.0\.0\.1:\d+) \(a test double", first)
        assert match, first
        url = match.group(1)
        with requests.Session() as http:
            user = http.post(f"{url}/_fake/users", json={"subject": "alice"}, timeout=5).json()
            assert user["subject"] == "alice"
            index = http.get(f"{url}/", timeout=5)
            assert index.url == f"{url}/authenticator/"
            assert 'href="/authenticator/alice/"' in index.text
            # The project's own client credentials (tests.settings) refresh tokens.
            refreshed = http.post(
                f"{url}/auth/realms/HyperID/protocol/openid-connect/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": user["refresh_token"],
                    "client_id": "tests",
                    "client_secret": "tests-secret",
                },
                timeout=5,
            )
            assert refreshed.status_code == 200, refreshed.text
            # Ids start from the clock: a restarted simulator does not reuse the ids
            # an earlier run gave out, which the project's database still holds.
            values = json.dumps({"version": 1, "action": {"type": "question", "action_info": "?"}})
            started = http.post(
                f"{url}{START_PATH}",
                json={"template_id": 4, "values": values, "code": "42"},
                headers={"Authorization": f"Bearer {user['access_token']}"},
                timeout=5,
            ).json()
            assert started["result"] == 0
            assert started["transaction_id"] >= int(before * 1000)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "HyperID simulator stopped." in stdout
    # tests.settings point at another address: the simulator says how to use it.
    assert f"set API_BASE_URL to {url}" in stderr
    assert "Traceback" not in stderr


def test_the_standalone_simulator_says_clearly_when_its_port_is_taken(taken_port: int) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "hyperid_mfa.testing.server", "--port", str(taken_port)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 2
    assert f"cannot listen on 127.0.0.1:{taken_port}" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_the_simulator_refuses_a_redirect_uri_that_cannot_be_one() -> None:
    message = r"^Error: argument --redirect-uri: .*fragment"
    with pytest.raises(CommandError, match=message):
        call_command("hyperid_mfa_simulator", "--port=0", "--redirect-uri=https://site.test/cb#x")
    with pytest.raises(CommandError, match=message):
        call_command(
            "hyperid_mfa_simulator", port=0, redirect_uris=["https://site.test/cb#x"], verbosity=0
        )


def test_the_simulator_is_an_openid_provider_for_the_redirect_uris_it_is_given() -> None:
    process = run_simulator(
        "--port",
        "0",
        "--redirect-uri",
        "https://site.test/accounts/oidc/hyperid/login/callback/",
        "--redirect-uri",
        "https://site.test/oidc/callback/",
        "--no-loopback-redirect-uris",
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(6)]
        match = re.match(r"HyperID simulator at (http://127\.0\.0\.1:\d+) ", banner[0])
        assert match, banner
        url = match.group(1)
        issuer = f"{url}/auth/realms/HyperID"
        assert banner[2].strip() == f"OpenID provider, issuer: {issuer}"
        assert banner[3].strip() == f"discovery: {issuer}/.well-known/openid-configuration"
        # The project's CLIENT_ID (tests.settings) is the client that signs in.
        assert banner[4].strip() == (
            "client_id: tests; redirect URIs: "
            "https://site.test/accounts/oidc/hyperid/login/callback/, "
            "https://site.test/oidc/callback/"
        )
        with requests.Session() as http:
            document = http.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
            assert document["issuer"] == issuer

            def authorize(redirect_uri: str) -> requests.Response:
                params = {
                    "response_type": "code",
                    "client_id": "tests",
                    "redirect_uri": redirect_uri,
                    "scope": "openid mfa-client",
                }
                return http.get(document["authorization_endpoint"], params=params, timeout=5)

            assert authorize("https://site.test/oidc/callback/").status_code == 200
            assert authorize("http://127.0.0.1:8000/oidc/callback/").status_code == 400
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


# --- faults from the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("fail_rate", 2, "2 is not a number from 0 to 1"),
        ("fail_rate", "often", "'often' is not a number from 0 to 1"),
        ("fail_rate", "nan", "nan is not a number from 0 to 1"),
        ("seed", -1, "-1 is not 0 or more"),
    ],
)
def test_the_simulator_refuses_impossible_fault_options(
    option: str, value: object, reason: str
) -> None:
    test_the_simulator_refuses_impossible_options(option, value, reason)


@pytest.mark.parametrize(
    ("spelling", "reason"),
    [
        ("nope", "unknown fault 'nope'"),
        ("delay", "fault 'delay' needs parameter(s) ['seconds']"),
        ("result:result=-1,call=token", "fault 'result' never applies to 'token'"),
        ("http_503:retry_after", "'retry_after' in 'http_503:retry_after' is not NAME=VALUE"),
    ],
)
def test_the_simulator_refuses_a_fault_it_cannot_apply(spelling: str, reason: str) -> None:
    message = f"^Error: argument --fault: {re.escape(reason)}"
    with pytest.raises(CommandError, match=message):
        call_command("hyperid_mfa_simulator", "--port=0", f"--fault={spelling}", verbosity=0)
    with pytest.raises(CommandError, match=message):
        call_command("hyperid_mfa_simulator", port=0, faults=[spelling], verbosity=0)


def test_the_simulator_refuses_down_with_a_fail_rate() -> None:
    with pytest.raises(CommandError, match=r"^Error: --down fails every MFA call already"):
        call_command("hyperid_mfa_simulator", "--port=0", "--down", "--fail-rate=0.5")


def test_the_simulator_applies_the_faults_it_is_given_until_they_are_cleared() -> None:
    simulator = SimulatorProcess(
        "--fault",
        "http_503:retry_after=30,call=start",
        "--fault",
        "status:value=3",
        "--fail-rate",
        "0.5",
        "--seed",
        "42",
    )
    try:
        refused = simulator.start()
        assert (refused.status_code, refused.headers["Retry-After"]) == (503, "30")
        assert simulator.faults() == [
            {"fault": "http_503", "call": "start", "times": None, "share": 1.0, "retry_after": 30},
            {"fault": "status", "call": None, "times": None, "share": 1.0, "value": 3},
            {"fault": "result", "call": None, "times": None, "share": 0.5, "result": -1},
        ]
        # --fail-rate draws from a generator seeded with --seed: the same calls fail as
        # in a FakeHyperID seeded alike, given the same faults and calls (the start
        # above drew once too).
        results = [simulator.call(AVAILABILITY_PATH, {}).json()["result"] for _ in range(40)]
        twin = FakeHyperID(seed=42)
        twin.inject("http_503", call="start", retry_after=30, times=None)
        twin.inject("status", value=3, times=None)
        twin.inject("result", result=-1, times=None, share=0.5)
        headers = {"Authorization": f"Bearer {twin.issue_tokens('alice').access_token}"}
        twin.handle("POST", START_PATH, headers, b"{}")
        expected = [
            twin.handle("POST", AVAILABILITY_PATH, headers, b"{}").json()["result"]
            for _ in range(40)
        ]
        assert results == expected
        assert set(results) == {0, -1}

        cleared = simulator.http.delete(simulator.url + "/_fake/faults", timeout=5)
        assert cleared.status_code == 200
        assert simulator.start().json()["result"] == 0
        output = simulator.rest_of_the_output()
    finally:
        simulator.kill()
    assert "faults (seed 42): http_503:retry_after=30,call=start; status:value=3;" in output
    assert f"curl -X DELETE {simulator.url}/_fake/faults" in output


def test_a_simulator_that_is_down_refuses_every_mfa_call_and_still_signs_in() -> None:
    simulator = SimulatorProcess("--down")
    try:
        assert simulator.start().json() == {"result": -1}
        assert simulator.call(AVAILABILITY_PATH, {}).json() == {"result": -1}
        user = simulator.post("/_fake/users", json={"subject": "bob"}).json()
        refreshed = simulator.post(
            "/auth/realms/HyperID/protocol/openid-connect/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": user["refresh_token"],
                "client_id": "tests",
                "client_secret": "tests-secret",
            },
        )
        assert refreshed.status_code == 200
        # Back up at run time, without a restart.
        simulator.http.delete(simulator.url + "/_fake/faults", timeout=5)
        assert simulator.start().json()["result"] == 0
        # And down again.
        simulator.post("/_fake/faults", json={"fault": "result", "result": -1, "times": None})
        assert simulator.start().json() == {"result": -1}
        output = simulator.rest_of_the_output()
    finally:
        simulator.kill()
    assert re.search(
        r'faults \(seed \d+\): --down: every MFA call answers \{"result": -1\}', output
    ), output


def test_the_control_endpoints_curl_examples_in_the_docs_work() -> None:
    document = (REPO / "docs" / "testing.md").read_text()
    [block] = [
        example.source
        for example in docs_examples.examples([REPO / "docs" / "testing.md"])
        if example.language == "sh" and "curl" in example.source
    ]
    lines = [line for line in block.splitlines() if line.startswith("curl")]
    assert len(lines) >= 10, document
    simulator = SimulatorProcess()
    try:
        pending = simulator.start().json()["transaction_id"]
        for line in lines:
            # The example's push is whatever id the simulator gave out.
            line = re.sub(r"/transactions/\d+/", f"/transactions/{pending}/", line)
            done = subprocess.run(
                ["bash", "-c", line],
                env={**os.environ, "SIM": simulator.url},
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode == 0, (line, done.stderr)
            answer = json.loads(done.stdout)
            assert not (isinstance(answer, dict) and "error" in answer), (line, answer)
        assert simulator.transactions(state="approved")[0]["transaction_id"] == pending
        assert simulator.faults()[0]["fault"] == "http_503"
    finally:
        simulator.kill()
