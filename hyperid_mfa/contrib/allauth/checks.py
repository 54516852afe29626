"""System checks of the allauth sign-in: the HyperID app exists and asks for ``mfa-client``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning

from ...constants import MFA_SCOPE
from .receivers import PROVIDER_ID

W013 = "hyperid_mfa.W013"  # the HyperID app's scope lacks mfa-client
W014 = "hyperid_mfa.W014"  # no HyperID app in SOCIALACCOUNT_PROVIDERS

#: allauth's own default scope for OpenID Connect apps.
ALLAUTH_DEFAULT_SCOPE = ("openid", "profile", "email")


def check_hyperid_app(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    provider = getattr(settings, "SOCIALACCOUNT_PROVIDERS", {}).get("openid_connect", {})
    apps = [app for app in provider.get("APPS", []) if app.get("provider_id") == PROVIDER_ID]
    if not apps:
        return [
            Warning(
                f"No allauth OpenID Connect app with provider_id {PROVIDER_ID!r} in "
                "SOCIALACCOUNT_PROVIDERS: HyperID sign-ins cannot store tokens for the gate "
                "(an app configured in the database is not checked).",
                hint="Add one to SOCIALACCOUNT_PROVIDERS['openid_connect']['APPS'] (see "
                "the README's 'Sign in with HyperID').",
                id=W014,
            )
        ]
    messages: list[CheckMessage] = []
    for app in apps:
        scope = (app.get("settings") or {}).get("scope")
        if scope is None:
            scope = provider.get("SCOPE", ALLAUTH_DEFAULT_SCOPE)
        if MFA_SCOPE not in scope:
            messages.append(
                Warning(
                    f"The allauth HyperID app asks for the scope {list(scope)!r}, without "
                    f"{MFA_SCOPE!r}: its tokens cannot send MFA pushes and are not stored.",
                    hint=f"Set its settings' 'scope' to ['openid', 'email', '{MFA_SCOPE}'].",
                    id=W013,
                )
            )
    return messages
