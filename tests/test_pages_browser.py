"""Every page the app renders, as a person meets it in a real browser: its heading and
the actions it offers, and axe-core's findings (WCAG 2.2 A/AA and the landmark best
practices) in the light and dark schemes at 1280 and 390 px wide.

The approval page waiting, denied, in the cooldown after a denial, expired and with
HyperID unavailable; the admin's approval page, and its "Sign in with HyperID" on a
first use; the resume page that finds nothing; the simulator's phone and sign-in
pages. (The example bank's pages are checked in tests/test_demo.py, where the demo
runs.) Debian's Chromium driven by Playwright, one browser for the module; on
failure a screenshot of each page is saved under test-artifacts/.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from hyperid_mfa.models import MFARequest, database_now
from hyperid_mfa.testing import Authenticator
from tests import oidc_flow as flow
from tests.accessibility import (
    axe_violations,
    findings_in_every_scheme_and_width,
    outline,
)
from tests.chromium import save_screenshots
from tests.conftest import link
from tests.shop.models import Shop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def live_server(threaded_live_server) -> Any:
    return threaded_live_server


@pytest.fixture
def context(chromium, request) -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context
    save_screenshots(request, context)
    context.close()


def signed_in(context: Any, live_server: Any, user: Any) -> Any:
    """A page of ``context`` with ``user``'s session on the live server."""
    client = Client()
    client.force_login(user)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context.new_page()


def submit_transfer(page: Any, live_server: Any) -> None:
    page.goto(f"{live_server.url}/gate/transfer-form/", referer=live_server.url + "/")
    page.fill("#amount", "500")
    page.fill("#payee", "Bob")
    page.click("#send")
    page.wait_for_selector("#hyperid-mfa")
    page.wait_for_load_state()  # the page's script has run


def assert_accessible(page: Any, axe_source: str) -> None:
    assert findings_in_every_scheme_and_width(page, axe_source) == {}


@pytest.fixture
def waiting(context, live_server, hyperid_user, settings) -> Any:
    """The approval page of a transfer, waiting, polling every second."""
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "POLL_INTERVAL": 1,
        "MIN_REFRESH_INTERVAL": 0,
        "DENIAL_COOLDOWN": 600,
    }
    page = signed_in(context, live_server, hyperid_user)
    submit_transfer(page, live_server)
    page.wait_for_selector(".hyperid-mfa-code")
    return page


def test_the_approval_page_waiting_then_denied_then_asked_again_too_soon(
    waiting, live_server, fake_hyperid, axe_source
):
    page = waiting
    assert outline(page) == {"heading": "Approve this action on your phone", "actions": ["Cancel"]}
    assert_accessible(page, axe_source)

    [push] = fake_hyperid.pending()
    fake_hyperid.deny(push.transaction_id)
    page.wait_for_selector("#hyperid-mfa[data-state='denied']")
    assert outline(page) == {
        "heading": "You denied this action",
        "actions": ["Try again (disabled)", "Back"],
    }
    assert re.fullmatch(
        r"You can try again in (10:00|9:5\d)\.", page.text_content("#hyperid-mfa-countdown")
    )
    assert_accessible(page, axe_source)

    # The same transfer sent again from its form, before the cooldown ends.
    submit_transfer(page, live_server)
    assert outline(page) == {
        "heading": "You denied the last approval request",
        "actions": ["Try again (disabled)", "Back"],
    }
    assert "Too many" not in page.content()
    assert_accessible(page, axe_source)


def test_the_approval_page_after_the_request_expired(waiting, axe_source):
    page = waiting
    MFARequest.objects.update(expires_at=database_now() - timedelta(seconds=1))

    page.wait_for_selector("#hyperid-mfa[data-state='expired']")

    assert outline(page) == {
        "heading": "The approval request expired",
        "actions": ["Try again", "Back"],
    }
    assert_accessible(page, axe_source)


def test_the_approval_page_when_hyperid_is_unavailable(
    context, live_server, hyperid_user, fake_hyperid, axe_source
):
    fake_hyperid.inject("http_503", call="start", retry_after=30)
    page = signed_in(context, live_server, hyperid_user)

    submit_transfer(page, live_server)

    assert outline(page) == {
        "heading": "Approval is unavailable right now",
        "actions": ["Try again (disabled)", "Back"],
    }
    assert page.text_content("#hyperid-mfa-countdown").startswith("You can try again in 0:")
    # HyperID may have sent the push it did not answer for.
    assert "deny it" in page.text_content("#hyperid-mfa-stray")
    assert_accessible(page, axe_source)


