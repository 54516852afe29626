"""Shared fixtures: users, a FakeHyperID wired into the settings, service availability."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.cache import cache

from hyperid_mfa.client import HyperIDClient

REQUIRE_SERVICES = os.environ.get("HYPERID_MFA_REQUIRE_SERVICES") == "1"
#: What makemessages and compilemessages run (tests marked ``gettext``).
GETTEXT_TOOLS = ("xgettext", "msgmerge", "msgfmt")


def _skip_or_fail(reason: str) -> None:
    """Skip a test whose service is absent; fail instead where CI requires the service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (HYPERID_MFA_REQUIRE_SERVICES=1 requires it)")
    pytest.skip(reason)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    from django.db import connection

    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _skip_or_fail(
            "needs PostgreSQL: set HYPERID_MFA_TEST_DATABASE=postgresql://user@host:port/db"
        )
    if item.get_closest_marker("redis") and not _reachable("127.0.0.1", 6379):
        _skip_or_fail("needs Redis on 127.0.0.1:6379")
    if item.get_closest_marker("browser"):
        from tests.chromium import CHROMIUM

        if not os.path.exists(CHROMIUM):
            _skip_or_fail("needs Chromium at /usr/bin/chromium (apt-get install chromium)")
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            _skip_or_fail("needs Playwright (pip install playwright)")
    if item.get_closest_marker("gettext"):
        missing = [tool for tool in GETTEXT_TOOLS if shutil.which(tool) is None]
        if missing:
            _skip_or_fail(
                f"needs GNU gettext: no {', '.join(missing)} on PATH (apt-get install gettext)"
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report on the item, so fixtures can see whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _no_retry_waits(monkeypatch):
    """Retries back off instantly in tests; the waits asked for are recorded."""
    waits: list[float] = []
    monkeypatch.setattr(HyperIDClient, "sleep", lambda self, seconds: waits.append(seconds))
    return waits


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "pw")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", "pw")


@pytest.fixture
def fake_hyperid(settings):
    """A FakeHyperID that answers every call of the app's HTTP client (via responses)."""
    from hyperid_mfa.testing import FakeHyperID

    fake = FakeHyperID(base_url="https://api.hyperid.test")
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, **fake.settings()}
    with fake.mock():
        yield fake


def link(fake, user, **kwargs):
    """Give ``user`` a HyperID account in ``fake`` and store its tokens, as sign-in would."""
    from hyperid_mfa.tokens import store_tokens

    subject = fake.add_user(f"subject-{user.pk}", has_device=kwargs.pop("has_device", True))
    pair = fake.issue_tokens(subject, **kwargs)
    store_tokens(user, pair.access_token, pair.refresh_token, expires_in=int(pair.expires_in))
    return subject


def eventually(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait until ``condition()`` holds, for what ends in another thread or process."""
    give_up = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"still not so after {seconds:g} s")
        time.sleep(0.02)


def approve_pending(fake):
    """The user's phone approves every pending push."""
    for push in fake.pending():
        fake.approve(push.transaction_id)


@pytest.fixture
def browser(hyperid_user):
    """A signed-in browser session of the HyperID user."""
    from django.test import Client

    client = Client()
    client.force_login(hyperid_user)
    return client


@pytest.fixture
def hyperid_user(fake_hyperid, user):
    """``user``, signed in to HyperID: tokens stored, authenticator device present."""
    user.hyperid_subject = link(fake_hyperid, user)
    return user


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium (Debian's), one per test module."""
    from tests.chromium import launch

    playwright_sync = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes between browser steps are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_sync.sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server, hyperid_user, request, settings):
    """A Chromium page signed in as ``hyperid_user`` on the live server, polling fast;
    a screenshot of it under test-artifacts/ when the test fails."""
    from django.test import Client

    from tests.chromium import ARTIFACTS

    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "POLL_INTERVAL": 1, "MIN_REFRESH_INTERVAL": 0}
    client = Client()
    client.force_login(hyperid_user)
    context = chromium.new_context()
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def race(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, all released at the same moment, each with its
    own database connection as separate processes would have; return each result, or
    the exception it raised."""
    from django.db import connection

    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait(timeout=10)
            return call()
        except Exception as err:
            return err
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result() for f in [pool.submit(run, call) for call in calls]]
