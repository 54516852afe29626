"""Per-user throttles of the API, one scope per kind of call.

Each scope's rate comes from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` when the
project names it there (``None`` turns the throttle off), and otherwise from the
default below: DRF's own scoped throttles raise ``ImproperlyConfigured`` for a scope
without a rate, and an installed app must not demand settings before it works.

==================  =================================  =========
scope               endpoints                          default
==================  =================================  =========
hyperid_mfa_list    request-list                       60/min
hyperid_mfa_poll    request-detail, status-get         300/min
hyperid_mfa_cancel  request-cancel                     30/min
==================  =================================  =========

A page polling every ``POLL_INTERVAL`` (0.5 s, after each answer) makes under 120
reads a minute; 300 leaves room for a second tab and a mobile client at once, and
still bounds what one account can cost the database. Requests are counted per user
(per IP for the anonymous, who are refused before the throttle runs anyway).
"""

from __future__ import annotations

from typing import cast

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from ..services import dependencies

LIST_SCOPE = "hyperid_mfa_list"
POLL_SCOPE = "hyperid_mfa_poll"
CANCEL_SCOPE = "hyperid_mfa_cancel"

DEFAULT_RATES: dict[str, str] = {
    LIST_SCOPE: "60/min",
    POLL_SCOPE: "300/min",
    CANCEL_SCOPE: "30/min",
}


class MFARateThrottle(UserRateThrottle):
    """A ``UserRateThrottle`` whose scope has a working default rate.

    Its counts live in Django's cache: a cache that fails raises
    :class:`~hyperid_mfa.exceptions.CacheUnavailable` (the API answers 503), so a
    throttle that cannot count does not let every request through.
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        with dependencies.using_cache():
            return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        # Read at every request, not from the class attribute THROTTLE_RATES that DRF
        # binds at import time: override_settings and late settings changes apply.
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        if self.scope in rates:
            return cast("str | None", rates[self.scope])
        return DEFAULT_RATES[str(self.scope)]


class ListThrottle(MFARateThrottle):
    scope = LIST_SCOPE


class PollThrottle(MFARateThrottle):
    scope = POLL_SCOPE


class CancelThrottle(MFARateThrottle):
    scope = CANCEL_SCOPE
