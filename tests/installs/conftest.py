"""The install tests: the built wheel, installed alone with one extra (or none) in a
fresh virtualenv, used the way the README and docs/ say.

``.ci/installs.py`` builds the wheel once and, for each path, makes a virtualenv with
``pip install "<wheel>[extra]"`` plus the test runner (pytest, pytest-django, and
Playwright where a browser signs in), then runs ``test_<path>.py`` of this folder with
``DJANGO_SETTINGS_MODULE=settings_<path>``. Only this folder is on ``sys.path``, never
the repository: every test first checks that ``hyperid_mfa`` is the installed copy.

The ``testing`` path is ``.ci/first_hour.py`` (the README's project and its tests, run
with the plugin's fixtures); the demo has its own CI step (``.ci/run demo``).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
CHROMIUM = "/usr/bin/chromium"
#: The simulator's client: the one the settings of every path name.
CLIENT_ID, CLIENT_SECRET = "bank", "bank-secret"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test anything but the wheel installed in this virtualenv."""
    import hyperid_mfa

    installed = Path(sysconfig.get_paths()["purelib"]).resolve()
    imported = Path(hyperid_mfa.__file__ or "").resolve()
    problems = []
    if sys.prefix == sys.base_prefix:
        problems.append(f"not in a virtualenv: {sys.prefix}")
    if not imported.is_relative_to(installed):
        problems.append(f"hyperid_mfa is imported from {imported}, not from {installed}")
    if any(Path(entry or ".").resolve() == REPOSITORY for entry in sys.path):
        problems.append(f"the repository {REPOSITORY} is on sys.path")
    if problems:
        pytest.exit("install tests: " + "; ".join(problems), returncode=3)


@pytest.fixture
def simulator(settings: Any) -> Iterator[Any]:
    """The HyperID simulator over HTTP (what ``manage.py hyperid_mfa_simulator`` serves:
    the MFA API, the OpenID provider and the phones' pages), with ``HYPERID_MFA``
    pointed at it. The phones' pages are below its ``base_url``."""
    from hyperid_mfa.testing import Authenticator, FakeHyperID

    fake = FakeHyperID(base_url=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with fake.serve(handler=Authenticator(fake).handle):
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, **fake.settings()}
        yield fake


@pytest.fixture
def alice(django_user_model: Any, simulator: Any) -> Any:
    """A user who signed in with HyperID as ``alice``: her tokens are stored."""
    from hyperid_mfa.tokens import store_tokens

    user = django_user_model.objects.create_user("alice", is_staff=True, is_superuser=True)
    tokens = simulator.issue_tokens("alice")
    store_tokens(user, tokens.access_token, tokens.refresh_token, expires_in=3600)
    return user


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium, through Playwright (never Playwright's own download)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls between
    # browser steps are plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()
