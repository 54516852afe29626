"""Validate first, then ask, in a real browser (Debian's Chromium, Playwright): a form
with invalid input comes back with its errors and no push; valid input shows the
approval page, whose script sends the form again once the phone approves, so the view
validates again and ``require_approval`` consumes the approval."""

from __future__ import annotations

import pytest

from hyperid_mfa.models import MFARequest
from tests import approval_views

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _forget_runs():
    approval_views.RUNS.clear()


def send(page, amount, payee="Bob"):
    page.fill("#amount", amount)
    page.fill("#payee", payee)
    page.click("#send")


def test_invalid_input_comes_back_with_its_errors_and_valid_input_runs_once_approved(
    page, live_server, fake_hyperid
):
    page.goto(f"{live_server.url}/approval/page/")

    send(page, "abc")
    page.wait_for_selector("#errors")
    assert "Enter a number." in page.text_content("#errors")
    assert fake_hyperid.call_count() == 0

    send(page, "500")
    page.wait_for_selector(".hyperid-mfa-code")
    [push] = fake_hyperid.pending()
    assert page.text_content(".hyperid-mfa-code").strip() == push.code
    assert "Withdraw 500 EUR to Bob?" in page.text_content(".hyperid-mfa-question")
    assert approval_views.RUNS == []

    fake_hyperid.approve(push.transaction_id)  # the page sends the form again by itself

    page.wait_for_selector("#result")
    assert page.text_content("#result") == "Sent 500 EUR to Bob"
    assert approval_views.RUNS == [("page", "500.00", "Bob")]
    assert MFARequest.objects.get().state == "consumed"
