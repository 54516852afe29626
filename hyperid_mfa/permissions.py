"""``MFAApproved``: the gate as a DRF permission.

::

    class WithdrawView(APIView):
        permission_classes = [IsAuthenticated, MFAApproved]
        mfa_action = "payments.withdraw"
        mfa_bind = ("amount", "iban")

        def post(self, request): ...

It reads the same ``mfa_*`` options as ``MFAApprovalRequiredMixin`` (see
``hyperid_mfa.mixins``) and gates the unsafe methods by default. When the view may
not run, the answer is DESIGN.md's: ``{"code", "detail", "mfa_request"}`` with 403
(pending, sign in again), 429 or 503 and ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission

from . import gate as engine
from .fingerprint import SAFE_METHODS, django_request
from .mixins import gate_for_view, is_gated_method


class MFAApprovalRequired(APIException):
    """Raised by MFAApproved: carries the gate's answer as the response body."""

    status_code = 403
    default_detail = "Approval with HyperID is required."
    default_code = engine.PENDING

    def __init__(self, request: Any, answer: engine.Answer) -> None:
        super().__init__()
        self.status_code = answer.status
        # Set after __init__: APIException would turn numbers and None into strings.
        self.detail = engine.body(request, answer)
        # DRF's exception handler turns ``wait`` into a Retry-After header.
        self.wait = answer.retry_after


class MFAApproved(BasePermission):
    """Allows the request only with a fresh, unused approval of it (gated methods only)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        real_method = django_request(request).method
        if request.method != real_method:
            # DRF asks "could this user POST?" on a copy of a GET or OPTIONS request
            # (the browsable API deciding whether to show its forms, OPTIONS listing
            # the actions). Nothing is being submitted: no push, no approval spent.
            # The form's own submission comes through the gate as itself.
            return real_method in SAFE_METHODS
        if not is_gated_method(view, request):
            return True
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return False  # DRF answers 401/403 "not authenticated"
        answer = gate_for_view(view, request).check(
            request, getattr(view, "args", ()), getattr(view, "kwargs", {})
        )
        if answer.allowed:
            return True
        raise MFAApprovalRequired(request, answer)
