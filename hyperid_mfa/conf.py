"""The ``HYPERID_MFA`` setting, read through one object: ``mfa_settings``.

``mfa_settings.REQUEST_TTL`` reads a typed, immutable :class:`Settings` built from
``HYPERID_MFA`` the first time a value is needed, and kept until ``setting_changed``
fires for ``HYPERID_MFA``, ``SECRET_KEY`` or ``SECRET_KEY_FALLBACKS``
(``override_settings`` and pytest-django's ``settings`` fixture send it, so both
take effect everywhere, the HTTP client's base URL included). After its first read
a value is a plain attribute of ``mfa_settings``: the request path pays for no
validation. A change that sends no ``setting_changed`` (assigning to or deleting
from ``django.conf.settings`` directly) is seen after ``mfa_settings.reload()``.

``checks.py`` is the only validator: a :class:`Settings` is built only from a value
its rules accept, and any other raises :class:`HyperIDConfigurationError` at the
first read, with the messages ``manage.py check`` would show. The table of keys and
defaults lives there too, next to the rules; it is importable from here.
``checks`` imports nothing that reads settings, so this module may import it.

Import strings are resolved at their first read. Defaults are never written back
into ``django.conf.settings``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage
from django.core.signals import setting_changed

from . import crypto
from .checks import settings as checks
from .checks.settings import DEFAULTS, IMPORT_STRINGS, SETTING_NAME
from .client import wire
from .client.wire import Rate
from .constants import TOKEN_ENDPOINT_PATH
from .crypto import derive_key
from .exceptions import HyperIDConfigurationError

__all__ = [
    "DEFAULTS",
    "IMPORT_STRINGS",
    "SETTING_NAME",
    "MFASettings",
    "Rate",
    "Settings",
    "derive_key",
    "encryption_keys",
    "key_ring",
    "keys_are_derived",
    "mfa_settings",
    "parse_rate",
    "start_rate",
    "timeout",
    "token_endpoint",
]


def _refusal(messages: list[CheckMessage]) -> HyperIDConfigurationError:
    return HyperIDConfigurationError(
        " ".join(f"{message.msg} {message.hint}" for message in messages)
    )


@dataclass(frozen=True)
class Settings:
    """``HYPERID_MFA`` with its defaults, as the rules of ``checks`` accepted it.

    The upper-case fields hold the configured values (lists as tuples); the
    lower-case properties what the app derives from them.
    """

    API_BASE_URL: str
    TIMEOUT: float | tuple[float, float]
    MAX_RETRIES: int
    TOKEN_PROVIDER: str | type  # as configured; mfa_settings.TOKEN_PROVIDER is the class
    ISSUER: str
    CLIENT_ID: str | None
    # Kept out of repr: error reports show the local variables that hold settings.
    CLIENT_SECRET: str | None = field(repr=False)
    TOKEN_ENCRYPTION_KEYS: str | bytes | tuple[str | bytes, ...] | None = field(repr=False)
    REQUEST_TTL: float
    APPROVAL_MAX_AGE: float
    MIN_REFRESH_INTERVAL: float
    WATCHED_REFRESH_INTERVAL: float
    START_RATE_LIMIT: str | None
    DENIAL_COOLDOWN: float
    TEMPLATE_ID: int
    BASE_TEMPLATE: str
    POLL_INTERVAL: float
    REFRESH_AFTER_START: float | None
    ADAPTER: str | type  # as configured; mfa_settings.ADAPTER is the class
    REAUTHENTICATE_URL: str | None
    METRICS_TOKEN: str | None = field(repr=False)

    @classmethod
    def from_django(cls) -> Settings:
        """The current ``HYPERID_MFA``; raises HyperIDConfigurationError if it is wrong."""
        raw = getattr(settings, SETTING_NAME, None)
        errors = checks.value_errors(raw)
        if errors:
            raise _refusal(errors)
        # Tuples, not lists: what one reader holds, no other can change.
        values: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in {**DEFAULTS, **(raw or {})}.items()
        }
        return cls(**values)

    @cached_property
    def token_provider(self) -> Any:
        provider, errors = checks.load_token_provider(self.TOKEN_PROVIDER)
        if errors:
            raise _refusal(errors)
        return provider

    @cached_property
    def adapter_class(self) -> Any:
        adapter, errors = checks.load_adapter(self.ADAPTER)
        if errors:
            raise _refusal(errors)
        return adapter

    @cached_property
    def timeout(self) -> tuple[float, float]:
        """``TIMEOUT`` as a (connect, read) pair; a single number sets both."""
        if isinstance(self.TIMEOUT, tuple):
            connect, read = self.TIMEOUT
            return (float(connect), float(read))
        return (float(self.TIMEOUT), float(self.TIMEOUT))

    @cached_property
    def start_rate(self) -> Rate | None:
        return wire.parse_rate(self.START_RATE_LIMIT)

    @cached_property
    def token_endpoint(self) -> str:
        return self.ISSUER.rstrip("/") + TOKEN_ENDPOINT_PATH

    @property
    def keys_are_derived(self) -> bool:
        return not self.TOKEN_ENCRYPTION_KEYS

    @cached_property
    def key_ring(self) -> crypto.KeyRing:
        # Read at first use, not at build: SECRET_KEY matters only to derived keys.
        configured = self.TOKEN_ENCRYPTION_KEYS
        if isinstance(configured, (str, bytes)):
            configured = (configured,)
        if configured:
            return crypto.KeyRing(tuple(crypto.check_key(key) for key in configured))
        # No SECRET_KEY at all is Django's error to raise (it does, on this read).
        secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
        return crypto.KeyRing.derived(secrets)

    def value(self, name: str) -> Any:
        """What ``mfa_settings.<name>`` reads: the field, import strings resolved."""
        if name == "TOKEN_PROVIDER":
            return self.token_provider
        if name == "ADAPTER":
            return self.adapter_class
        return getattr(self, name)


class MFASettings:
    """Attribute access to the current :class:`Settings`; see the module docstring.

    The annotations below say what each ``mfa_settings.<NAME>`` reads: the field of
    :class:`Settings`, with the import strings resolved to what they name. They are
    annotations only (no class attribute), so a read goes through ``__getattr__``
    until its value is kept.
    """

    API_BASE_URL: str
    TIMEOUT: float | tuple[float, float]
    MAX_RETRIES: int
    # What the import strings name, checked by E005 and E011; typed where they are
    # used (adapter.get_token_provider, get_adapter): naming the adapter's types here
    # would make this module and the adapter import each other.
    TOKEN_PROVIDER: object
    ISSUER: str
    CLIENT_ID: str | None
    CLIENT_SECRET: str | None
    TOKEN_ENCRYPTION_KEYS: str | bytes | tuple[str | bytes, ...] | None
    REQUEST_TTL: float
    APPROVAL_MAX_AGE: float
    MIN_REFRESH_INTERVAL: float
    WATCHED_REFRESH_INTERVAL: float
    START_RATE_LIMIT: str | None
    DENIAL_COOLDOWN: float
    TEMPLATE_ID: int
    BASE_TEMPLATE: str
    POLL_INTERVAL: float
    REFRESH_AFTER_START: float | None
    ADAPTER: type
    REAUTHENTICATE_URL: str | None
    METRICS_TOKEN: str | None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Settings | None = None
        self._generation = 0

    def current(self) -> Settings:
        """The settings in force, built now if they changed since the last read."""
        current = self._current
        if current is None:
            generation = self._generation
            current = Settings.from_django()
            with self._lock:
                # A change that came while this was built leaves it uncached.
                if generation == self._generation:
                    self._current = current
        return current

    def __getattr__(self, name: str) -> Any:
        # Reached only for a value not read since the last change.
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid {SETTING_NAME} setting: {name!r}")
        current = self.current()
        value = current.value(name)
        with self._lock:
            if current is self._current:
                self.__dict__[name] = value
        return value

    def reload(self) -> None:
        """Forget the settings and every value read from them."""
        with self._lock:
            self._generation += 1
            self._current = None
            for name in DEFAULTS:
                self.__dict__.pop(name, None)


mfa_settings = MFASettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in {SETTING_NAME, "SECRET_KEY", "SECRET_KEY_FALLBACKS"}:
        mfa_settings.reload()


setting_changed.connect(_reload, dispatch_uid="hyperid_mfa.conf.reload")


# --- derived values ---------------------------------------------------------------


def timeout() -> tuple[float, float]:
    """``TIMEOUT`` as a (connect, read) pair; a single number sets both."""
    return mfa_settings.current().timeout


def parse_rate(value: str | None) -> Rate | None:
    """``"5/10m"`` (5 per 10 minutes), ``"3/h"``, ``"10/30s"``; None disables.

    :func:`hyperid_mfa.client.wire.parse_rate`, raising HyperIDConfigurationError.
    """
    try:
        return wire.parse_rate(value)
    except ValueError as err:
        message = str(err)
        raise HyperIDConfigurationError(f"{message[:1].upper()}{message[1:]}.") from err


def start_rate() -> Rate | None:
    return mfa_settings.current().start_rate


def key_ring() -> crypto.KeyRing:
    """The keys that encrypt and decrypt stored tokens."""
    return mfa_settings.current().key_ring


def encryption_keys() -> tuple[bytes, ...]:
    """The Fernet keys, newest first (without the decrypt-only legacy keys)."""
    return key_ring().keys


def keys_are_derived() -> bool:
    return mfa_settings.current().keys_are_derived


def token_endpoint() -> str:
    return mfa_settings.current().token_endpoint
