"""Signing in with HyperID in a real browser, then approving on the simulated phone.

Debian's Chromium, driven by Playwright, signs in through django-allauth or
mozilla-django-oidc at a FakeHyperID served with the simulator's authenticator pages
(``Authenticator(fake).handle``), types a transfer behind the gate, and approves the
push on the phone's page; then once more after HyperID expired the access token, so
the push needs the refresh token the sign-in stored. Nothing is mocked between them.
On failure a screenshot of each page is saved under test-artifacts/.
"""

from __future__ import annotations

from typing import Any

import pytest

from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.testing import Authenticator
from hyperid_mfa.tokens.store import decrypt
from tests import gate_views
from tests import oidc_flow as flow
from tests.chromium import open_phone, save_screenshots

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def simulator() -> Any:
    """HyperID with the authenticator's pages: what ``manage.py hyperid_mfa_simulator`` serves."""
    fake = flow.new_fake()
    with fake.serve(handler=Authenticator(fake).handle) as server:
        yield fake, server.url


@pytest.fixture
def browser_context(chromium: Any, request: pytest.FixtureRequest) -> Any:
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    gate_views.RUNS.clear()
    yield context
    save_screenshots(request, context)
    context.close()


def sign_in_on_hyperids_page(page: Any, subject: str) -> None:
    page.wait_for_selector("form input#subject")
    assert "Sign in with HyperID" in page.text_content("h1")
    page.fill("#subject", subject)
    page.click("button.sign-in")


def transfer(page: Any, live_server: Any, amount: str) -> str:
    """Type a transfer behind the gate; the code the approval page shows."""
    page.goto(f"{live_server.url}/gate/transfer-form/")
    page.fill("#amount", amount)
    page.fill("#payee", "Bob")
    page.click("#send")
    return page.text_content(".hyperid-mfa-code").strip()


def approve_on_the_phone(phone: Any, phone_url: str, code: str) -> None:
    """The user picks the number the site shows on their phone and approves."""
    open_phone(phone, phone_url)
    push = phone.locator("section.push")
    push.locator(f"input[name=code][value='{code}']").check()
    push.locator("button.approve").click()
    phone.wait_for_selector("[data-outcome=approved]")


@pytest.mark.parametrize("library", flow.BOTH)
def test_a_user_signs_in_with_hyperid_and_approves_transfers_on_the_phone(
    browser_context, live_server, simulator, settings, library
):
    fake, simulator_url = simulator
    flow.configure(settings, fake, library)
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "POLL_INTERVAL": 1, "MIN_REFRESH_INTERVAL": 0}
    page = browser_context.new_page()

    # Signing in on the simulator's page brings the user back to the transfer form.
    page.goto(f"{live_server.url}{flow.LOGIN[library]}?next=/gate/transfer-form/")
    assert page.url.startswith(fake.issuer)
    sign_in_on_hyperids_page(page, "alice")
    page.wait_for_selector("#amount")

    # The sign-in's tokens are stored encrypted, and are alice's own.
    row = HyperIDToken.objects.get()
    access, refresh = decrypt(row.access_token_encrypted), decrypt(row.refresh_token_encrypted)
    assert access not in row.access_token_encrypted
    assert refresh not in row.refresh_token_encrypted
    assert fake.subject_of(access) == "alice"

    # A transfer sends a push; alice approves it on her phone; the transfer runs once.
    phone = browser_context.new_page()
    phone_url = simulator_url + Authenticator.phone_path("alice")
    code = transfer(page, live_server, "500")
    [push] = fake.pending("alice")
    assert push.code == code
    approve_on_the_phone(phone, phone_url, code)
    page.wait_for_selector("#result")
    assert page.text_content("#result") == "Transferred 500 EUR to Bob"
    assert gate_views.RUNS == [("transfer", "500")]

    # HyperID expires alice's access token: the next push refreshes it first.
    assert fake.expire_access_tokens("alice") >= 1
    before = len(fake.calls)
    code = transfer(page, live_server, "20")
    pushing = [call for call in fake.calls[before:] if call.name in ("start", "token")]
    assert [(call.name, call.http_status, call.result) for call in pushing] == [
        ("start", 200, -4),  # HyperID refuses the expired token
        ("token", 200, None),  # the refresh
        ("start", 200, 0),  # and the push goes out
    ]
    assert pushing[1].subject == "alice"
    [push] = fake.pending("alice")
    assert push.code == code
    approve_on_the_phone(phone, phone_url, code)
    page.wait_for_selector("#result")
    assert page.text_content("#result") == "Transferred 20 EUR to Bob"
    assert gate_views.RUNS == [("transfer", "500"), ("transfer", "20")]
    assert decrypt(HyperIDToken.objects.get().access_token_encrypted) != access
