"""What the install paths' tests share: Django's checks of the project, and a user's
first hour with a sign-in library in Chromium (sign in with HyperID on the simulator's
page, transfer money, approve on the simulated phone; the transfer runs once)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from django.core.management import call_command

from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.testing import Authenticator
from hyperid_mfa.tokens.store import decrypt

from wallet.models import Transfer

#: Where a failed test leaves its screenshots (as the main suite's browser tests do).
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
TIMEOUT_MS = 20_000


def checks_report() -> str:
    """What ``manage.py check`` says of the path's project; it fails on a warning."""
    output = io.StringIO()
    call_command("check", fail_level="WARNING", stdout=output)
    return output.getvalue()


def sign_in_transfer_and_approve(chromium: Any, site: str, simulator: Any, name: str) -> None:
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page, phone = context.new_page(), context.new_page()
    try:
        # Sign in with HyperID: the library sends the browser to the simulator's
        # sign-in page, and brings it back signed in.
        page.goto(f"{site}/")
        page.click("#sign-in")
        page.wait_for_url(f"{simulator.issuer}/**")
        page.fill("#subject", "alice")
        page.click("button.sign-in")
        page.wait_for_selector("#signed-in")

        # The library handed the sign-in's tokens to the app: stored encrypted, alice's.
        row = HyperIDToken.objects.get()
        assert simulator.subject_of(decrypt(row.access_token_encrypted)) == "alice"

        # A transfer waits for approval; alice picks the site's code on her phone.
        code = transfer(page, site)
        phone.goto(simulator.base_url + Authenticator.phone_path("alice"))
        phone.click(f"label.choice:has(input[value='{code}'])")
        phone.click("button.approve")
        phone.wait_for_selector("[data-outcome=approved]")

        # The approval page sends the form again by itself: the transfer runs, once.
        page.wait_for_selector("#result")
        assert page.text_content("#result") == "Transferred 250.00 EUR to Bob."
        [made] = Transfer.objects.all()
        assert made.user_id == row.user_id
        transfer(page, site)  # the same transfer again: a new push, not a second run
        assert Transfer.objects.count() == 1
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        for number, shown in enumerate((page, phone)):
            shown.screenshot(path=str(ARTIFACTS / f"installs-{name}-{number}.png"), full_page=True)
        raise
    finally:
        context.close()


def transfer(page: Any, site: str) -> str:
    """Send 250 EUR to Bob; the code the approval page shows."""
    page.goto(f"{site}/transfer/")
    page.fill("#id_amount", "250")
    page.fill("#id_payee", "Bob")
    page.click("#send")
    return (page.text_content(".hyperid-mfa-code") or "").strip()
