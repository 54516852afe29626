"""Step-up in the real Django admin, in a real browser: Debian's Chromium driven by
Playwright, against a FakeHyperID served over HTTP with its authenticator pages.

A staff member changes a shop's IBAN or runs a bulk action; the admin answers with
the approval page in its own layout; the staff member picks the code on the phone's
page; the admin page carries on by itself. With a window, one approval lets the
next actions through until the window ends. On failure a screenshot of each page is
saved under test-artifacts/.
"""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from hyperid_mfa.models import ApprovalWindow, HyperIDToken, MFARequest, database_now
from hyperid_mfa.testing import Authenticator, FakeHyperID
from tests import oidc_flow as flow
from tests.chromium import ARTIFACTS
from tests.conftest import link
from tests.settings import HAVE_ALLAUTH
from tests.shop.models import Payment, Shop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IBAN = "DE89370400440532013000"
NEW_IBAN = "DE44500105175407324931"
OUTCOMES = {"approve": "approved", "deny": "denied"}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def live_server(django_db_setup) -> Any:
    """pytest-django's live server, started once the test database exists.

    Its session-wide server, when started first, takes the SQLite test database for
    an in-memory one and shares the test's connection with every request thread; the
    admin's pages load a dozen static files at once, each closing that connection at
    its end while another thread queries it. Here every thread has its own, as in
    production.
    """
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("localhost")
    yield server
    server.stop()


@pytest.fixture
def simulator(settings) -> Any:
    """HyperID and the phone's pages, as ``manage.py hyperid_mfa_simulator`` serves them."""
    fake = FakeHyperID(base_url=None)
    with fake.serve(handler=Authenticator(fake).handle) as server:
        settings.HYPERID_MFA = {
            **settings.HYPERID_MFA,
            **fake.settings(),
            "POLL_INTERVAL": 1,
            "MIN_REFRESH_INTERVAL": 0,
            "START_RATE_LIMIT": None,
        }
        yield fake, server.url


@pytest.fixture
def staff(simulator, user) -> Any:
    fake, _url = simulator
    user.is_staff = user.is_superuser = True
    user.save()
    user.hyperid_subject = link(fake, user)
    return user


@pytest.fixture
def context(chromium, live_server, staff, request) -> Any:
    client = Client()
    client.force_login(staff)
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    yield context
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for number, page in enumerate(context.pages):
            page.screenshot(
                path=str(ARTIFACTS / f"{request.node.name}-{number}.png"), full_page=True
            )
    context.close()


def answer_on_the_phone(context: Any, simulator: Any, staff: Any, code: str, decision: str) -> None:
    """The staff member's phone: pick the code the admin shows, then approve or deny."""
    _fake, url = simulator
    phone = context.new_page()
    phone.goto(url + Authenticator.phone_path(staff.hyperid_subject))
    push = phone.locator("section.push")
    if decision == "approve":
        push.locator(f"input[name=code][value='{code}']").check()
        push.locator("button.approve").click()
    else:
        push.locator("button.deny").click()
    phone.wait_for_selector(f"[data-outcome={OUTCOMES[decision]}]")
    phone.close()


def change_iban(page: Any, live_server: Any, shop: Shop, iban: str) -> str:
    """Type a new IBAN on the shop's admin page and save; the code the admin shows."""
    page.goto(live_server.url + reverse("admin:shop_shop_change", args=[shop.pk]))
    page.fill("#id_iban", iban)
    page.click("input[name=_save]")
    page.wait_for_selector(".hyperid-mfa-code")
    return page.text_content(".hyperid-mfa-code").strip()


def test_a_new_iban_is_saved_once_with_the_value_approved_on_the_phone(
    context, live_server, simulator, staff
):
    shop = Shop.objects.create(name="Acme", iban=IBAN)
    page = context.new_page()

    code = change_iban(page, live_server, shop, NEW_IBAN)
    assert page.text_content(".hyperid-mfa-question").strip() == (
        f"Change IBAN of Acme from {IBAN} to {NEW_IBAN}?"
    )
    assert page.is_visible("#site-name")  # inside the admin's own layout
    assert Shop.objects.get().iban == IBAN

    answer_on_the_phone(context, simulator, staff, code, "approve")

    page.wait_for_selector(".messagelist .success")
    assert page.url.endswith(reverse("admin:shop_shop_changelist"))
    assert Shop.objects.get().iban == NEW_IBAN
    assert LogEntry.objects.filter(object_id=str(shop.pk)).count() == 1
    assert MFARequest.objects.get().state == "consumed"


