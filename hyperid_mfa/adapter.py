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
mTLS, a private CA), the wording of the question when a gate names none (also the
question that opens an approval window), and the token provider (where a user's
HyperID access token comes from).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast, runtime_checkable

import requests
from django.utils.translation import gettext, ngettext


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

    def format_question(self, request: Any, action: str, values: Mapping[str, Any]) -> str:
        """The question on the phone when the gate was given none.

        ``values`` are every value the approval binds, by name, as text, in the order
        :mod:`hyperid_mfa.gate.questions` documents (URL arguments, query string, body),
        so that the user sees what will run: "Approve payments.withdraw: amount 250,
        payee Bob?". Name them all: the user approves only what the phone shows.
        """
        shown = ", ".join(f"{name} {value}" for name, value in values.items())
        if not shown:
            return gettext("Approve %(action)s?") % {"action": action}
        return gettext("Approve %(action)s: %(values)s?") % {"action": action, "values": shown}

    def format_window_question(
        self, request: Any, action: str, values: Mapping[str, Any], *, scope: str, seconds: int
    ) -> str:
        """The question on the phone when a gate with ``window=`` was given none.

        Approving it opens a window of ``scope`` for ``seconds``: "Allow payouts for
        5 minutes?". ``values`` are the values an explicit ``bind=`` keeps the window
        to, by name (the named fields, or what a ``bind`` callable returns: "Allow
        payouts for 5 minutes: account 42?"); empty for the default binding, which
        does not apply inside a window.
        """
        context = {"scope": scope, "duration": format_duration(seconds)}
        shown = ", ".join(f"{name} {value}" for name, value in values.items())
        if not shown:
            return gettext("Allow %(scope)s for %(duration)s?") % context
        return gettext("Allow %(scope)s for %(duration)s: %(values)s?") % {
            **context,
            "values": shown,
        }

    def get_token_provider(self) -> TokenProvider:
        """Where users' HyperID access tokens come from (``TOKEN_PROVIDER`` by default)."""
        from .conf import mfa_settings

        # What TOKEN_PROVIDER names has both methods: the settings refuse it otherwise (E005).
        provider = mfa_settings.TOKEN_PROVIDER
        return cast(TokenProvider, provider() if isinstance(provider, type) else provider)


def format_duration(seconds: int) -> str:
    """``300`` -> "5 minutes": in hours, minutes or seconds, whichever is whole."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    if seconds % 60 == 0:
        minutes = seconds // 60
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}


def get_adapter() -> MFAAdapter:
    """The project's adapter (``HYPERID_MFA['ADAPTER']``, checked by E011)."""
    from .conf import mfa_settings

    adapter: MFAAdapter = mfa_settings.ADAPTER()
    return adapter
