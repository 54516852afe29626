"""An in-memory HyperID for tests and demos: ``FakeHyperID``.

It issues tokens, runs MFA transactions, answers every result code of the four MFA
calls and the OIDC token endpoint, expires things by its own clock, and misbehaves on
request. It needs no Django: only the standard library, ``requests`` and, for
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
``Authenticator(fake).handle``, given to ``serve(handler=...)``, adds web pages that
play the user's phone (the demo's simulator, ``manage.py hyperid_mfa_simulator``).
"""

from __future__ import annotations

from .answers import FakeResponse
from .authenticator import Authenticator
from .calls import CALLS, RecordedCall
from .fake import FakeHyperID
from .faults import FAULTS
from .http_server import FakeHyperIDServer
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