def test_a_denial_on_the_phone_changes_nothing(context, live_server, simulator, staff):
    shop = Shop.objects.create(name="Acme", iban=IBAN)
    page = context.new_page()

    code = change_iban(page, live_server, shop, NEW_IBAN)
    answer_on_the_phone(context, simulator, staff, code, "deny")

    page.wait_for_selector("#hyperid-mfa[data-state='denied']")
    page.wait_for_load_state("networkidle")
    assert page.text_content("#hyperid-mfa-heading") == "You denied this action"
    assert Shop.objects.get().iban == IBAN
    assert not LogEntry.objects.exists()


def test_a_bulk_action_on_fourteen_payments_runs_once_after_approval(
    context, live_server, simulator, staff
):
    shop = Shop.objects.create(name="Acme", iban=IBAN)
    for amount in range(1, 15):
        Payment.objects.create(shop=shop, amount=Decimal(amount))
    page = context.new_page()
    page.goto(live_server.url + reverse("admin:shop_payment_changelist"))

    page.check("#action-toggle")
    page.select_option("select[name=action]", "mark_as_paid")
    page.click("button[name=index]")
    page.wait_for_selector(".hyperid-mfa-code")
    assert (
        page.text_content(".hyperid-mfa-question").strip() == "Run 'Mark as paid' on 14 payments?"
    )
    assert not Payment.objects.filter(state="paid").exists()

    answer_on_the_phone(
        context, simulator, staff, page.text_content(".hyperid-mfa-code").strip(), "approve"
    )

    page.wait_for_selector("#changelist-form")
    page.wait_for_load_state("networkidle")
    assert list(Payment.objects.values_list("state", "times_marked_paid").distinct()) == [
        ("paid", 1)
    ]


def run_mark_as_paid(page: Any, live_server: Any, payments: list[Payment]) -> None:
    """On the payments' change list, select ``payments`` and run "Mark as paid"."""
    page.goto(live_server.url + reverse("admin:shop_payment_changelist"))
    for payment in payments:
        page.check(f"input[name=_selected_action][value='{payment.pk}']")
    page.select_option("select[name=action]", "mark_as_paid")
    page.click("button[name=index]")
    page.wait_for_load_state("networkidle")


def test_a_window_lets_two_actions_through_on_one_approval_and_asks_again_after_it(
    context, live_server, simulator, staff, monkeypatch
):
    from tests.shop.admin import PaymentAdmin

    monkeypatch.setattr(PaymentAdmin, "mfa_window", 600)
    fake, _url = simulator
    shop = Shop.objects.create(name="Acme", iban=IBAN)
    payments = [Payment.objects.create(shop=shop, amount=Decimal(n)) for n in range(1, 7)]
    page = context.new_page()

    run_mark_as_paid(page, live_server, payments[:2])
    assert "for 10 minutes" in page.text_content(".hyperid-mfa-question")
    answer_on_the_phone(
        context, simulator, staff, page.text_content(".hyperid-mfa-code").strip(), "approve"
    )
    page.wait_for_selector("#changelist-form")
    page.wait_for_load_state("networkidle")

    # Two more actions inside the window: no approval page, no push.
    run_mark_as_paid(page, live_server, payments[2:4])
    assert page.is_visible("#changelist-form")
    run_mark_as_paid(page, live_server, payments[4:5])
    assert page.is_visible("#changelist-form")
    assert fake.call_count("start") == 1
    assert [p.times_marked_paid for p in Payment.objects.order_by("pk")] == [1] * 5 + [0]

    now = database_now()
    ApprovalWindow.objects.update(
        opened_at=now - timedelta(seconds=2), expires_at=now - timedelta(seconds=1)
    )

    run_mark_as_paid(page, live_server, payments[5:])
    page.wait_for_selector(".hyperid-mfa-code")
    assert Payment.objects.get(pk=payments[5].pk).times_marked_paid == 0
    assert fake.call_count("start") == 2


# --- the first use: no HyperID token yet (issue 20) -------------------------------------------


