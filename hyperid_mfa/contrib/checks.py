"""System checks of the sign-in with HyperID, whichever library does it.

The gate sends pushes with the tokens the sign-in stored, and refreshes them with
``HYPERID_MFA``'s ``CLIENT_ID`` at ``ISSUER``'s token endpoint. These checks find the
set-ups in which that cannot work, at start-up rather than at a user's first click:

- ``hyperid_mfa.E025``: allauth signs users in with HyperID, but
  ``hyperid_mfa.contrib.allauth``, which stores their tokens, is not installed: every
  gated action would ask them to sign in again, and signing in again would not help;
- ``hyperid_mfa.E026``: the sign-in's client or issuer is not ``HYPERID_MFA``'s: the
  tokens it stores cannot be refreshed (a refresh token works only for the client and
  at the issuer that issued it);
- ``hyperid_mfa.E027``: a sign-in library is set up without what it verifies ID tokens
  with (PyJWT and cryptography), or ``HyperIDOIDCBackend`` is named without
  mozilla-django-oidc: the first sign-in would be a server error.

Registered by the app itself (``HyperIDMFAConfig.ready``), not by
``hyperid_mfa.contrib.allauth``, whose absence E025 is about. Neither library is
imported unless the project's settings use it. Listed in docs/checks.md.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

from ..checks.settings import DEFAULTS, SETTING_NAME, usable_values
from ..constants import TOKEN_ENDPOINT_PATH
from ..exceptions import MissingExtra

E025 = "hyperid_mfa.E025"  # an allauth HyperID app, without hyperid_mfa.contrib.allauth
E026 = "hyperid_mfa.E026"  # the sign-in's client or issuer is not HYPERID_MFA's
E027 = "hyperid_mfa.E027"  # a sign-in library without what verifies ID tokens

#: The ``provider_id`` the app looks for (as ``hyperid_mfa.contrib.allauth.receivers``).
PROVIDER_ID = "hyperid"
CONTRIB_ALLAUTH = "hyperid_mfa.contrib.allauth"
ALLAUTH_OIDC = "allauth.socialaccount.providers.openid_connect"
BACKEND = "hyperid_mfa.contrib.mozilla_oidc.HyperIDOIDCBackend"
#: The endpoints of mozilla-django-oidc's settings, all under HyperID's issuer.
MOZILLA_ENDPOINTS = (
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT",
)
#: What allauth appends to ``server_url`` unless it holds it already.
WELL_KNOWN = "/.well-known/"

_INSTALL = 'pip install "django-hyperid-mfa[{extra}]"'


def check_sign_in(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    values = usable_values()
    if values is None:  # HYPERID_MFA is not a dict: E001 says so
        return []
    messages: list[CheckMessage] = []
    if apps.is_installed(ALLAUTH_OIDC):
        messages += _allauth_messages(values)
    messages += _mozilla_messages(values)
    return messages


# --- django-allauth -----------------------------------------------------------------------


def hyperid_apps() -> list[dict[str, Any]]:
    """The apps of allauth's OpenID Connect provider with the id ``hyperid``, in settings."""
    providers = getattr(settings, "SOCIALACCOUNT_PROVIDERS", None)
    provider = providers.get("openid_connect") if isinstance(providers, dict) else None
    found = provider.get("APPS") if isinstance(provider, dict) else None
    if not isinstance(found, (list, tuple)):
        return []
    return [app for app in found if isinstance(app, dict) and app.get("provider_id") == PROVIDER_ID]


def _allauth_messages(values: dict[str, Any]) -> list[CheckMessage]:
    messages = _missing_jwt("django-allauth's OpenID Connect sign-in", "allauth")
    configured = hyperid_apps()
    stored_tokens = values.get("TOKEN_PROVIDER") == DEFAULTS["TOKEN_PROVIDER"]
    if configured and stored_tokens and not apps.is_installed(CONTRIB_ALLAUTH):
        messages.append(
            Error(
                f"allauth signs users in with HyperID (the OpenID Connect app {PROVIDER_ID!r}), "
                f"but {CONTRIB_ALLAUTH!r} is not in INSTALLED_APPS: their HyperID tokens are "
                "not stored, so every gated action asks them to sign in again, and signing "
                "in again does not help.",
                hint=f"Add {CONTRIB_ALLAUTH!r} to INSTALLED_APPS, after allauth's apps.",
                id=E025,
            )
        )
    for app in configured:
        app_settings = app.get("settings")
        server_url = app_settings.get("server_url") if isinstance(app_settings, dict) else None
        if isinstance(server_url, str) and WELL_KNOWN in server_url:
            server_url = server_url[: server_url.index(WELL_KNOWN)]
        messages += _mismatches(
            "allauth's HyperID app (client_id, settings['server_url'])",
            client_id=app.get("client_id"),
            issuer=server_url,
            values=values,
        )
    return messages


# --- mozilla-django-oidc -------------------------------------------------------------------


def _backends() -> Iterator[str]:
    configured = getattr(settings, "AUTHENTICATION_BACKENDS", None)
    if isinstance(configured, (list, tuple)):
        yield from (path for path in configured if isinstance(path, str))


