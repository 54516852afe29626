"""System checks for the ``HYPERID_MFA`` setting (``python manage.py check``).

Registered from ``HyperIDMFAConfig.ready()``. Each problem has an id
(``hyperid_mfa.E001``...) and a hint saying how to fix it.
"""

from __future__ import annotations

import importlib.util
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import DEFAULTS, SETTING_NAME, parse_rate
from .exceptions import HyperIDConfigurationError

# id -> meaning, for the documentation and the tests.
E001 = "hyperid_mfa.E001"  # not a dict / unknown keys
E002 = "hyperid_mfa.E002"  # a value of the wrong type or range
E003 = "hyperid_mfa.E003"  # a URL that is not an absolute http(s) URL
E004 = "hyperid_mfa.E004"  # plain http:// to a non-loopback host outside DEBUG
E005 = "hyperid_mfa.E005"  # TOKEN_PROVIDER missing, unimportable or incomplete
E006 = "hyperid_mfa.E006"  # TOKEN_ENCRYPTION_KEYS not valid Fernet keys
W007 = "hyperid_mfa.W007"  # encryption keys derived from SECRET_KEY
E008 = "hyperid_mfa.E008"  # START_RATE_LIMIT unreadable
E009 = "hyperid_mfa.E009"  # a gated view runs inside ATOMIC_REQUESTS
W010 = "hyperid_mfa.W010"  # no client credentials: tokens cannot be refreshed
W012 = "hyperid_mfa.W012"  # REFRESH_AFTER_START set, but Celery is not installed


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0


def _non_negative(value: Any) -> bool:
    return _is_number(value) and value >= 0


def _timeout(value: Any) -> bool:
    if _positive(value):
        return True
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(_positive(v) for v in value)


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _keys(value: Any) -> bool:
    if value is None or isinstance(value, (str, bytes)):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(k, (str, bytes)) for k in value)


# key -> (test, what it must be)
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "API_BASE_URL": (lambda v: isinstance(v, str), "a URL string"),
    "TIMEOUT": (_timeout, "a positive number or a (connect, read) pair of positive numbers"),
    "MAX_RETRIES": (lambda v: type(v) is int and 0 <= v <= 10, "an integer from 0 to 10"),
    "TOKEN_PROVIDER": (
        lambda v: isinstance(v, (str, type)),
        "an import string of a token provider class",
    ),
    "ISSUER": (lambda v: isinstance(v, str), "the issuer URL string"),
    "CLIENT_ID": (_optional_str, "a string or None"),
    "CLIENT_SECRET": (_optional_str, "a string or None"),
    "TOKEN_ENCRYPTION_KEYS": (_keys, "a list of Fernet keys (strings), newest first"),
    "REQUEST_TTL": (_positive, "a positive number of seconds"),
    "APPROVAL_MAX_AGE": (_positive, "a positive number of seconds"),
    "MIN_REFRESH_INTERVAL": (_non_negative, "a number of seconds, 0 or more"),
    "START_RATE_LIMIT": (_optional_str, "a rate such as '5/10m', or None"),
    "DENIAL_COOLDOWN": (_non_negative, "a number of seconds, 0 or more"),
    "TEMPLATE_ID": (lambda v: type(v) is int and v > 0, "a positive integer"),
    "BASE_TEMPLATE": (lambda v: isinstance(v, str) and bool(v), "a template name"),
    "POLL_INTERVAL": (_positive, "a positive number of seconds"),
    "REFRESH_AFTER_START": (
        lambda v: v is None or _non_negative(v),
        "None or a number of seconds, 0 or more",
    ),
}


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(key: str, value: str) -> list[CheckMessage]:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Error(
                f"{SETTING_NAME}[{key!r}] is not an absolute http(s) URL: {value!r}.",
                hint="Write it like 'https://api.hypersecureid.com'.",
                id=E003,
            )
        ]
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not settings.DEBUG:
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


def _check_provider(value: Any) -> list[CheckMessage]:
    try:
        provider = import_string(value) if isinstance(value, str) else value
    except ImportError as err:
        return [
            Error(
                f"{SETTING_NAME}['TOKEN_PROVIDER'] = {value!r} cannot be imported: {err}.",
                hint="Give the dotted path of a class, "
                "e.g. 'hyperid_mfa.tokens.StoredTokenProvider'.",
                id=E005,
            )
        ]
    missing = [
        name
        for name in ("get_access_token", "refresh_access_token")
        if not callable(getattr(provider, name, None))
    ]
    if missing:
        return [
            Error(
                f"{SETTING_NAME}['TOKEN_PROVIDER'] {value!r} lacks {', '.join(missing)}.",
                hint="A token provider has get_access_token(user) and "
                "refresh_access_token(user); see hyperid_mfa.tokens.TokenProvider.",
                id=E005,
            )
        ]
    return []


