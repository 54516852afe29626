"""Where allauth hands over a HyperID sign-in: its signals, connected in ``ready()``.

allauth checks the ID token's signature (when it did not fetch it itself), ``iss``,
``aud`` and ``exp``; :func:`on_pre_social_login` refuses what it leaves: an ID token
authorised for another client (``azp``) or also meant for other audiences, and
userinfo about another subject than the ID token's.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from ...sensitive import protect_sign_in
from ...tokens.store import store_sign_in_tokens

logger = logging.getLogger("hyperid_mfa")

#: The ``provider_id`` of the HyperID app in allauth's generic OpenID Connect provider.
PROVIDER_ID = "hyperid"


def is_hyperid(sociallogin: Any) -> bool:
    return getattr(getattr(sociallogin, "account", None), "provider", None) == PROVIDER_ID


# Every variable is hidden from error reports, here and in the frames these call:
# sociallogin.token prints as the access token itself.
@sensitive_variables()
def store_from(sociallogin: Any) -> bool:
    """Store the tokens of a HyperID ``sociallogin`` on its own user; whether it did.

    On ``sociallogin.user``, never on whoever was signed in before in that browser:
    allauth switches the session to the user of the social account.
    """
    token = getattr(sociallogin, "token", None)
    user = getattr(sociallogin, "user", None)
    if not is_hyperid(sociallogin) or token is None:
        return False
    if user is None or user.pk is None or not token.token:
        return False
    expires_in = None
    if token.expires_at is not None:
        expires_in = max(0, int((token.expires_at - timezone.now()).total_seconds()))
    return store_sign_in_tokens(
        user, token.token, token.token_secret or None, expires_in=expires_in
    )


def id_token_problem(sociallogin: Any) -> str | None:
    """What allauth does not check and makes a HyperID sign-in unfit (OpenID Connect
    Core, sections 3.1.3.7 and 5.3.2), or None."""
    data = getattr(sociallogin.account, "extra_data", None) or {}
    claims, userinfo = data.get("id_token"), data.get("userinfo")
    if not isinstance(claims, dict):
        return None  # no ID token: allauth took the user from userinfo alone
    client_id = getattr(getattr(sociallogin.provider, "app", None), "client_id", None)
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if isinstance(audiences, list) and any(other != client_id for other in audiences):
        return "the ID token is also for other audiences"
    if "azp" in claims and claims["azp"] != client_id:
        return "the ID token is authorised for another client (azp)"
    if isinstance(userinfo, dict) and userinfo.get("sub") != claims.get("sub"):
        return "userinfo names another subject than the ID token"
    return None


@sensitive_variables()
def on_pre_social_login(
    sender: Any, request: Any = None, sociallogin: Any = None, **kwargs: Any
) -> None:
    if sociallogin is None or not is_hyperid(sociallogin):
        return
    if request is not None:
        protect_sign_in(request)
    problem = id_token_problem(sociallogin)
    if problem is None:
        return
    from allauth.core.exceptions import ImmediateHttpResponse
    from allauth.socialaccount.helpers import render_authentication_error

    logger.warning("Refused a HyperID sign-in: %s", problem)
    raise ImmediateHttpResponse(
        render_authentication_error(
            request, sociallogin.provider, exception=PermissionError(problem)
        )
    )


@sensitive_variables()
def on_logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    # A new account and a returning user both end in a login carrying the sociallogin.
    sociallogin = kwargs.get("sociallogin")
    if sociallogin is not None:
        if request is not None and is_hyperid(sociallogin):
            protect_sign_in(request)
        store_from(sociallogin)


@sensitive_variables()
def on_account_added(
    sender: Any, request: Any = None, sociallogin: Any = None, **kwargs: Any
) -> None:
    # A signed-in user connected their HyperID account: no login follows.
    if sociallogin is not None:
        if request is not None and is_hyperid(sociallogin):
            protect_sign_in(request)
        store_from(sociallogin)


def connect() -> None:
    from allauth.account.signals import user_logged_in
    from allauth.socialaccount.signals import pre_social_login, social_account_added

    pre_social_login.connect(on_pre_social_login, dispatch_uid="hyperid_mfa.allauth.pre_login")
    user_logged_in.connect(on_logged_in, dispatch_uid="hyperid_mfa.allauth.logged_in")
    social_account_added.connect(on_account_added, dispatch_uid="hyperid_mfa.allauth.added")
