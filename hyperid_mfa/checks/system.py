"""The system checks of ``HYPERID_MFA`` (``python manage.py check``): the value's rules
(``settings``), and what depends on the deployment rather than on the value: plain
``http://`` to another host, keys derived from ``SECRET_KEY``, a base URL with a path,
missing credentials, a refresh after start without Celery. Registered from
``HyperIDMFAConfig.ready()``."""

from __future__ import annotations

import importlib.util
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from ..constants import PRODUCTION_API_BASE_URL, START_PATH
from .settings import (
    DEFAULTS,
    E004,
    SETTING_NAME,
    W007,
    W010,
    W012,
    W019,
    load_adapter,
    load_token_provider,
    usable,
    value_errors,
)


def is_loopback(host: str) -> bool:
    """Whether a URL's host is this machine, in any spelling a client resolves so:
    ``localhost`` and its subdomains, 127/8 and ``::1`` (also IPv4-mapped), the
    short and numeric IPv4 forms (``127.1``, ``2130706433``), and the unspecified
    addresses ``0.0.0.0`` and ``::``, which reach this machine too."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        try:
            # The C library's reading, which clients use: "127.1", "0x7f.1", "2130706433".
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def local_or_plain_http(url: str) -> str | None:
    """Why ``url`` cannot be HyperID's in production: ``"loopback"`` (this machine),
    ``"http"`` (plain http:// elsewhere), or None for an https:// URL to another host
    (and for anything that is not an http(s) URL: other checks report those)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    if is_loopback(host):
        return "loopback"
    return "http" if parts.scheme == "http" else None


def _plain_http_errors(key: str, value: str) -> list[CheckMessage]:
    parts = urlsplit(value)
    if parts.scheme == "http" and not is_loopback(parts.hostname or "") and not settings.DEBUG:
        return [
            Error(
                f"{SETTING_NAME}[{key!r}] uses plain http:// to {parts.hostname}: access tokens "
                "would cross the network unencrypted.",
                hint="Use https://. Plain http:// is accepted only for loopback hosts "
                "(a local simulator) or with DEBUG on.",
                id=E004,
            )
        ]
    return []


def _derived_keys_warning() -> CheckMessage:
    # Django itself refuses an empty SECRET_KEY, so a derived key always exists.
    return Warning(
        "HyperID tokens are encrypted with keys derived from SECRET_KEY and "
        "SECRET_KEY_FALLBACKS: a token stays readable only while the secret it was "
        "stored under is one of them.",
        hint=f"Set {SETTING_NAME}['TOKEN_ENCRYPTION_KEYS'] to a list of keys made with "
        "cryptography.fernet.Fernet.generate_key(). To keep the tokens stored so far, "
        "list hyperid_mfa.crypto.derive_key(SECRET_KEY) after the new key until "
        "manage.py hyperid_mfa_rotate_keys has run.",
        id=W007,
    )


def _base_url_path_warnings(value: str) -> list[CheckMessage]:
    parts = urlsplit(value)
    path = parts.path.rstrip("/")
    if not path:
        return []
    origin = f"{parts.scheme}://{parts.netloc}"
    return [
        Warning(
            f"{SETTING_NAME}['API_BASE_URL'] has a path ({path!r}): the client appends "
            f"HyperID's paths to it and would call {origin}{path}{START_PATH}, where "
            f"HyperID serves {origin}{START_PATH}.",
            hint=f"Give the API's origin only, like {PRODUCTION_API_BASE_URL!r}. If a gateway "
            f"of yours serves HyperID's API under {path!r}, add {W019!r} to "
            "SILENCED_SYSTEM_CHECKS.",
            id=W019,
        )
    ]


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, SETTING_NAME, None)
    messages = value_errors(raw)
    values = usable(raw)
    if values is None:
        return messages
    for key in ("API_BASE_URL", "ISSUER"):
        if key in values:
            messages += _plain_http_errors(key, values[key])
    if "API_BASE_URL" in values:
        messages += _base_url_path_warnings(values["API_BASE_URL"])
    if "TOKEN_PROVIDER" in values:
        messages += load_token_provider(values["TOKEN_PROVIDER"])[1]
    if "ADAPTER" in values:
        messages += load_adapter(values["ADAPTER"])[1]
    if "TOKEN_ENCRYPTION_KEYS" in values and not values["TOKEN_ENCRYPTION_KEYS"]:
        messages.append(_derived_keys_warning())
    if values.get("REFRESH_AFTER_START") is not None and importlib.util.find_spec("celery") is None:
        messages.append(
            Warning(
                f"{SETTING_NAME}['REFRESH_AFTER_START'] is set, but Celery is not installed: "
                "no refresh will be scheduled after a push.",
                hint="pip install 'django-hyperid-mfa[celery]', or set it to None.",
                id=W012,
            )
        )
    uses_stored = values.get("TOKEN_PROVIDER") == DEFAULTS["TOKEN_PROVIDER"]
    # A credential of the wrong type is E002's to report, not a missing one.
    readable = {"CLIENT_ID", "CLIENT_SECRET"} <= values.keys()
    if uses_stored and readable and not (values["CLIENT_ID"] and values["CLIENT_SECRET"]):
        messages.append(
            Warning(
                f"{SETTING_NAME}['CLIENT_ID'] and ['CLIENT_SECRET'] are not both set: expired "
                "HyperID access tokens cannot be refreshed, and users will be asked to sign "
                "in again.",
                hint="Set them to your HyperID client's credentials.",
                id=W010,
            )
        )
    return messages


def register_checks() -> None:
    register(check_settings, Tags.security, deploy=False)
