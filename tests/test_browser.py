"""The approval page in a real browser: Debian's Chromium driven by Playwright.

A user submits a form behind the gate, sees the two-digit code, the phone (FakeHyperID)
answers, and the page carries on by itself. On failure a screenshot of the page is
saved under test-artifacts/.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from hyperid_mfa import services
from hyperid_mfa.models import MFARequest
from tests import gate_views

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _forget_runs():
    gate_views.RUNS.clear()


def submit_transfer(page, live_server, amount="500", payee="Bob"):
    page.goto(f"{live_server.url}/gate/transfer-form/")
    page.fill("#amount", amount)
    page.fill("#payee", payee)
    page.click("#send")
    page.wait_for_selector(".hyperid-mfa-code")


def test_user_approves_on_the_phone_and_the_page_completes_the_transfer(
    page, live_server, fake_hyperid
):
    submit_transfer(page, live_server)
    [push] = fake_hyperid.pending()
    assert page.text_content(".hyperid-mfa-code").strip() == push.code
    assert "Withdraw 500 EUR to Bob?" in page.text_content(".hyperid-mfa-question")
    fake_hyperid.approve(push.transaction_id)
    page.wait_for_selector("#result")
    assert page.text_content("#result") == "Transferred 500 EUR to Bob"
    assert gate_views.RUNS == [("transfer", "500")]
    assert MFARequest.objects.get().state == "consumed"


def test_the_page_polls_every_half_second_as_the_server_asks_and_goes_on_at_once(
    page, live_server, fake_hyperid, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "POLL_INTERVAL": 0.5}
    status = re.compile(r".*/mfa/requests/.*")
    polls: list[str] = []
    page.on("request", lambda request: status.match(request.url) and polls.append(request.url))
    page.clock.install()  # the page's timers run on the test's word from pause_at on
    submit_transfer(page, live_server)
    [push] = fake_hyperid.pending()
    page.clock.pause_at(datetime.now() + timedelta(hours=1))  # a poll due meanwhile runs once
    page.wait_for_timeout(300)  # real time: its answer handled, the next poll timed
    asked = len(polls)
    for _ in range(3):
        page.clock.run_for(400)
        page.wait_for_timeout(100)  # real time: a request would have been seen
        assert len(polls) == asked  # not yet: nothing is asked before the interval
        with page.expect_response(status, timeout=5_000):
            page.clock.run_for(100)
        page.wait_for_timeout(100)  # real time: the answer handled, the next poll timed
        asked += 1
        assert len(polls) == asked
    assert page.get_attribute("#hyperid-mfa", "data-state") == "pending"
    fake_hyperid.approve(push.transaction_id)
    # The next poll, half a second on, learns it and the form goes again with no pause.
    with page.expect_navigation():
        page.clock.run_for(500)
    page.wait_for_selector("#result")
    assert gate_views.RUNS == [("transfer", "500")]


def test_user_denies_and_the_page_says_so_and_offers_to_try_again(page, live_server, fake_hyperid):
    submit_transfer(page, live_server)
    [push] = fake_hyperid.pending()
    fake_hyperid.deny(push.transaction_id)
    page.wait_for_selector("#hyperid-mfa[data-state='denied']")
    assert re.search("denied", page.text_content("#hyperid-mfa-status"))
    assert page.text_content("#hyperid-mfa-heading") == "You denied this action"
    assert not page.is_visible(".hyperid-mfa-code")
    assert page.is_visible("#hyperid-mfa-retry")
    assert not page.is_visible("#hyperid-mfa-continue")
    assert gate_views.RUNS == []


def test_after_a_denial_try_again_waits_out_the_cooldown_then_sends_a_new_push(
    page, live_server, fake_hyperid, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "DENIAL_COOLDOWN": 3}
    submit_transfer(page, live_server)
    [push] = fake_hyperid.pending()
    fake_hyperid.deny(push.transaction_id)
    page.wait_for_selector("#hyperid-mfa[data-state='denied']")

    assert re.fullmatch(
        r"You can try again in 0:0[1-3]\.", page.text_content("#hyperid-mfa-countdown")
    )
    assert page.is_disabled("#hyperid-mfa-retry")
    page.wait_for_selector("#hyperid-mfa-retry:enabled", timeout=6_000)
    assert page.text_content("#hyperid-mfa-countdown") == "You can try again now."
    page.click("#hyperid-mfa-retry")

    page.wait_for_selector("#hyperid-mfa[data-state='pending']")
    assert page.text_content("#hyperid-mfa-heading") == "Approve this action on your phone"
    assert len(fake_hyperid.pending()) == 1
    assert fake_hyperid.pending()[0].transaction_id != push.transaction_id


def test_after_a_denial_back_returns_to_the_form_the_user_came_from(
    page, live_server, fake_hyperid
):
    submit_transfer(page, live_server)
    [push] = fake_hyperid.pending()
    assert not page.is_visible("#hyperid-mfa-back")
    fake_hyperid.deny(push.transaction_id)
    page.wait_for_selector("#hyperid-mfa-back", state="visible")
    page.click("#hyperid-mfa-back")
    page.wait_for_url(f"{live_server.url}/gate/transfer-form/")
    assert gate_views.RUNS == []


def test_user_cancels_from_the_page(page, live_server, fake_hyperid):
    submit_transfer(page, live_server)
    [push] = fake_hyperid.pending()
    page.click("#hyperid-mfa-cancel")
    page.wait_for_selector("#hyperid-mfa[data-state='canceled']")
    assert fake_hyperid.transaction(push.transaction_id).status == 4
    assert MFARequest.objects.get().state == "canceled"


def test_cancel_that_comes_too_late_carries_on_with_the_approval(
    page, live_server, fake_hyperid, settings
):
    # Polls far apart, so the approval is learnt through the cancel's answer.
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "POLL_INTERVAL": 600}
    submit_transfer(page, live_server)
    [push] = fake_hyperid.pending()
    fake_hyperid.approve(push.transaction_id)
    services.refresh_request(MFARequest.objects.get(), force=True)
    page.click("#hyperid-mfa-cancel")
    page.wait_for_selector("#result")
    assert gate_views.RUNS == [("transfer", "500")]


# --- another site, and hostile paths (issue 17, attacks 2 and 3) --------------------------


def test_a_link_on_another_site_sends_no_push_and_the_user_can_start_over(
    page, live_server, fake_hyperid
):
    target = f"{live_server.url}/gate/export/?month=5"
    page.context.route(
        lambda url: url.startswith("http://evil.example/"),
        lambda route: route.fulfill(
            content_type="text/html", body=f'<a id="prize" href="{target}">Win a prize</a>'
        ),
    )
    page.goto("http://evil.example/")

    page.click("#prize")  # Chromium sends Sec-Fetch-Site: cross-site, and the session

    page.wait_for_selector("#hyperid-mfa-start-over")
    assert fake_hyperid.call_count("start") == 0
    page.click("#hyperid-mfa-start-over")  # from this site now: the gate as usual
    page.wait_for_selector(".hyperid-mfa-code")
    [push] = fake_hyperid.pending()
    fake_hyperid.approve(push.transaction_id)
    page.wait_for_selector("text=exported 5")
    assert page.url.startswith(live_server.url)


def test_a_link_opened_from_outside_the_browser_asks_the_phone_naming_its_values(
    page, live_server, fake_hyperid
):
    # A link in a mail or chat app opens in the browser as a navigation no page
    # started (Sec-Fetch-Site: none), as Playwright's goto() does, with the session:
    # the phone names the link's values, and only an approval runs it.
    page.goto(f"{live_server.url}/gate/export/?month=13")

    page.wait_for_selector(".hyperid-mfa-code")
    [push] = fake_hyperid.pending()
    assert push.question == "Approve reports.export: month 13?"
    fake_hyperid.approve(push.transaction_id)
    page.wait_for_selector("text=exported 13")


def test_a_prefetch_of_a_gated_page_sends_no_push(page, live_server, fake_hyperid):
    # A page of this site that prefetches a gated link (a script that prefetches on
    # hover does the same): Chromium sends Sec-Purpose: prefetch, and the session.
    prefetched = f"{live_server.url}/gate/export/?month=7"
    body = f'<link rel="prefetch" href="{prefetched}"><a id="export" href="{prefetched}">Export</a>'
    page.route(
        f"{live_server.url}/prefetching/",
        lambda route: route.fulfill(content_type="text/html", body=body),
    )
    with page.expect_request(prefetched):
        page.goto(f"{live_server.url}/prefetching/")
    page.wait_for_timeout(500)
    assert fake_hyperid.call_count("start") == 0
    page.click("#export")  # the user's click: one push, the page as usual
    page.wait_for_selector(".hyperid-mfa-code")
    assert fake_hyperid.call_count("start") == 1


def test_a_backslash_in_the_path_is_sent_again_to_this_site_after_approval(
    page, live_server, fake_hyperid
):
    # Read as /\evil.example/statement/, a form action a browser resolves to
    # http://evil.example/statement/, where it would send the approved request.
    page.goto(f"{live_server.url}/%5Cevil.example/statement/")
    page.wait_for_selector(".hyperid-mfa-code")

    action = page.eval_on_selector("#hyperid-mfa-resubmit", "form => form.action")

    assert action == f"{live_server.url}/%5Cevil.example/statement/"
    [push] = fake_hyperid.pending()
    fake_hyperid.approve(push.transaction_id)
    page.wait_for_selector("#result")
    assert page.url.startswith(f"{live_server.url}/%5Cevil.example/statement/")
    assert gate_views.RUNS == [("statement", "\\evil.example")]