# --- the admin's approval page and the simulator's pages ----------------------------------


@pytest.fixture
def simulator(settings) -> Any:
    """HyperID and the phone's pages, as ``manage.py hyperid_mfa_simulator`` serves them."""
    fake = flow.new_fake()
    with fake.serve(handler=Authenticator(fake).handle) as server:
        settings.HYPERID_MFA = {
            **settings.HYPERID_MFA,
            **fake.settings(),
            "POLL_INTERVAL": 1,
            "MIN_REFRESH_INTERVAL": 0,
        }
        yield fake, server.url


def test_the_admins_approval_page_and_the_phone_that_answers_it(
    context, live_server, simulator, user, axe_source
):
    fake, simulator_url = simulator
    user.is_staff = user.is_superuser = True
    user.save()
    subject = link(fake, user)
    shop = Shop.objects.create(name="Acme", iban="DE89370400440532013000")
    page = signed_in(context, live_server, user)

    page.goto(live_server.url + reverse("admin:shop_shop_change", args=[shop.pk]))
    page.fill("#id_iban", "DE44500105175407324931")
    page.click("input[name=_save]")
    page.wait_for_selector(".hyperid-mfa-code")

    assert outline(page, "#hyperid-mfa") == {
        "heading": "Approve this action on your phone",
        "actions": ["Cancel"],
    }
    assert page.locator("main").count() == 1  # the admin's own
    assert_accessible(page, axe_source)

    phone = context.new_page()
    phone.goto(simulator_url + Authenticator.phone_path(subject))
    phone.wait_for_selector("section.push")
    assert outline(phone) == {"heading": f"{subject}'s phone", "actions": ["Deny", "Approve"]}
    assert_accessible(phone, axe_source)


@pytest.mark.parametrize("library", [flow.MOZILLA])
def test_the_simulators_sign_in_page(
    context, live_server, simulator, settings, axe_source, library
):
    fake, _url = simulator
    flow.configure(settings, fake, library)
    page = context.new_page()

    page.goto(f"{live_server.url}{flow.LOGIN[library]}")
    page.wait_for_selector("form input#subject")

    assert outline(page) == {"heading": "Sign in with HyperID", "actions": ["Sign in", "Cancel"]}
    assert_accessible(page, axe_source)


def test_content_outside_every_landmark_is_found(waiting, axe_source):
    """The check above can fail: text outside any landmark is axe's ``region``."""
    waiting.evaluate(
        "document.body.prepend(Object.assign(document.createElement('p'), {textContent: 'Ad'}))"
    )

    found = axe_violations(waiting, axe_source, landmarks=True)

    assert [finding["id"] for finding in found] == ["region"]


def test_the_admins_first_use_page_and_a_resume_page_that_finds_nothing(
    context, live_server, simulator, user, axe_source
):
    """A staff member without a HyperID token saves a protected change: "Sign in with
    HyperID" beside "Back", in the admin's layout. A resume key that is no longer
    kept: a page that says so and posts nothing."""
    user.is_staff = user.is_superuser = True
    user.save()
    shop = Shop.objects.create(name="Acme", iban="DE89370400440532013000")
    page = signed_in(context, live_server, user)

    page.goto(live_server.url + reverse("admin:shop_shop_change", args=[shop.pk]))
    page.fill("#id_iban", "DE44500105175407324931")
    page.click("input[name=_save]")
    page.wait_for_selector("#hyperid-mfa-reauthenticate")

    assert outline(page, "#hyperid-mfa") == {
        "heading": "Sign in with HyperID",
        "actions": ["Sign in with HyperID", "Back"],
    }
    assert page.locator("main").count() == 1  # the admin's own
    assert_accessible(page, axe_source)

    page.goto(live_server.url + reverse("hyperid_mfa:resume", args=["A" * 43]))
    assert outline(page) == {"heading": "This form is no longer kept", "actions": []}
    assert page.locator("#hyperid-mfa-resume").count() == 0
    assert_accessible(page, axe_source)
