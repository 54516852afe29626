"""Signing in with HyperID (a served FakeHyperID) through allauth or mozilla-django-oidc.

For tests/test_sign_in.py and tests/test_sign_in_browser.py. Without a browser, a
sign-in is driven one hop at a time, so a test can bend any hop: the site with
Django's test client, the fake's sign-in page with ``requests`` (the user's browser
at HyperID, with its own cookies)::

    authorize = start(site, "allauth")  # the site sends the user to HyperID
    page = open_page(http, authorize)  # HyperID's sign-in page
    back = submit(http, page, "alice")  # the user signs in; HyperID sends them back
    finish(site, callback_url(back))  # the site's callback

The site answers at http://127.0.0.1 (see :func:`site_client`): a loopback redirect
URI, which the fake accepts unless told otherwise, as a developer's machine would.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client

from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.testing import FakeHyperID
from hyperid_mfa.tokens.store import decrypt
from tests import docs_examples

NEEDS_ALLAUTH = pytest.mark.skipif(
    not django_settings.HAVE_ALLAUTH, reason="needs the [allauth] extra"
)
NEEDS_MOZILLA = pytest.mark.skipif(
    not django_settings.HAVE_MOZILLA_OIDC, reason="needs the [oidc] extra"
)
#: Parameters of tests that sign in with each library (skipped where it is not installed).
ALLAUTH = pytest.param("allauth", marks=NEEDS_ALLAUTH)
MOZILLA = pytest.param("mozilla", marks=NEEDS_MOZILLA)
BOTH = [ALLAUTH, MOZILLA]

#: Where each library's sign-in with HyperID starts.
LOGIN = {"allauth": "/accounts/oidc/hyperid/login/", "mozilla": "/oidc/authenticate/"}

#: Where each library's sign-in comes back to.
CALLBACK = {"allauth": "/accounts/oidc/hyperid/login/callback/", "mozilla": "/oidc/callback/"}

#: Where mozilla-django-oidc sends a sign-in it refuses without raising.
MOZILLA_FAILURE_URL = "/sign-in-failed/"

#: The host the test client's site answers at: loopback, like a developer's machine.
SITE_HOST = "127.0.0.1"

#: The scope each library asks for unless a test says otherwise.
SCOPE = ("openid", "email", "mfa-client")


TIMEOUT = 10


def new_fake() -> FakeHyperID:
    """A fake whose one client is the test settings' ("tests"/"tests-secret"), unserved."""
    return FakeHyperID(base_url=None, client_id="tests", client_secret="tests-secret")


#: What the README's sign-in settings name, and what stands in for it in these tests.
README_ISSUER = "https://login.hypersecureid.com/auth/realms/HyperID"
README_CLIENT_ID = "your-hyperid-client-id"


def readme_settings(library: str, fake: FakeHyperID) -> dict[str, Any]:
    """The settings of the README's "Sign in with HyperID" block for ``library``, as a
    project that copied it has them, pointed at ``fake``: its issuer and its client
    in place of HyperID's and the README's placeholders."""
    marker = {"allauth": "SOCIALACCOUNT_PROVIDERS", "mozilla": "OIDC_RP_CLIENT_ID"}[library]
    [block] = [
        example
        for example in docs_examples.examples()
        if example.document.name == "README.md"
        and example.how == "settings"
        and marker in example.source
    ]
    source = block.code().replace(README_ISSUER, fake.issuer)
    source = source.replace(f'"{README_CLIENT_ID}"', repr(fake.client_id))
    source = source.replace('os.environ["HYPERID_CLIENT_SECRET"]', repr(fake.client_secret))
    names = {
        name: copy.deepcopy(getattr(django_settings, name))
        for name in ("INSTALLED_APPS", "MIDDLEWARE", "HYPERID_MFA")
    }
    namespace = dict(names)
    exec(compile(source, block.where, "exec"), namespace)  # noqa: S102 - the README's own
    return {name: value for name, value in namespace.items() if name.isupper()}