def screenshot(page: Any, name: str) -> None:
    """Save what ``page`` shows for the docs, under ``HYPERID_MFA_SCREENSHOTS`` (as
    tests/test_demo.py does), e.g. ``HYPERID_MFA_SCREENSHOTS=docs/images``."""
    target = os.environ.get("HYPERID_MFA_SCREENSHOTS")
    if target:
        folder = Path(target) if Path(target).is_absolute() else REPO / target
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name))


@pytest.mark.skipif(not HAVE_ALLAUTH, reason="needs the [allauth] extra")
def test_a_first_use_is_one_sign_in_and_one_approval_and_keeps_the_edit(
    chromium, live_server, settings, user, request
):
    """A staff member who never signed in with HyperID saves a new IBAN: "Sign in
    with HyperID" goes straight to HyperID (a POST, no allauth page between), comes
    back to the admin, which asks for the approval of that IBAN without it being
    typed again; approved on the phone, the IBAN is saved once."""
    from allauth.socialaccount.models import SocialAccount

    fake = flow.new_fake()
    with fake.serve(handler=Authenticator(fake).handle) as server:
        flow.configure(settings, fake, "allauth")
        settings.HYPERID_MFA = {
            **settings.HYPERID_MFA,
            "POLL_INTERVAL": 1,
            "MIN_REFRESH_INTERVAL": 0,
            "START_RATE_LIMIT": None,
        }
        user.is_staff = user.is_superuser = True
        user.save()
        # The staff member's HyperID account, known to the site; no token stored yet.
        SocialAccount.objects.create(provider="hyperid", uid="alice", user=user)
        assert not HyperIDToken.objects.exists()
        shop = Shop.objects.create(name="Acme", iban=IBAN)

        client = Client()
        client.force_login(user)
        context = chromium.new_context(viewport={"width": 1100, "height": 640})
        context.set_default_timeout(15_000)
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
        seen: list[str] = []
        page.on("request", lambda sent: sent.is_navigation_request() and seen.append(sent.url))
        try:
            page.goto(live_server.url + reverse("admin:shop_shop_change", args=[shop.pk]))
            page.fill("#id_iban", NEW_IBAN)
            page.click("input[name=_save]")

            page.wait_for_selector("#hyperid-mfa-reauthenticate")
            assert page.text_content("#hyperid-mfa-heading") == "Sign in with HyperID"
            assert "again" not in (page.text_content("#hyperid-mfa") or "")
            assert "What you entered is kept" in (page.text_content("#hyperid-mfa-kept") or "")
            assert page.is_visible("#site-name")  # the admin's own layout
            screenshot(page, "admin-first-use-sign-in.png")

            seen.clear()
            page.click("#hyperid-mfa-reauthenticate")
            page.wait_for_selector("form input#subject")
            assert page.url.startswith(fake.issuer)
            # Straight from the admin to HyperID: no page of allauth's in between.
            assert urlsplit(seen[0]).path == flow.LOGIN["allauth"]
            assert seen[1].startswith(fake.issuer)
            page.fill("#subject", "alice")
            page.click("button.sign-in")

            # Back at the admin: the approval of the new IBAN, nothing typed again.
            page.wait_for_selector(".hyperid-mfa-code")
            assert page.text_content(".hyperid-mfa-question").strip() == (
                f"Change IBAN of Acme from {IBAN} to {NEW_IBAN}?"
            )
            assert page.is_visible("#site-name")
            assert Shop.objects.get().iban == IBAN
            screenshot(page, "admin-first-use-approval.png")
            [push] = fake.pending("alice")
            code = page.text_content(".hyperid-mfa-code").strip()
            assert push.code == code

            phone = context.new_page()
            phone.goto(server.url + Authenticator.phone_path("alice"))
            phone.locator(f"section.push input[name=code][value='{code}']").check()
            phone.locator("section.push button.approve").click()
            phone.wait_for_selector("[data-outcome=approved]")

            page.wait_for_url(live_server.url + reverse("admin:shop_shop_changelist"))
            assert "was changed successfully" in (page.text_content(".messagelist") or "")
            assert Shop.objects.get().iban == NEW_IBAN
            assert LogEntry.objects.filter(object_id=str(shop.pk)).count() == 1
            assert fake.call_count("start") == 1  # one sign-in, one approval
            assert MFARequest.objects.get().state == "consumed"
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                for number, shown in enumerate(context.pages):
                    shown.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{number}.png"))
            context.close()
