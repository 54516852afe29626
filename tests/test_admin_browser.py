"""Step-up in the real Django admin, in a real browser: Debian's Chromium driven by
Playwright, against a FakeHyperID served over HTTP with its authenticator pages.

A staff member changes a shop's IBAN or runs a bulk action; the admin answers with
the approval page in its own layout; the staff member picks the code on the phone's
page; the admin page carries on by itself. With a window, one approval lets the
next actions through until the window ends. On failure a screenshot of each page is
saved under test-artifacts/.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from hyperid_mfa.models import ApprovalWindow, MFARequest, database_now
from hyperid_mfa.testing import Authenticator, FakeHyperID
from tests.chromium import ARTIFACTS
from tests.conftest import link
from tests.shop.models import Payment, Shop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IBAN = "DE89370400440532013000"
NEW_IBAN = "DE44500105175407324931"
OUTCOMES = {"approve": "approved", "deny": "denied"}


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
