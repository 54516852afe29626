"""The dashboard in a real browser: accessible, in the admin's light and dark themes,
readable without JavaScript, and nothing fetched from elsewhere.

Debian's Chromium driven by Playwright against pytest-django's live server, with
the known rows of tests/test_dashboard.py. Accessibility is checked by axe-core
(``npm ci`` at the repository's root installs it into node_modules/): no violation
of WCAG 2.x A or AA rules, with every table open. On failure a screenshot of the
page is saved under test-artifacts/.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.accessibility import axe_violations
from tests.chromium import ARTIFACTS
from tests.test_dashboard import _frozen_now, people, rows  # noqa: F401 - fixtures

# Every page shows the known rows of tests/test_dashboard.py.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("rows"),
]

URL = "/admin/hyperid_mfa/mfarequest/dashboard/"

# The colours of a "sent" bar and of the axis' text in each theme (dashboard.css and
# the admin's own variables).
SENT = {"light": "rgb(65, 118, 144)", "dark": "rgb(121, 174, 200)"}
QUIET_TEXT = {"light": "rgb(102, 102, 102)", "dark": "rgb(208, 208, 208)"}


@pytest.fixture(scope="module")
def live_server(threaded_live_server) -> Any:
    return threaded_live_server


@pytest.fixture
def session(django_user_model) -> str:
    staff = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")
    client = Client()
    client.force_login(staff)
    return client.cookies["sessionid"].value


@pytest.fixture
def open_page(chromium, live_server, session, request) -> Any:
    contexts: list[Any] = []

    def open_(*, color_scheme: str = "light", javascript: bool = True, theme: str | None = None):
        context = chromium.new_context(
            color_scheme=color_scheme,
            java_script_enabled=javascript,
            viewport={"width": 1200, "height": 900},
        )
        contexts.append(context)
        context.set_default_timeout(15_000)
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        if theme is not None:
            # The admin's theme toggle keeps its choice in localStorage.
            context.add_init_script(f"localStorage.setItem('theme', {json.dumps(theme)})")
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(live_server.url + URL)
        page.requested = requested
        return page

    yield open_
    report = getattr(request.node, "rep_call", None)
    for number, context in enumerate(contexts):
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            for page in context.pages:
                page.screenshot(
                    path=str(ARTIFACTS / f"{request.node.name}-{number}.png"), full_page=True
                )
        context.close()


def colours(page: Any) -> tuple[str, str]:
    return tuple(
        page.evaluate(
            """() => [
            getComputedStyle(document.querySelector('#hm-pushes g[data-series=sent] rect')).fill,
            getComputedStyle(document.querySelector('#hm-pushes text')).fill,
        ]"""
        )
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_wcag_a_or_aa_violation_in_either_theme(open_page, axe_source, scheme):
    page = open_page(color_scheme=scheme)

    assert page.locator("#hm-pushes rect").count() > 0
    assert colours(page) == (SENT[scheme], QUIET_TEXT[scheme])
    assert axe_violations(page, axe_source) == []


def test_the_theme_chosen_in_the_admin_wins_over_the_systems(open_page, axe_source):
    page = open_page(color_scheme="light", theme="dark")

    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert colours(page) == (SENT["dark"], QUIET_TEXT["dark"])
    assert axe_violations(page, axe_source) == []


def test_the_charts_need_no_script_and_nothing_from_elsewhere(open_page, live_server):
    page = open_page(javascript=False)

    box = page.locator("#hm-pushes").bounding_box()
    assert box is not None
    assert box["height"] > 100
    assert page.locator("#hm-pushes g[data-series=sent] rect").count() == 3
    assert page.requested
    assert all(url.startswith(live_server.url) for url in page.requested), page.requested


def test_axe_reports_a_violation_it_is_shown(open_page, axe_source):
    """The check above can fail: an image without a text alternative is reported."""
    page = open_page()
    page.evaluate(
        "document.querySelector('#content-main').append(Object.assign("
        "document.createElement('img'), {src: '/static/admin/img/icon-yes.svg'}))"
    )

    assert [v["id"] for v in axe_violations(page, axe_source)] == ["image-alt"]
