"""pytest fixtures for projects that use the app: ``hyperid_fake`` and ``hyperid_user``.

pytest loads this module by itself wherever the package is installed (the
``pytest11`` entry point ``hyperid_mfa``); ``-p no:hyperid_mfa`` turns it off. The
fixtures build on pytest-django's ``settings``, ``django_user_model`` and ``db``, and
``hyperid_fake`` intercepts HTTP with ``responses``: both come with the ``testing``
extra (``pip install "django-hyperid-mfa[testing]"``).

Every pytest run of an environment with the app installed imports this module,
before Django is configured: it stays outside ``hyperid_mfa.testing`` and imports
nothing of the app at the top, so that it costs nothing until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hyperid_mfa.testing import FakeHyperID

#: The HyperID account (``sub``) of ``hyperid_user``.
HYPERID_USER_SUBJECT = "hyperid-user"


@pytest.fixture
def hyperid_fake(settings: Any) -> Iterator[FakeHyperID]:
    """An in-memory HyperID that answers every call the app makes during the test.

    ``settings.HYPERID_MFA`` points at it for the test (the project's other entries
    stay), and ``requests`` calls to its URLs are answered in-process: nothing goes
    out. Play the phone with ``hyperid_fake.pending()`` and ``approve``/``deny``.
    """
    from hyperid_mfa.testing import FakeHyperID

    fake = FakeHyperID()
    settings.HYPERID_MFA = {**getattr(settings, "HYPERID_MFA", {}), **fake.settings()}
    with fake.mock():
        yield fake


@pytest.fixture
def hyperid_user(db: None, django_user_model: Any, hyperid_fake: FakeHyperID) -> Any:
    """A user who signed in with HyperID: tokens stored, an authenticator on the phone.

    Their HyperID account is ``hyperid_user.hyperid_subject``; their push limit
    starts empty, whatever earlier tests sent.
    """
    from hyperid_mfa.services import ratelimit
    from hyperid_mfa.tokens.store import store_tokens

    username_field = django_user_model.USERNAME_FIELD
    username = "hyperid-user@example.com" if username_field == "email" else "hyperid-user"
    user = django_user_model._default_manager.create_user(
        **{username_field: username}, password=None
    )
    subject = hyperid_fake.add_user(HYPERID_USER_SUBJECT)
    tokens = hyperid_fake.issue_tokens(subject)
    store_tokens(user, tokens.access_token, tokens.refresh_token, expires_in=int(tokens.expires_in))
    ratelimit.reset(user.pk)
    user.hyperid_subject = subject
    return user