def _check_keys(value: Any) -> list[CheckMessage]:
    if not value:
        # Django itself refuses an empty SECRET_KEY, so a derived key always exists.
        return [
            Warning(
                "HyperID tokens are encrypted with a key derived from SECRET_KEY.",
                hint=f"Set {SETTING_NAME}['TOKEN_ENCRYPTION_KEYS'] to a list of keys made "
                "with cryptography.fernet.Fernet.generate_key(), so that rotating "
                "SECRET_KEY does not make stored tokens unreadable.",
                id=W007,
            )
        ]
    keys = [value] if isinstance(value, (str, bytes)) else list(value)
    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            return [
                Error(
                    f"{SETTING_NAME}['TOKEN_ENCRYPTION_KEYS'][{index}] is not a Fernet key.",
                    hint="Make one with cryptography.fernet.Fernet.generate_key().",
                    id=E006,
                )
            ]
    return []


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, SETTING_NAME, None)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return [
            Error(
                f"{SETTING_NAME} must be a dict, not {type(raw).__name__}.",
                hint=f"Write {SETTING_NAME} = {{'CLIENT_ID': ..., ...}}.",
                id=E001,
            )
        ]
    messages: list[CheckMessage] = []
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        messages.append(
            Error(
                f"{SETTING_NAME} has unknown key(s): {', '.join(map(repr, unknown))}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id=E001,
            )
        )
    values = {**DEFAULTS, **{k: v for k, v in raw.items() if k in DEFAULTS}}
    valid = {}
    for key, (test, expected) in _TYPES.items():
        if test(values[key]):
            valid[key] = values[key]
        else:
            messages.append(
                Error(
                    f"{SETTING_NAME}[{key!r}] must be {expected}, not {values[key]!r}.",
                    hint=f"The default is {DEFAULTS[key]!r}.",
                    id=E002,
                )
            )
    for key in ("API_BASE_URL", "ISSUER"):
        if key in valid:
            messages += _check_url(key, valid[key])
    if "TOKEN_PROVIDER" in valid:
        messages += _check_provider(valid["TOKEN_PROVIDER"])
    if "TOKEN_ENCRYPTION_KEYS" in valid:
        messages += _check_keys(valid["TOKEN_ENCRYPTION_KEYS"])
    if "START_RATE_LIMIT" in valid:
        try:
            parse_rate(valid["START_RATE_LIMIT"])
        except HyperIDConfigurationError as err:
            messages.append(Error(str(err), hint="For example '5/10m'.", id=E008))
    if valid.get("REFRESH_AFTER_START") is not None and importlib.util.find_spec("celery") is None:
        messages.append(
            Warning(
                f"{SETTING_NAME}['REFRESH_AFTER_START'] is set, but Celery is not installed: "
                "no refresh will be scheduled after a push.",
                hint="pip install 'django-hyperid-mfa[celery]', or set it to None.",
                id=W012,
            )
        )
    provider = values["TOKEN_PROVIDER"]
    uses_stored = provider == DEFAULTS["TOKEN_PROVIDER"]
    if uses_stored and not (values["CLIENT_ID"] and values["CLIENT_SECRET"]):
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


# --- gated views and ATOMIC_REQUESTS ---------------------------------------------------


def _url_callbacks(patterns: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    from django.urls import URLPattern, URLResolver

    for entry in patterns:
        if isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback
        elif isinstance(entry, URLResolver):
            yield from _url_callbacks(entry.url_patterns, prefix + str(entry.pattern))


def _holds_permission(permission: Any, wanted: type) -> bool:
    """Whether a DRF permission (a class, or ``A & B`` style operands) includes ``wanted``."""
    if isinstance(permission, type):
        return issubclass(permission, wanted)
    return any(
        _holds_permission(getattr(permission, name), wanted)
        for name in ("op1_class", "op2_class")
        if hasattr(permission, name)
    )


def _is_gated(callback: Any) -> bool:
    if getattr(callback, "mfa_gate", None) is not None:
        return True
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if not isinstance(view_class, type):
        return False
    from .mixins import MFAApprovalRequiredMixin

    if issubclass(view_class, MFAApprovalRequiredMixin):
        return True
    if importlib.util.find_spec("rest_framework") is not None:
        from .permissions import MFAApproved

        permissions = getattr(view_class, "permission_classes", ()) or ()
        if any(_holds_permission(permission, MFAApproved) for permission in permissions):
            return True
    return any(
        getattr(member, "mfa_gate", None) is not None
        for klass in view_class.__mro__
        for member in vars(klass).values()
        if callable(member)
    )


def check_atomic_requests(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E009: a gated view that Django would run inside ``ATOMIC_REQUESTS``.

    Its approval would be spent inside the view's transaction and come back unspent
    when the view fails; the gate refuses such requests (500 ``mfa_misconfigured``).
    """
    from asgiref.sync import iscoroutinefunction
    from django.urls import get_resolver

    from .atomicity import atomic_request_aliases

    aliases = atomic_request_aliases()
    if not aliases:
        return []
    messages: list[CheckMessage] = []
    for route, callback in _url_callbacks(get_resolver().url_patterns):
        # Django itself refuses ATOMIC_REQUESTS on async views.
        if iscoroutinefunction(callback) or not _is_gated(callback):
            continue
        excluded = getattr(callback, "_non_atomic_requests", ())
        atomic_on = [alias for alias in aliases if alias not in excluded]
        if not atomic_on:
            continue
        name = getattr(callback, "__qualname__", repr(callback))
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        if isinstance(view_class, type):
            name = f"{view_class.__module__}.{view_class.__qualname__}"
        messages.append(
            Error(
                f"The gated view {name} (URL {route!r}) runs inside ATOMIC_REQUESTS on "
                f"{', '.join(map(repr, atomic_on))}: an approval spent inside the view's "
                "transaction would come back unspent when the view fails, so the gate "
                "refuses every request to it.",
                hint="Decorate the view class with @method_decorator(transaction."
                "non_atomic_requests, name='dispatch') and open transaction.atomic() "
                "inside the handler where you need one, or use MFAApprovalRequiredMixin "
                "or @require_mfa_approval on a function view, which do this themselves.",
                id=E009,
            )
        )
    return messages


def register_checks() -> None:
    register(check_settings, Tags.security, deploy=False)
    register(check_atomic_requests, Tags.urls, Tags.security)
