"""What a valid ``HYPERID_MFA`` is, and the system checks of the setting.

The only validator of the setting: the table of keys with their defaults, the rules
each value must follow (``conf`` builds ``mfa_settings`` only from a value they
accept, and refuses any other at run time with the same messages:
:func:`value_errors`), and the checks that depend on the deployment rather than on
the value (plain ``http://``, missing credentials, keys derived from ``SECRET_KEY``,
a base URL with a path). ``conf`` imports this module, so it imports nothing that
reads settings. The project around the setting is checked in ``checks.deployment``,
gated views inside ``ATOMIC_REQUESTS`` in ``gate.atomicity``; every id is listed in
docs/checks.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

from .. import crypto
from ..client import wire
from ..constants import (
    DEFAULT_TEMPLATE_ID,
    PRODUCTION_API_BASE_URL,
    PRODUCTION_ISSUER,
    START_PATH,
    TOKEN_ENDPOINT_PATH,
)

SETTING_NAME = "HYPERID_MFA"

DEFAULTS: dict[str, Any] = {
    "API_BASE_URL": PRODUCTION_API_BASE_URL,
    # (connect, read) seconds. Every HTTP call has a timeout.
    "TIMEOUT": (3.05, 10),
    "MAX_RETRIES": 2,
    "TOKEN_PROVIDER": "hyperid_mfa.tokens.StoredTokenProvider",
    "ISSUER": PRODUCTION_ISSUER,
    "CLIENT_ID": None,
    "CLIENT_SECRET": None,
    # None: derived from SECRET_KEY (and SECRET_KEY_FALLBACKS); a system check warns.
    "TOKEN_ENCRYPTION_KEYS": None,
    "REQUEST_TTL": 300,
    "APPROVAL_MAX_AGE": 300,
    "MIN_REFRESH_INTERVAL": 2,
    # While someone waits on a request (a poll of it, the gated request sent again):
    # at most one status-get per this many seconds (never more than MIN_REFRESH_INTERVAL).
    "WATCHED_REFRESH_INTERVAL": 0.5,
    "START_RATE_LIMIT": "5/10m",
    # Seconds after a denial before the same user may be sent another push.
    "DENIAL_COOLDOWN": 30,
    "TEMPLATE_ID": DEFAULT_TEMPLATE_ID,
    # The template the approval page extends (it must define a "content" block).
    "BASE_TEMPLATE": "hyperid_mfa/base.html",
    # Seconds a client should wait between polls of a pending request.
    "POLL_INTERVAL": 0.5,
    # With Celery: schedule a refresh task this many seconds after each push (None: off).
    "REFRESH_AFTER_START": None,
    # What a project may swap: the HTTP session, the default question, the token provider.
    "ADAPTER": "hyperid_mfa.adapter.MFAAdapter",
    # Where "sign in with HyperID again" leads (a path or URL name); None: allauth's
    # HyperID login when hyperid_mfa.contrib.allauth is installed, else no link.
    "REAUTHENTICATE_URL": None,
    # The bearer token a scraper presents to hyperid_mfa.metrics.metrics_view (None:
    # staff only).
    "METRICS_TOKEN": None,
}

#: Keys whose value is an import string, resolved at its first read.
IMPORT_STRINGS = frozenset({"TOKEN_PROVIDER", "ADAPTER"})

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
E011 = "hyperid_mfa.E011"  # ADAPTER unimportable or not an adapter
W012 = "hyperid_mfa.W012"  # REFRESH_AFTER_START set, but Celery is not installed
# W013, W014: hyperid_mfa.contrib.allauth.checks (the allauth sign-in).
E015 = "hyperid_mfa.E015"  # the app's URLs are not in the URLconf (checks.deployment)
E016 = "hyperid_mfa.E016"  # a template of the approval page cannot be loaded (checks.deployment)
W017 = "hyperid_mfa.W017"  # the push limit's cache is per process or not atomic (deploy)
E018 = "hyperid_mfa.E018"  # the push limit's cache keeps nothing (DummyCache)
W019 = "hyperid_mfa.W019"  # API_BASE_URL has a path
E020 = "hyperid_mfa.E020"  # API_BASE_URL or ISSUER has a query string or a fragment
W021 = "hyperid_mfa.W021"  # rest_framework is not in INSTALLED_APPS (checks.deployment)
E022 = "hyperid_mfa.E022"  # an MFAProtectedAdminMixin option names nothing there (admin.step_up)
E023 = "hyperid_mfa.E023"  # a DRF view's mfa_window or mfa_scope is refused (checks.deployment)
# E025, E026, E027: hyperid_mfa.contrib.checks (the sign-in, whichever library).
E028 = "hyperid_mfa.E028"  # production settings point at the simulator: loopback or http (deploy)
# W029, W030: hyperid_mfa.contrib.allauth.checks (the allauth sign-in).
W031 = (
    "hyperid_mfa.W031"  # require_approval in plain views without the middleware (checks.deployment)
)


# --- the rules of each value ---------------------------------------------------------------


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


#: The shortest METRICS_TOKEN accepted (secrets.token_urlsafe(32) gives 43 characters).
MIN_METRICS_TOKEN_LENGTH = 32


def _is_token(value: str) -> bool:
    # What an Authorization header can carry as it is.
    return len(value) >= MIN_METRICS_TOKEN_LENGTH and all("!" <= c <= "~" for c in value)


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
    "WATCHED_REFRESH_INTERVAL": (_non_negative, "a number of seconds, 0 or more"),
    "START_RATE_LIMIT": (_optional_str, "a rate such as '5/10m', or None"),
    "DENIAL_COOLDOWN": (_non_negative, "a number of seconds, 0 or more"),
    "TEMPLATE_ID": (lambda v: type(v) is int and v > 0, "a positive integer"),
    "BASE_TEMPLATE": (lambda v: isinstance(v, str) and bool(v), "a template name"),
    "POLL_INTERVAL": (_positive, "a positive number of seconds"),
    "REFRESH_AFTER_START": (
        lambda v: v is None or _non_negative(v),
        "None or a number of seconds, 0 or more",
    ),
    "ADAPTER": (lambda v: isinstance(v, (str, type)), "an import string of an adapter class"),
    "REAUTHENTICATE_URL": (
        lambda v: v is None or (isinstance(v, str) and bool(v.strip())),
        "a path, a URL or a URL name, or None",
    ),
    "METRICS_TOKEN": (
        lambda v: v is None or (isinstance(v, str) and _is_token(v)),
        f"None or a string of at least {MIN_METRICS_TOKEN_LENGTH} printable ASCII "
        "characters without spaces",
    ),
}

# What the E002 hint says where "The default is <repr>." would mislead.
_DEFAULT_HINTS = {
    "METRICS_TOKEN": "Make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
    "TOKEN_ENCRYPTION_KEYS": (
        "Leave it unset to derive keys from SECRET_KEY and SECRET_KEY_FALLBACKS "
        f"(warning {W007}), or list keys made with "
        "cryptography.fernet.Fernet.generate_key(), newest first."
    ),
}


# Values never quoted in a message: it reaches logs and error pages at run time.
_SECRETS = frozenset({"CLIENT_SECRET", "TOKEN_ENCRYPTION_KEYS", "METRICS_TOKEN"})


def _wrong_type(key: str, value: Any, expected: str) -> CheckMessage:
    shown = f"a {type(value).__name__}" if key in _SECRETS else repr(value)
    return Error(
        f"{SETTING_NAME}[{key!r}] must be {expected}, not {shown}.",
        hint=_DEFAULT_HINTS.get(key, f"The default is {DEFAULTS[key]!r}."),
        id=E002,
    )


def _url_errors(key: str, value: str) -> list[CheckMessage]:
    try:
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname and _host_is_valid(parts.netloc):
            return []
    except ValueError:  # "http://[::1" and other unbalanced brackets
        pass
    return [
        Error(
            f"{SETTING_NAME}[{key!r}] is not an absolute http(s) URL: {value!r}.",
            hint="Write it like 'https://api.hypersecureid.com'.",
            id=E003,
        )
    ]


#: What the app appends to each base URL, for the messages.
_APPENDED = {"API_BASE_URL": START_PATH, "ISSUER": TOKEN_ENDPOINT_PATH}


def _base_url_errors(key: str, value: str) -> list[CheckMessage]:
    """E003, else E020: the app appends paths to these URLs, so a query string or a
    fragment would swallow them (the request would go to the base URL itself)."""
    errors = _url_errors(key, value)
    if errors or not ("?" in value or "#" in value):
        return errors
    parts = urlsplit(value)
    # Neither is quoted: a query string may carry a gateway's key.
    what = "query string" if "?" in value.split("#", 1)[0] else "fragment"
    base = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    return [
        Error(
            f"{SETTING_NAME}[{key!r}] has a {what}: the app appends paths to it "
            f"({base}{_APPENDED[key]}), and they would end up in the {what} instead.",
            hint=f"Give it without '?' or '#', like {base!r}.",
            id=E020,
        )
    ]


def _host_is_valid(netloc: str) -> bool:
    """A bracketed host must be an IPv6 address (Python before 3.11 does not check)."""
    host = netloc.rpartition("@")[2]
    if not host.startswith("["):
        return True
    try:
        ipaddress.IPv6Address(host[1 : host.index("]")])
    except ValueError:
        return False
    return True


def _key_errors(value: Any) -> list[CheckMessage]:
    keys = [value] if isinstance(value, (str, bytes)) else list(value or ())
    for index, key in enumerate(keys):
        try:
            crypto.check_key(key)
        except ValueError:
            return [
                Error(
                    f"{SETTING_NAME}['TOKEN_ENCRYPTION_KEYS'][{index}] is not a Fernet key.",
                    hint="Make one with cryptography.fernet.Fernet.generate_key().",
                    id=E006,
                )
            ]
    return []


def _rate_errors(value: str | None) -> list[CheckMessage]:
    try:
        wire.parse_rate(value)
    except ValueError as err:
        return [
            Error(
                f"{SETTING_NAME}['START_RATE_LIMIT']: {err}.",
                hint="For example '5/10m': five pushes per user per ten minutes.",
                id=E008,
            )
        ]
    return []


# Rules that read a value of the right type further.
_VALUE_RULES: dict[str, Callable[[Any], list[CheckMessage]]] = {
    "API_BASE_URL": lambda v: _base_url_errors("API_BASE_URL", v),
    "ISSUER": lambda v: _base_url_errors("ISSUER", v),
    "TOKEN_ENCRYPTION_KEYS": _key_errors,
    "START_RATE_LIMIT": _rate_errors,
}


def value_errors(raw: Any) -> list[CheckMessage]:
    """What makes ``raw``, a value of ``HYPERID_MFA``, unusable: E001, E002, E003,
    E006, E008 and E020. Empty when every value may be used as it is.

    ``conf`` refuses, at run time, a setting for which this is not empty.
    """
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [
            Error(
                f"{SETTING_NAME} must be a dict, not {type(raw).__name__}.",
                hint=f"Write {SETTING_NAME} = {{'CLIENT_ID': ..., ...}}.",
                id=E001,
            )
        ]
    errors: list[CheckMessage] = []
    unknown = sorted(set(raw) - set(DEFAULTS), key=repr)
    if unknown:
        errors.append(
            Error(
                f"{SETTING_NAME} has unknown key(s): {', '.join(map(repr, unknown))}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id=E001,
            )
        )
    for key, value in raw.items():
        if key not in _TYPES:
            continue
        test, expected = _TYPES[key]
        if not test(value):
            errors.append(_wrong_type(key, value, expected))
        elif key in _VALUE_RULES:
            errors += _VALUE_RULES[key](value)
    return errors


def _follows_the_rules(key: str, value: Any) -> bool:
    return _TYPES[key][0](value) and not (key in _VALUE_RULES and _VALUE_RULES[key](value))


def usable_values() -> dict[str, Any] | None:
    """The current ``HYPERID_MFA`` with its defaults, keeping only the keys whose value
    follows the rules of :func:`value_errors`; None when the setting is not a dict.

    The checks that read a value further (here and in ``deployment_checks``) skip a
    key missing from this: its error is reported once, by :func:`value_errors`.
    """
    return usable(getattr(settings, SETTING_NAME, None))


def usable(raw: Any) -> dict[str, Any] | None:
    if raw is not None and not isinstance(raw, Mapping):
        return None
    values = {**DEFAULTS, **{key: value for key, value in (raw or {}).items() if key in DEFAULTS}}
    return {key: value for key, value in values.items() if _follows_the_rules(key, value)}


def load_token_provider(value: Any) -> tuple[Any, list[CheckMessage]]:
    """The class ``TOKEN_PROVIDER`` names, and the E005 errors that make it unusable
    (then the class is None)."""
    try:
        provider = import_string(value) if isinstance(value, str) else value
    except ImportError as err:
        return None, [
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
        return None, [
            Error(
                f"{SETTING_NAME}['TOKEN_PROVIDER'] {value!r} lacks {', '.join(missing)}.",
                hint="A token provider has get_access_token(user) and "
                "refresh_access_token(user); see hyperid_mfa.tokens.TokenProvider.",
                id=E005,
            )
        ]
    return provider, []


#: What an adapter must have (see hyperid_mfa.adapter.MFAAdapter).
ADAPTER_METHODS = ("get_requests_session", "format_question", "get_token_provider")


def load_adapter(value: Any) -> tuple[Any, list[CheckMessage]]:
    """The class ``ADAPTER`` names, and the E011 errors that make it unusable (then
    the class is None)."""
    hint = (
        "Give the dotted path of a subclass of hyperid_mfa.adapter.MFAAdapter, or leave "
        "ADAPTER unset."
    )
    try:
        adapter = import_string(value) if isinstance(value, str) else value
    except ImportError as err:
        return None, [
            Error(
                f"{SETTING_NAME}['ADAPTER'] = {value!r} cannot be imported: {err}.",
                hint=hint,
                id=E011,
            )
        ]
    missing = [name for name in ADAPTER_METHODS if not callable(getattr(adapter, name, None))]
    if not isinstance(adapter, type) or missing:
        return None, [
            Error(
                f"{SETTING_NAME}['ADAPTER'] {value!r} is not an adapter class"
                + (f" (it lacks {', '.join(missing)})." if missing else "."),
                hint=hint,
                id=E011,
            )
        ]
    return adapter, []


# --- what depends on the deployment ---------------------------------------------------------
