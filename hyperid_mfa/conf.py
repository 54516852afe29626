"""The ``HYPERID_MFA`` setting, read through one object: ``mfa_settings``.

Values are read from ``django.conf.settings`` at every access, so
``override_settings(HYPERID_MFA=...)`` takes effect everywhere, the HTTP client's
base URL included. Only the objects that import strings resolve to are cached, and
that cache is dropped whenever ``setting_changed`` fires for ``HYPERID_MFA``.

Defaults are never written back into ``django.conf.settings``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .constants import (
    DEFAULT_TEMPLATE_ID,
    PRODUCTION_API_BASE_URL,
    PRODUCTION_ISSUER,
    TOKEN_ENDPOINT_PATH,
)
from .exceptions import HyperIDConfigurationError

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
    "START_RATE_LIMIT": "5/10m",
    # Seconds after a denial before the same user may be sent another push.
    "DENIAL_COOLDOWN": 30,
    "TEMPLATE_ID": DEFAULT_TEMPLATE_ID,
    # The template the approval page extends (it must define a "content" block).
    "BASE_TEMPLATE": "hyperid_mfa/base.html",
    # Seconds a client should wait between polls of a pending request.
    "POLL_INTERVAL": 2,
    # With Celery: schedule a refresh task this many seconds after each push (None: off).
    "REFRESH_AFTER_START": None,
}

#: Keys whose value is an import string, resolved lazily.
IMPORT_STRINGS = frozenset({"TOKEN_PROVIDER"})


class MFASettings:
    """Attribute access to ``HYPERID_MFA`` with defaults; see the module docstring."""

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        self.defaults = dict(DEFAULTS if defaults is None else defaults)
        self._imported: dict[str, Any] = {}

    @property
    def user_settings(self) -> Mapping[str, Any]:
        value = getattr(settings, SETTING_NAME, None)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise HyperIDConfigurationError(
                f"{SETTING_NAME} must be a dict, not {type(value).__name__}."
            )
        unknown = sorted(set(value) - set(self.defaults))
        if unknown:
            raise HyperIDConfigurationError(
                f"{SETTING_NAME} has unknown key(s): {', '.join(map(repr, unknown))}. "
                f"Known keys: {', '.join(sorted(self.defaults))}."
            )
        return value

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Invalid {SETTING_NAME} setting: {name!r}")
        value = self.user_settings.get(name, self.defaults[name])
        if name in IMPORT_STRINGS and isinstance(value, str):
            if name not in self._imported:
                try:
                    self._imported[name] = import_string(value)
                except ImportError as err:
                    raise HyperIDConfigurationError(
                        f"{SETTING_NAME}[{name!r}] = {value!r} cannot be imported: {err}"
                    ) from err
            return self._imported[name]
        return value

    def reload(self) -> None:
        self._imported.clear()
        _encryption_keys.cache_clear()


mfa_settings = MFASettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in {SETTING_NAME, "SECRET_KEY", "SECRET_KEY_FALLBACKS"}:
        mfa_settings.reload()


setting_changed.connect(_reload, dispatch_uid="hyperid_mfa.conf.reload")


# --- derived values ---------------------------------------------------------------


def timeout() -> tuple[float, float]:
    """``TIMEOUT`` as a (connect, read) pair; a single number sets both."""
    value = mfa_settings.TIMEOUT
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value), float(value))
    connect, read = value
    return (float(connect), float(read))


_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    count: int
    period: int  # seconds


def parse_rate(value: str | None) -> Rate | None:
    """Parse ``"5/10m"`` (5 per 10 minutes), ``"3/h"``, ``"10/30s"``; None disables."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise HyperIDConfigurationError(f"A rate must be a string like '5/10m', not {value!r}.")
    match = _RATE_RE.match(value)
    if not match:
        raise HyperIDConfigurationError(
            f"Cannot read the rate {value!r}: write it as '<count>/<number><s|m|h|d>', "
            "for example '5/10m'."
        )
    count, multiplier, unit = match.groups()
    period = int(multiplier or 1) * _UNIT_SECONDS[unit]
    if int(count) < 1 or period < 1:
        raise HyperIDConfigurationError(f"The rate {value!r} must allow at least one push.")
    return Rate(count=int(count), period=period)


def start_rate() -> Rate | None:
    return parse_rate(mfa_settings.START_RATE_LIMIT)


def derive_key(secret: str) -> bytes:
    """A Fernet key derived from a Django secret, for projects that set no key."""
    digest = hashlib.sha256(b"hyperid_mfa.token-encryption\x00" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def encryption_keys() -> tuple[bytes, ...]:
    """The Fernet keys, newest first. Empty only when nothing at all is configured."""
    return _encryption_keys()


@functools.lru_cache(maxsize=1)
def _encryption_keys() -> tuple[bytes, ...]:
    configured = mfa_settings.TOKEN_ENCRYPTION_KEYS
    if configured:
        if isinstance(configured, (str, bytes)):
            configured = [configured]
        return tuple(k.encode() if isinstance(k, str) else bytes(k) for k in configured)
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return tuple(derive_key(s) for s in secrets if s)


def keys_are_derived() -> bool:
    return not mfa_settings.TOKEN_ENCRYPTION_KEYS


def token_endpoint() -> str:
    return str(mfa_settings.ISSUER).rstrip("/") + TOKEN_ENDPOINT_PATH
