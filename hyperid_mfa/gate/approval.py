"""``require_approval``: the gate, asked from inside a view once its input is valid.

::

    from hyperid_mfa import require_approval


    @login_required
    def withdraw(request):
        form = WithdrawForm(request.POST or None)
        if form.is_valid():
            require_approval(request, "payments.withdraw", values=form.cleaned_data)
            ...  # approved, once: act on form.cleaned_data
        return render(request, "payments/withdraw.html", {"form": form})

Invalid input is answered by the form (or the serializer) and never sends a push.
Valid input reaches ``require_approval``, which returns only when the user approved
exactly this action with exactly these values (consuming that approval: it runs the
view once), and otherwise raises :class:`~hyperid_mfa.exceptions.MFAApprovalRequired`
carrying the gate's decision. DRF answers it as it answers the permission
``MFAApproved``; ``MFAApprovalMiddleware`` answers it in plain Django views as
``@require_mfa_approval`` would, with the approval page that sends the form again
once approved, so that the view validates again and calls ``require_approval``
again, which then consumes the approval.

It is the same gate (:class:`~hyperid_mfa.gate.Gate`) as the decorator's, with the
view's cleaned ``values`` bound instead of the body (:mod:`hyperid_mfa.gate.values`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from django.utils.functional import Promise

from .. import middleware
from ..exceptions import NOT_AUTHENTICATED, MiddlewareMissing
from . import rendering
from .decide import Gate
from .fingerprint import django_request, is_drf_request
from .values import bind_values

logger = logging.getLogger("hyperid_mfa")

MIDDLEWARE_HINT = (
    f"Add {middleware.PATH!r} to MIDDLEWARE: it answers require_approval() in plain "
    "Django views with the approval page (DRF views need nothing)."
)


def require_approval(
    request: Any,
    action: str,
    *,
    question: str | None = None,
    values: Mapping[str, Any] | None = None,
    max_age: float | None = None,
    window: int | None = None,
    scope: str | None = None,
) -> None:
    """Return once the user approved ``action`` with these very values, consuming the
    approval; otherwise raise :class:`~hyperid_mfa.exceptions.MFAApprovalRequired`.

    Call it after validating the input, outside any ``transaction.atomic()``, and act
    after it returns. An approval covers the user, ``action``, the browser session,
    the method, the path, the URL arguments, the query string and ``values``: the
    cleaned values the view acts on (a form's ``cleaned_data``, a serializer's
    ``validated_data``), bound in a canonical form instead of the body. Without
    ``values`` the body is bound whole, as ``@require_mfa_approval`` binds it.

    ``question`` is the text on the phone; by default it names every bound value.
    ``max_age``, ``window`` and ``scope`` are ``@require_mfa_approval``'s (inside a
    window, ``values`` do not apply, as the decorator's default binding does not).

    Raises ``TypeError`` at once, before anything is sent, for a value that has no
    canonical form, naming it, and for arguments of the wrong type. Async views:
    ``await sync_to_async(require_approval)(request, ...)``.
    """
    if not isinstance(django_request(request), HttpRequest):
        raise TypeError(
            f"require_approval() takes the view's request first, not {type(request).__name__}"
        )
    if question is not None and not isinstance(question, (str, Promise)):
        raise TypeError(f"question= takes the text shown on the phone, not {question!r}")
    bound = None if values is None else bind_values(values)
    gate = Gate(
        action, question=question, values=bound, max_age=max_age, window=window, scope=scope
    )
    if not is_drf_request(request) and not middleware.answers(request):
        # No push whose code nobody would see, no approval consumed: the site's mistake.
        logger.error("MFA gate %s: require_approval() cannot answer. %s", action, MIDDLEWARE_HINT)
        raise MiddlewareMissing(
            f"require_approval({action!r}) was called in a view without "
            f"MFAApprovalMiddleware. {MIDDLEWARE_HINT}"
        )
    decision = gate.check(request)
    if decision.allowed:
        return
    if decision.code == NOT_AUTHENTICATED and is_drf_request(request):
        _not_authenticated(request)
    raise rendering.approval_required(request, decision)


def _not_authenticated(request: Any) -> None:
    """DRF's own answer to an anonymous request, as ``MFAApproved`` refusing it gets."""
    from rest_framework.exceptions import NotAuthenticated, PermissionDenied

    if request.authenticators and not request.successful_authenticator:
        raise NotAuthenticated()
    raise PermissionDenied()
