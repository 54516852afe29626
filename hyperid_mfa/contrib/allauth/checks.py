"""System checks of the allauth sign-in: the HyperID app exists, asks for
``mfa-client``, does not sign in by email, and (``check --deploy``) is HyperID's, and
its error reports hide the sign-in's tokens."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.utils.module_loading import import_string

from ...checks.deployment import simulator_error
from ...constants import MFA_SCOPE, PRODUCTION_ISSUER
from ...sensitive import SignInExceptionReporterFilter
from .receivers import PROVIDER_ID

W013 = "hyperid_mfa.W013"  # the HyperID app's scope lacks mfa-client
W014 = "hyperid_mfa.W014"  # no HyperID app in SOCIALACCOUNT_PROVIDERS
W029 = "hyperid_mfa.W029"  # error reports of a sign-in may show its tokens (deploy)
W030 = "hyperid_mfa.W030"  # the HyperID app signs users in by email address

#: Where to name the filter that hides a sign-in's variables in error reports.
FILTER_PATH = "hyperid_mfa.sensitive.SignInExceptionReporterFilter"

#: allauth's own default scope for OpenID Connect apps.
ALLAUTH_DEFAULT_SCOPE = ("openid", "profile", "email")


def _provider() -> dict[str, Any]:
    provider: dict[str, Any] = getattr(settings, "SOCIALACCOUNT_PROVIDERS", {}).get(
        "openid_connect", {}
    )
    return provider


def hyperid_apps() -> list[dict[str, Any]]:
    """The HyperID apps of SOCIALACCOUNT_PROVIDERS (not those in the database)."""
    return [app for app in _provider().get("APPS", []) if app.get("provider_id") == PROVIDER_ID]


def check_hyperid_app(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    provider = _provider()
    apps = hyperid_apps()
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


def check_email_authentication(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W030: the HyperID app signs a user in to the local account that holds the
    email address HyperID reports (allauth's email authentication)."""
    messages: list[CheckMessage] = []
    for app in hyperid_apps():
        own = (app.get("settings") or {}).get("email_authentication")
        on = own if own is not None else _email_authentication_default()
        if on:
            messages.append(
                Warning(
                    "allauth signs HyperID users in by email address "
                    "(SOCIALACCOUNT_EMAIL_AUTHENTICATION or the HyperID app's "
                    "'email_authentication'): whoever registered a user's address on this "
                    "site first, unverified, shares the account that receives the user's "
                    "HyperID sign-in and its tokens (pre-account hijacking).",
                    hint="Leave email authentication off (allauth's default): allauth then "
                    "finds the user of a sign-in by the HyperID account's subject. Turn it "
                    "on only where every local address is verified.",
                    id=W030,
                )
            )
    return messages


def _email_authentication_default() -> bool:
    provider_setting = _provider().get("EMAIL_AUTHENTICATION")
    if provider_setting is not None:
        return bool(provider_setting)
    return bool(getattr(settings, "SOCIALACCOUNT_EMAIL_AUTHENTICATION", False))


def check_server_url(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E028 (``check --deploy``, outside ``DEBUG``): the HyperID app's ``server_url``
    is on this machine or plain ``http://``: the simulator's, not HyperID's."""
    messages: list[CheckMessage] = []
    for app in hyperid_apps():
        url = (app.get("settings") or {}).get("server_url")
        if isinstance(url, str):
            messages += simulator_error(
                "The allauth HyperID app's server_url",
                url,
                hint=f"Set it to HyperID's issuer, {PRODUCTION_ISSUER!r}.",
            )
    return messages


def check_reporter_filter(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W029 (``check --deploy``): error reports of an allauth sign-in may show its
    tokens, which allauth's callback holds in clear before the app sees the sign-in."""
    try:
        project_filter = import_string(settings.DEFAULT_EXCEPTION_REPORTER_FILTER)
    except ImportError:
        return []  # every error report fails: Django's own problem to show
    if isinstance(project_filter, type) and issubclass(
        project_filter, SignInExceptionReporterFilter
    ):
        return []
    return [
        Warning(
            "DEFAULT_EXCEPTION_REPORTER_FILTER does not hide the variables of a sign-in: "
            "an error in allauth's callback before the app sees the sign-in is reported "
            "(the ADMINS' mail, the DEBUG page) with the HyperID access, refresh and ID "
            "tokens allauth holds in clear.",
            hint=f"Set DEFAULT_EXCEPTION_REPORTER_FILTER = {FILTER_PATH!r}, or make your "
            "own filter a subclass of it.",
            id=W029,
        )
    ]
