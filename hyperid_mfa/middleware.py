"""``MFAApprovalMiddleware``: answers ``require_approval`` in plain Django views.

::

    MIDDLEWARE = [..., "hyperid_mfa.middleware.MFAApprovalMiddleware"]

When ``require_approval`` cannot let a view go on, it raises
:class:`~hyperid_mfa.exceptions.MFAApprovalRequired`. DRF answers that exception
itself, as it answers the permission ``MFAApproved``; a plain Django view needs this
middleware, which answers it exactly as ``@require_mfa_approval`` would
(:func:`hyperid_mfa.gate.rendering.respond`): the approval page, whose script sends the
form again once the user approves, or JSON for clients that ask for JSON.

It also marks each request it sees, so that ``require_approval`` in a site without
it refuses at once, with an ERROR line saying to add it, instead of sending a push
whose code nobody would see (system check ``hyperid_mfa.W031`` warns at start-up).
Sync and async: it takes the mode of the handler around it, as Django's own do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from .exceptions import MFAApprovalRequired
from .gate import rendering
from .gate.fingerprint import django_request

#: Where the middleware is named in MIDDLEWARE.
PATH = "hyperid_mfa.middleware.MFAApprovalMiddleware"

_MARK = "_hyperid_mfa_answers_approvals"


def answers(request: Any) -> bool:
    """Whether ``MFAApprovalMiddleware`` saw ``request`` on its way to the view."""
    return getattr(django_request(request), _MARK, False) is True


class MFAApprovalMiddleware:
    """Answers :class:`~hyperid_mfa.exceptions.MFAApprovalRequired` raised by a view
    as the decorator would (see the module docstring)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        setattr(request, _MARK, True)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> Any:
        setattr(request, _MARK, True)
        return await self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        # Django calls this in a thread of its own under ASGI too (sync_to_async).
        if not isinstance(exception, MFAApprovalRequired):
            return None
        response: HttpResponseBase = rendering.respond(request, exception.decision)
        return response
