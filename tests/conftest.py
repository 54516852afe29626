"""Shared fixtures: users, a FakeHyperID wired into the settings, service availability."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.cache import cache

from hyperid_mfa.client.calls import HyperIDClient

REQUIRE_SERVICES = os.environ.get("HYPERID_MFA_REQUIRE_SERVICES") == "1"
#: What makemessages and compilemessages run (tests marked ``gettext``).
GETTEXT_TOOLS = ("xgettext", "msgmerge", "msgfmt")


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service or tool is absent; fail instead where CI requires it
    (HYPERID_MFA_REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (HYPERID_MFA_REQUIRE_SERVICES=1 requires it)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def import_or_skip(name: str) -> Any:
    """``pytest.importorskip`` for the development dependencies (``.[dev]``): where CI
    requires every service, a missing one fails the run instead of skipping silently."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        skip_or_fail(f"needs {name} (pip install -e '.[dev]'): {err}")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    from django.db import connection

    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        skip_or_fail(
            "needs PostgreSQL: set HYPERID_MFA_TEST_DATABASE=postgresql://user@host:port/db"
        )
    if item.get_closest_marker("redis") and not _reachable("127.0.0.1", 6379):
        skip_or_fail("needs Redis on 127.0.0.1:6379")
    if item.get_closest_marker("memcached"):
        host, _, port = os.environ.get("HYPERID_MFA_TEST_MEMCACHED", "127.0.0.1:11211").partition(
            ":"
        )
        if not _reachable(host, int(port or 11211)):
            skip_or_fail(f"needs Memcached on {host}:{port} (apt-get install memcached)")
    if item.get_closest_marker("browser"):
        from tests.chromium import CHROMIUM

        if not os.path.exists(CHROMIUM):
            skip_or_fail("needs Chromium at /usr/bin/chromium (apt-get install chromium)")
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            skip_or_fail("needs Playwright (pip install playwright)")
    if item.get_closest_marker("gettext"):
        missing = [tool for tool in GETTEXT_TOOLS if shutil.which(tool) is None]
        if missing:
            skip_or_fail(
                f"needs GNU gettext: no {', '.join(missing)} on PATH (apt-get install gettext)"
            )


#: Set by scripts/mutate: a migrated SQLite test database to copy for each mutant.
MUTATION_DATABASE = os.environ.get("HYPERID_MFA_MUTATE_DB")


def _under_mutation() -> bool:
    return "MUTANT_UNDER_TEST" in os.environ


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Under mutation testing (scripts/mutate), a test database per process.

    mutmut forks its workers from one process whose settings already name a test
    database; workers running side by side would create and drop the same one, and
    every mutant would look killed. Each worker gets its own: a copy of the migrated
    database scripts/mutate made once (migrating for every mutant took longer than
    most mutants' tests), or else a name of its own, as xdist's workers get.
    """
    if not _under_mutation():
        yield
        return
    from django.conf import settings

    test = settings.DATABASES["default"].setdefault("TEST", {})
    if MUTATION_DATABASE and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        copy = os.path.join(tempfile.gettempdir(), f"hyperid-mfa-mutant-{os.getpid()}.sqlite3")
        shutil.copyfile(MUTATION_DATABASE, copy)
        test["NAME"] = copy
        yield
        with contextlib.suppress(FileNotFoundError):
            os.remove(copy)
        return
    from pytest_django.fixtures import _set_suffix_to_test_databases

    _set_suffix_to_test_databases(f"mutant{os.getpid()}")
    yield


@pytest.fixture(scope="session")
def django_db_keepdb(request):
    """Keep (and so reuse) the copy of the migrated database under mutation testing."""
    return bool(request.config.getvalue("reuse_db")) or bool(
        _under_mutation() and MUTATION_DATABASE
    )


@pytest.fixture(autouse=True)
def _urlconf_built_per_test_under_mutation():
    """Under mutation testing, each test builds the URLconf afresh: what runs once per
    process when it is built (the admin's get_urls) then runs in each mutant's tests,
    not only in the process mutmut forked them from."""
    if _under_mutation():
        import sys

        from django.conf import settings
        from django.urls import clear_url_caches

        sys.modules.pop(settings.ROOT_URLCONF, None)
        clear_url_caches()


@pytest.fixture(autouse=True)
def _consume_compiled_per_test():
    """Each test compiles the consumption afresh (it is compiled once per process and
    database): no test relies on another having compiled it, and mutation testing
    sees every test that reaches the compiling code."""
    from hyperid_mfa.services import consuming

    consuming._statements.clear()


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
    from hyperid_mfa.tokens.store import store_tokens

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

    playwright_sync = import_or_skip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes between browser steps are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_sync.sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def threaded_live_server(django_db_setup):
    """A live server for one module whose threads each have their own database
    connection, as in production (see tests/test_admin_browser.py for why the
    session's live server will not do for pages that load many static files).
    A module uses it as its ``live_server``."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("localhost")
    yield server
    server.stop()


@pytest.fixture
def axe_source() -> str:
    """axe-core's source, for tests/accessibility.py (``npm ci`` installs it)."""
    from tests.accessibility import read_axe

    return read_axe()


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
    own database connection as separate processes would have; return each result.

    A call that raises fails the race: once every thread has finished, the first
    exception is raised again (the others are named in its notes), so no thread can
    crash unseen. A call whose failure is an outcome to count catches it itself.
    """
    from django.db import connection

    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait(timeout=10)
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        first = errors[0]
        if len(errors) > 1 and hasattr(first, "add_note"):  # Python 3.11+
            first.add_note(
                f"{len(errors)} of {len(calls)} threads raised: "
                + "; ".join(repr(err) for err in errors)
            )
        raise first
    return [f.result() for f in futures]
