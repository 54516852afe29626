"""An in-memory HyperID for tests and demos: ``FakeHyperID``.

It issues tokens, runs MFA transactions, answers every result code of the four MFA
calls and the OIDC token endpoint, signs users in as an OpenID provider, expires things
by its own clock, and misbehaves on request. It needs no Django: only the standard
library, ``requests``, ``cryptography`` (ID tokens are RS256) and, for
:meth:`FakeHyperID.mock`, ``responses``.

In a unit test (``requests`` intercepted in-process)::

    from hyperid_mfa.testing import FakeHyperID


    def test_withdraw_runs_after_approval(client, settings, user):
        fake = FakeHyperID()
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, **fake.settings()}
        tokens = fake.issue_tokens("user-sub")  # store them as the user's HyperID tokens
        with fake.mock():
            client.post("/withdraw/", {"amount": 500})  # the app starts a push
            [push] = fake.pending("user-sub")
            fake.approve(push.transaction_id)  # what the user's phone does
            assert client.post("/withdraw/", {"amount": 500}).status_code == 200

Make it misbehave or age, then watch what the app sent::

    fake.inject("http_503", call="status-get", retry_after=5)  # the next status-get
    fake.inject("status", value=3, times=None)  # every status-get, until clear_faults()
    fake.advance(301)  # pending pushes expire; tokens age
    assert fake.call_count("start") == 1

Over real HTTP (demo, integration tests)::

    fake = FakeHyperID(base_url=None)  # no address yet
    with fake.serve() as server:  # base_url and issuer now point at server.url
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, **fake.settings()}

or ``python -m hyperid_mfa.testing.server --port 8765`` in a process of its own.

It is an OpenID provider too, at ``fake.issuer`` (HyperID's Keycloak paths; discovery
at ``fake.discovery_url``): django-allauth's ``openid_connect`` provider or
mozilla-django-oidc sign in against it unmodified, through a sign-in page that takes
any account name. Its client is ``fake.client_id``/``fake.client_secret``; loopback
redirect URIs work on any port, others are registered::

    fake = FakeHyperID(base_url=None, redirect_uris=["https://site.test/oidc/callback/"])
    fake.register_redirect_uri("https://site.test/accounts/hyperid/login/callback/")

ID tokens carry the fake's clock (``iat``, ``exp``, ``auth_time``), and relying parties
check them against the time of day: sign in through a library on a fake whose clock
is the real one (the default), not pinned or moved on with :meth:`FakeHyperID.advance`.
To expire a signed-in user's access token, use ``fake.expire_access_tokens(subject)``.
``Authenticator(fake).handle``, given to ``serve(handler=...)``, adds web pages that
play the user's phone (the demo's simulator, ``manage.py hyperid_mfa_simulator``).
"""

from __future__ import annotations

from .authenticator import Authenticator
from .calls import CALLS, RecordedCall
from .fake import FakeHyperID
from .faults import FAULTS
from .http_server import FakeHyperIDServer
from .responses import FakeResponse
from .tokens import TokenPair
from .transactions import FakeTransaction

__all__ = [
    "CALLS",
    "FAULTS",
    "Authenticator",
    "FakeHyperID",
    "FakeHyperIDServer",
    "FakeResponse",
    "FakeTransaction",
    "RecordedCall",
    "TokenPair",
]
