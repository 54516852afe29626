"""Each fault the simulator takes on its command line, as a user sees it in a browser.

``manage.py hyperid_mfa_simulator`` runs in a process of its own with the fault, the
test project (the live server) points at it, and Debian's Chromium submits a gated
transfer. The page's heading is read for its gist only, and its answer code from the
page's ``data-state``: the wording is the approval page's, not the simulator's.
On failure a screenshot is saved under test-artifacts/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.tokens.store import store_tokens
from tests import gate_views
from tests import oidc_flow as flow
from tests.chromium import save_screenshots
from tests.conftest import eventually
from tests.simulator_process import SimulatorProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

#: The app's deadline for each HyperID call is their sum: 1.5 s.
TIMEOUT = (0.5, 1.0)
#: Seconds a slow fault holds HyperID's response: well past the deadline.
SLOW = 4

# What each page's heading says, in gist (the approval page's own texts).
UNAVAILABLE = ("mfa_unavailable", 503, r"unavailable|not available")
PENDING = ("pending", 403, r"approve")
NO_AUTHENTICATOR = ("mfa_no_authenticator", 403, r"not possible|authenticator")
FAILED = ("failed", 403, r"failed")


@pytest.fixture
def simulators() -> Iterator[list[SimulatorProcess]]:
    started: list[SimulatorProcess] = []
    yield started
    for simulator in started:
        simulator.kill()


@pytest.fixture
def site(
    chromium: Any,
    live_server: Any,
    user: Any,
    settings: Any,
    simulators: list[SimulatorProcess],
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Any]]:
    """``site(*options)``: the simulator started with ``options``, the test project
    pointed at it, ``user`` signed in to it, and a browser page signed in to the site."""
    context = chromium.new_context()
    gate_views.RUNS.clear()

    def start(*options: str) -> Any:
        simulator = SimulatorProcess(*options)
        simulators.append(simulator)
        settings.HYPERID_MFA = {
            **settings.HYPERID_MFA,
            "API_BASE_URL": simulator.url,
            "ISSUER": simulator.issuer,
            "TIMEOUT": TIMEOUT,
            "POLL_INTERVAL": 1,
            "MIN_REFRESH_INTERVAL": 0,
        }
        alice = simulator.alice
        store_tokens(
            user, alice["access_token"], alice["refresh_token"], expires_in=alice["expires_in"]
        )
        client = Client()
        client.force_login(user)
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        return simulator, page

    yield start
    save_screenshots(request, context)
    context.close()


def transfer(page: Any, live_server: Any, amount: str = "500") -> int:
    """Submit a gated transfer; the HTTP status of the page it leads to."""
    page.goto(f"{live_server.url}/gate/transfer-form/")
    page.fill("#amount", amount)
    page.fill("#payee", "Bob")
    with page.expect_response(lambda r: r.url.endswith("/gate/transfer/")) as answer:
        page.click("#send")
    page.wait_for_selector("#hyperid-mfa")
    status: int = answer.value.status
    return status


def shows(page: Any, status: int, expected: tuple[str, int, str]) -> None:
    """The page is the approval page's answer ``expected``: code, status, heading's gist."""
    code, wanted_status, gist = expected
    assert page.get_attribute("#hyperid-mfa", "data-state") == code
    assert status == wanted_status
    heading = page.text_content("#hyperid-mfa h1")
    assert re.search(gist, heading, re.IGNORECASE), heading


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--down"], UNAVAILABLE),
        (["--fault", "result:result=-1,call=start"], UNAVAILABLE),
        (["--fault", "result:result=-7,call=start"], NO_AUTHENTICATOR),
        (["--fault", "http_500:call=start"], UNAVAILABLE),
        (["--fault", "http_502:call=start"], UNAVAILABLE),
        (["--fault", "http_503:retry_after=30,call=start"], UNAVAILABLE),
        (["--fault", "http_429:retry_after=30,call=start"], UNAVAILABLE),
        (["--fault", "connection_error:call=start"], UNAVAILABLE),
        (["--fault", "html:call=start"], UNAVAILABLE),
        (["--fault", "malformed_json:call=start"], UNAVAILABLE),
        (["--fault", "truncated_json:call=start"], UNAVAILABLE),
        (["--fault", "missing_field:field=transaction_id,call=start"], UNAVAILABLE),
        (["--fault", "delay:seconds=0.3,call=start"], PENDING),
        (["--latency", "0.3"], PENDING),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value[0],
)
def test_a_fault_on_the_push_shows_its_page(site, live_server, options, expected):
    _simulator, page = site(*options)

    status = transfer(page, live_server)

    shows(page, status, expected)
    assert gate_views.RUNS == []


@pytest.mark.parametrize("fault", ["delay", "timeout"])
def test_a_push_answered_too_late_shows_unavailable_and_is_withdrawn(site, live_server, fault):
    simulator, page = site("--fault", f"{fault}:seconds={SLOW},call=start")

    began = time.monotonic()
    status = transfer(page, live_server)

    assert time.monotonic() - began < SLOW  # the page came at the app's deadline
    shows(page, status, UNAVAILABLE)
    # HyperID sent the push all the same; when its answer turns up, the app withdraws it.
    [push] = simulator.transactions()
    eventually(lambda: simulator.transactions()[0]["state"] == "canceled", seconds=20)
    assert push["subject"] == "alice"


def test_a_push_whose_id_comes_back_wrong_ends_as_failed(site, live_server):
    simulator, page = site("--fault", "wrong_transaction_id:call=start")

    transfer(page, live_server)

    # The app follows an id HyperID does not know: the page learns so and says it.
    page.wait_for_selector("#hyperid-mfa[data-state='failed']")
    assert re.search(FAILED[2], page.text_content("#hyperid-mfa h1"), re.IGNORECASE)
    [push] = simulator.transactions()
    simulator.post(f"/_fake/transactions/{push['transaction_id']}/approve")
    assert gate_views.RUNS == []


def test_with_a_fail_rate_some_pushes_fail_and_others_go_out(site, live_server):
    # The draws of seed 1: the first below 0.5 (fails), the second above (goes out).
    _simulator, page = site("--fail-rate", "0.5", "--seed", "1")

    shows(page, transfer(page, live_server), UNAVAILABLE)
    shows(page, transfer(page, live_server), PENDING)


@pytest.mark.parametrize(
    "fault",
    [
        "status:value=3",
        "complete_result:value=7",
        "missing_field:field=transaction_status,call=status-get",
        "wrong_transaction_id:call=status-get",
    ],
)
def test_a_fault_on_the_status_keeps_the_page_waiting_even_after_approval(site, live_server, fault):
    simulator, page = site("--fault", fault)

    shows(page, transfer(page, live_server), PENDING)
    [push] = simulator.transactions()
    simulator.post(f"/_fake/transactions/{push['transaction_id']}/approve")

    # The app never learns the approval through answers it cannot trust: the page
    # keeps asking (a poll a second), and the transfer does not run.
    time.sleep(2.5)
    assert page.get_attribute("#hyperid-mfa", "data-state") in ("pending", "error")
    assert re.search(PENDING[2], page.text_content("#hyperid-mfa h1"), re.IGNORECASE)
    assert gate_views.RUNS == []

    # Cleared at run time, the approval is learnt and the transfer runs, once.
    simulator.http.delete(simulator.url + "/_fake/faults", timeout=5)
    page.wait_for_selector("#result", timeout=20_000)
    assert gate_views.RUNS == [("transfer", "500")]


def test_down_at_run_time_then_up_again_without_a_restart(site, live_server):
    simulator, page = site()
    down = {"fault": "result", "result": -1, "times": None}
    assert simulator.post("/_fake/faults", json=down).status_code == 200

    shows(page, transfer(page, live_server), UNAVAILABLE)

    simulator.http.delete(simulator.url + "/_fake/faults", timeout=5)
    shows(page, transfer(page, live_server), PENDING)


# mozilla-django-oidc: allauth checks no signature on an ID token it fetched from the
# token endpoint itself (tests/test_sign_in.py says why that is allowed).
def test_a_sign_in_whose_id_token_does_not_verify_signs_nobody_in(
    chromium, live_server, settings, simulators
):
    simulator = SimulatorProcess("--fault", "id_token_signature")
    simulators.append(simulator)
    # A fake at the simulator's address: what flow.configure reads (issuer, client).
    stand_in = flow.new_fake()
    stand_in.base_url = simulator.url
    flow.configure(settings, stand_in, "mozilla")
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}{flow.LOGIN['mozilla']}?next=/gate/transfer-form/")
        page.wait_for_selector("form input#subject")
        assert "Sign in with HyperID" in page.text_content("h1")
        page.fill("#subject", "alice")
        with page.expect_response(lambda r: flow.CALLBACK["mozilla"] in r.url) as callback:
            page.click("button.sign-in")

        # The site refuses the forged ID token (Django's "Bad Request"): no session.
        assert callback.value.status == 400
        assert re.search(r"bad request", page.text_content("h1"), re.IGNORECASE)
        assert not HyperIDToken.objects.exists()
        page.goto(f"{live_server.url}/gate/transfer-form/")
        assert page.url.startswith(f"{live_server.url}{settings.LOGIN_URL}?")  # to sign in
    finally:
        context.close()