def _mozilla_messages(values: dict[str, Any]) -> list[CheckMessage]:
    """E027 for a backend that cannot be imported for want of an extra (or a path of
    the app's that names nothing); E026 and E027 for the settings of a
    ``HyperIDOIDCBackend`` (or a subclass) in ``AUTHENTICATION_BACKENDS``."""
    messages: list[CheckMessage] = []
    try:
        base: type | None = import_string(BACKEND)
    except ImportError:
        base = None  # reported below where a backend needs it
    in_use = False
    for path in _backends():
        try:
            backend = import_string(path)
        except ImportError as err:
            if isinstance(err, MissingExtra) or path.startswith("hyperid_mfa."):
                messages.append(
                    Error(
                        f"AUTHENTICATION_BACKENDS names {path!r}, which cannot be imported: "
                        f"{err}. The first sign-in would be a server error.",
                        hint=_INSTALL.format(extra=err.extra)
                        if isinstance(err, MissingExtra)
                        else "Correct the path.",
                        id=E027,
                    )
                )
            continue
        except Exception:  # noqa: S112 - another library's backend: Django reports it on use
            continue
        in_use = in_use or (
            base is not None and isinstance(backend, type) and issubclass(backend, base)
        )
    if not in_use:
        return messages
    if getattr(importlib.import_module("mozilla_django_oidc.auth"), "jwt", None) is not None:
        messages += _missing_jwt("mozilla-django-oidc", "oidc", _signs_asymmetrically())
    messages += _mismatches(
        "mozilla-django-oidc (OIDC_RP_CLIENT_ID, OIDC_OP_TOKEN_ENDPOINT)",
        client_id=getattr(settings, "OIDC_RP_CLIENT_ID", None),
        token_endpoint=getattr(settings, "OIDC_OP_TOKEN_ENDPOINT", None),
        values=values,
    )
    messages += _endpoints_elsewhere(values)
    return messages


def _signs_asymmetrically() -> bool:
    algorithm = getattr(settings, "OIDC_RP_SIGN_ALGO", "HS256")
    return isinstance(algorithm, str) and algorithm[:2] in ("RS", "ES", "PS")


def _endpoints_elsewhere(values: dict[str, Any]) -> list[CheckMessage]:
    issuer = values.get("ISSUER")
    if not isinstance(issuer, str):
        return []
    base = _normal(issuer)
    elsewhere = [
        name
        for name in MOZILLA_ENDPOINTS
        # The token endpoint is compared exactly, in _mismatches.
        if name != "OIDC_OP_TOKEN_ENDPOINT"
        and isinstance(getattr(settings, name, None), str)
        and not _normal(getattr(settings, name)).startswith(base + "/")
    ]
    if not elsewhere:
        return []
    return [
        Error(
            f"mozilla-django-oidc's {', '.join(elsewhere)} "
            f"{'is' if len(elsewhere) == 1 else 'are'} not under "
            f"{SETTING_NAME}['ISSUER'] ({issuer}): the sign-in and the app would talk "
            "to different HyperIDs.",
            hint="Build every OIDC_OP_* endpoint from the issuer, as the README does "
            f"(ISSUER + '{TOKEN_ENDPOINT_PATH}'...), or correct {SETTING_NAME}['ISSUER'].",
            id=E026,
        )
    ]


# --- both ---------------------------------------------------------------------------------


def _missing_jwt(library: str, extra: str, needs_crypto: bool = True) -> list[CheckMessage]:
    """E027 when PyJWT, or cryptography's algorithms in it, cannot be used."""
    if importlib.util.find_spec("jwt") is None:
        missing = "PyJWT is not installed"
    elif needs_crypto and not importlib.import_module("jwt.algorithms").has_crypto:
        missing = "PyJWT cannot use cryptography's RSA and EC algorithms"
    else:
        return []
    return [
        Error(
            f"{library} verifies HyperID's ID tokens with PyJWT and cryptography, and "
            f"{missing}: every sign-in with HyperID would be a server error.",
            hint=_INSTALL.format(extra=extra),
            id=E027,
        )
    ]


def _mismatches(
    where: str,
    *,
    client_id: Any,
    values: dict[str, Any],
    issuer: Any = None,
    token_endpoint: Any = None,
) -> list[CheckMessage]:
    """E026 when the sign-in's client, issuer or token endpoint is not ``HYPERID_MFA``'s."""
    ours_client, ours_issuer = values.get("CLIENT_ID"), values.get("ISSUER")
    differs = []
    if isinstance(client_id, str) and isinstance(ours_client, str) and client_id != ours_client:
        differs.append(f"the client {client_id!r} ({SETTING_NAME}['CLIENT_ID'] is {ours_client!r})")
    if (
        isinstance(ours_issuer, str)
        and isinstance(issuer, str)
        and _normal(issuer) != _normal(ours_issuer)
    ):
        differs.append(f"the issuer {issuer} ({SETTING_NAME}['ISSUER'] is {ours_issuer})")
    if isinstance(ours_issuer, str) and isinstance(token_endpoint, str):
        refreshes_at = ours_issuer.rstrip("/") + TOKEN_ENDPOINT_PATH
        if _normal(token_endpoint) != _normal(refreshes_at):
            differs.append(
                f"the token endpoint {token_endpoint} (the app refreshes at {refreshes_at})"
            )
    if not differs:
        return []
    return [
        Error(
            f"{where} uses {' and '.join(differs)}: the tokens it stores cannot be "
            "refreshed (a refresh token works only for its own client, at its own "
            "issuer), so users are asked to sign in again whenever one expires.",
            hint=f"Give {SETTING_NAME}['CLIENT_ID'] and ['ISSUER'] the sign-in's client and "
            "issuer: one client registered with HyperID serves both.",
            id=E026,
        )
    ]


def _normal(url: str) -> str:
    """``url`` as compared: scheme and host in lower case, without the default port or
    a trailing slash. A URL that cannot be read is compared as it is."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = (parts.hostname or "").lower()
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if port is not None and port != default:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"
