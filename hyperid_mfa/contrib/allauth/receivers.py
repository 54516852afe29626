"""Where allauth hands over a HyperID sign-in: its signals, connected in ``ready()``."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from ...tokens import store_sign_in_tokens

logger = logging.getLogger("hyperid_mfa")

#: The ``provider_id`` of the HyperID app in allauth's generic OpenID Connect provider.
PROVIDER_ID = "hyperid"


def store_from(sociallogin: Any) -> bool:
    """Store the tokens of a HyperID ``sociallogin`` on its own user; whether it did.

    On ``sociallogin.user``, never on whoever was signed in before in that browser:
    allauth switches the session to the user of the social account.
    """
    account = getattr(sociallogin, "account", None)
    token = getattr(sociallogin, "token", None)
    user = getattr(sociallogin, "user", None)
    if getattr(account, "provider", None) != PROVIDER_ID or token is None:
        return False
    if user is None or user.pk is None or not token.token:
        return False
    expires_in = None
    if token.expires_at is not None:
        expires_in = max(0, int((token.expires_at - timezone.now()).total_seconds()))
    return store_sign_in_tokens(
        user, token.token, token.token_secret or None, expires_in=expires_in
    )


def on_logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    # A new account and a returning user both end in a login carrying the sociallogin.
    sociallogin = kwargs.get("sociallogin")
    if sociallogin is not None:
        store_from(sociallogin)


def on_account_added(
    sender: Any, request: Any = None, sociallogin: Any = None, **kwargs: Any
) -> None:
    # A signed-in user connected their HyperID account: no login follows.
    if sociallogin is not None:
        store_from(sociallogin)


def connect() -> None:
    from allauth.account.signals import user_logged_in
    from allauth.socialaccount.signals import social_account_added

    user_logged_in.connect(on_logged_in, dispatch_uid="hyperid_mfa.allauth.logged_in")
    social_account_added.connect(on_account_added, dispatch_uid="hyperid_mfa.allauth.added")