def configure(
    settings: Any, fake: FakeHyperID, library: str, *, scope: tuple[str, ...] = SCOPE
) -> None:
    """Point the gate at the served ``fake``, and sign in with ``library`` configured
    as the README says (tests check that what they need is what it says).

    ``settings`` is pytest-django's fixture: everything is undone after the test.
    """
    wanted = readme_settings(library, fake)
    # The test settings install every app and middleware the README adds (changing
    # INSTALLED_APPS here would rebuild the app registry for each test).
    for name in ("INSTALLED_APPS", "MIDDLEWARE"):
        missing = set(wanted.pop(name)) - set(getattr(settings, name))
        assert not missing, f"the README's {name} needs {missing}: add them to tests/settings.py"
    hyperid_mfa = {**settings.HYPERID_MFA, **wanted.pop("HYPERID_MFA"), **fake.settings()}
    for name, value in wanted.items():
        setattr(settings, name, value)
    settings.HYPERID_MFA = hyperid_mfa
    if library == "allauth":
        [app] = settings.SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"]
        assert app["settings"]["scope"] == list(SCOPE)
        app["settings"]["scope"] = list(scope)
    else:
        assert " ".join(SCOPE) == settings.OIDC_RP_SCOPES
        settings.OIDC_RP_SCOPES = " ".join(scope)
        settings.LOGIN_REDIRECT_URL_FAILURE = MOZILLA_FAILURE_URL


def site_client() -> Client:
    """A browser at the site (Django's test client) that reaches it at a loopback host."""
    return Client(HTTP_HOST=SITE_HOST)


def hyperid_browser() -> requests.Session:
    """The same user's browser at HyperID: the fake's sign-in pages, with their cookies."""
    return requests.Session()


# ------------------------------------------------------------------------------ the hops


def start(site: Client, library: str, **query: str) -> str:
    """Begin a sign-in at the site; the URL of HyperID's authorization endpoint it sends to."""
    return start_at(site, LOGIN[library] + (f"?{urlencode(query)}" if query else ""))


def start_at(site: Client, path: str) -> str:
    """Begin a sign-in at the site's ``path`` (a login URL with its query string)."""
    response = site.get(path)
    assert response.status_code == 302, (response.status_code, response.content[:500])
    location: str = response["Location"]
    return location


def open_page(http: requests.Session, authorize_url: str) -> requests.Response:
    """What HyperID shows at ``authorize_url`` (its sign-in page, or an error page)."""
    response: requests.Response = http.get(authorize_url, allow_redirects=False, timeout=TIMEOUT)
    return response


def submit(http: requests.Session, page: requests.Response, subject: str) -> requests.Response:
    """Sign in on HyperID's page as ``subject``; HyperID's response (a redirect to the site)."""
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None, page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None, page.text
    url = urlunsplit((*urlsplit(page.url)[:2], action.group(1), "", ""))
    response: requests.Response = http.post(
        url,
        data={"csrf_token": match.group(1), "subject": subject},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    return response


def callback_url(back: requests.Response) -> str:
    """Where HyperID sends the browser back to (its ``Location``), checked to be a redirect."""
    assert back.status_code in (302, 303), (back.status_code, back.text[:500])
    location: str = back.headers["Location"]
    return location


def finish(site: Client, url: str) -> Any:
    """Call the site's callback at ``url`` (absolute, as HyperID redirects to it)."""
    parts = urlsplit(url)
    assert parts.hostname == SITE_HOST, url
    return site.get(parts.path + (f"?{parts.query}" if parts.query else ""))


def sign_in(site: Client, library: str, subject: str, **query: str) -> Any:
    """A whole sign-in as ``subject``, nothing bent; the site's answer to its callback."""
    http = hyperid_browser()
    back = submit(http, open_page(http, start(site, library, **query)), subject)
    return finish(site, callback_url(back))


# ------------------------------------------------------------------------------ URLs


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str) -> str:
    """``url`` with some of its query parameters replaced."""
    parts = urlsplit(url)
    query = {**query_of(url), **changes}
    return urlunsplit((*parts[:3], urlencode(query), parts.fragment))


# ------------------------------------------------------------------------------ outcomes


def signed_in_user(site: Client) -> Any:
    """The user the site's session is signed in as, or None."""
    user_id = site.session.get(SESSION_KEY)
    if user_id is None:
        return None
    return get_user_model().objects.get(pk=user_id)


def stored_subject(fake: FakeHyperID, user: Any) -> str | None:
    """The HyperID account whose access token is stored for ``user``, or None if none is."""
    row = HyperIDToken.objects.filter(user=user).first()
    if row is None:
        return None
    return fake.subject_of(decrypt(row.access_token_encrypted))
