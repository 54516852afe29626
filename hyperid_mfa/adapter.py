"""What a project may swap: one adapter class, chosen by the ``ADAPTER`` setting.

::

    # myproject/mfa.py
    from hyperid_mfa.adapter import MFAAdapter


    class ProxiedAdapter(MFAAdapter):
        def get_requests_session(self):
            session = super().get_requests_session()
            session.proxies = {"https": "http://proxy.internal:3128"}
            session.verify = "/etc/ssl/private-ca.pem"
            return session


    # settings.py
    HYPERID_MFA = {..., "ADAPTER": "myproject.mfa.ProxiedAdapter"}

Three things go through it: the HTTP session the HyperID client sends with (proxies,
mTLS, a private CA), the wording of the question when a gate names none, and the
token provider (where a user's HyperID access token comes from).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import requests
from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from .exceptions import HyperIDConfigurationError

DEFAULT_ADAPTER = "hyperid_mfa.adapter.MFAAdapter"


@runtime_checkable
class TokenProvider(Protocol):
    """Where a user's HyperID access token comes from (``TOKEN_PROVIDER``: a class
    instantiated without arguments). Both methods raise ``TokenUnavailable`` when
    they have nothing usable."""

    def get_access_token(self, user: Any) -> str:
        """A current access token with the ``mfa-client`` scope."""
        ...

    def refresh_access_token(self, user: Any) -> str:
        """A new access token after HyperID refused the last one."""
        ...


class MFAAdapter:
    """The default behaviour; subclass it and override what your project needs."""

    def get_requests_session(self) -> requests.Session:
        """A new ``requests.Session`` for the HyperID client (called once per client).

        Configure it as your network needs (``proxies``, ``cert``, ``verify``); the
        client adds its own transport (retries and a hard deadline per call) where
        the session uses the stock adapter.
        """
        return requests.Session()

    def format_question(
        self, request: Any, action: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> str:
        """The question on the phone when the gate was given none."""
        return gettext("Approve: %(action)s?") % {"action": action}

    def get_token_provider(self) -> TokenProvider:
        """Where users' HyperID access tokens come from (``TOKEN_PROVIDER`` by default)."""
        from .conf import mfa_settings

        provider_class = mfa_settings.TOKEN_PROVIDER
        provider = provider_class() if isinstance(provider_class, type) else provider_class
        if not isinstance(provider, TokenProvider):
            raise HyperIDConfigurationError(
                "HYPERID_MFA['TOKEN_PROVIDER'] must name a class with get_access_token(user) "
                "and refresh_access_token(user)."
            )
        return provider


@functools.cache
def _adapter_class(path: str) -> type[MFAAdapter]:
    try:
        cls = import_string(path)
    except ImportError as err:
        raise HyperIDConfigurationError(
            f"HYPERID_MFA['ADAPTER'] = {path!r} cannot be imported: {err}"
        ) from err
    if not (isinstance(cls, type) and issubclass(cls, MFAAdapter)):
        raise HyperIDConfigurationError(
            f"HYPERID_MFA['ADAPTER'] = {path!r} is not a subclass of "
            "hyperid_mfa.adapter.MFAAdapter."
        )
    return cls


def get_adapter() -> MFAAdapter:
    """The project's adapter (``HYPERID_MFA['ADAPTER']``)."""
    from .conf import mfa_settings

    return _adapter_class(getattr(mfa_settings, "ADAPTER", DEFAULT_ADAPTER))()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "HYPERID_MFA":
        _adapter_class.cache_clear()


setting_changed.connect(_reload, dispatch_uid="hyperid_mfa.adapter.reload")
