"""``MFAApproved``: the gate as a DRF permission.

::

    class WithdrawView(APIView):
        permission_classes = [IsAuthenticated, MFAApproved]
        mfa_action = "payments.withdraw"
        mfa_bind = ("amount", "iban")

        def post(self, request): ...

It reads the same ``mfa_*`` options as ``MFAApprovalRequiredMixin`` (see
``hyperid_mfa.mixins``), ``mfa_window`` and ``mfa_scope`` included, and gates the
unsafe methods by default. When the view may
not run, the answer is the gate's: ``{"code", "detail", "mfa_request"}`` with the
refusal's status (403 pending or sign in again, 429, 503 with ``Retry-After``...).
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.permissions import BasePermission

from .exceptions import MFAApprovalRequired, SiteMisconfigured
from .gate.decide import Decision
from .gate.fingerprint import SAFE_METHODS, django_request
from .gate.rendering import approval_required
from .mixins import gate_for_view, is_gated_method

logger = logging.getLogger("hyperid_mfa")

__all__ = ["MFAApprovalRequired", "MFAApproved"]


class MFAApproved(BasePermission):
    """Allows the request only with a fresh, unused approval of it (gated methods only)."""

    #: Tells the system check E009 that views with this permission run the gate.
    mfa_gated = True

    def has_permission(self, request: Any, view: Any) -> bool:
        real_method = django_request(request).method
        if request.method != real_method:
            # DRF asks "could this user POST?" on a copy of a GET or OPTIONS request
            # (the browsable API deciding whether to show its forms, OPTIONS listing
            # the actions). Nothing is being submitted: no push, no approval consumed.
            # The form's own submission comes through the gate as itself.
            return real_method in SAFE_METHODS
        if not is_gated_method(view, request):
            return True
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return False  # DRF answers 401/403 "not authenticated"
        try:
            gate = gate_for_view(view, request)
        except (TypeError, ValueError) as err:
            # Options the gate refuses (check E023 names such views): the site's mistake,
            # answered as one. The decorator and the mixin refuse them before any request.
            name = f"{type(view).__module__}.{type(view).__qualname__}"
            logger.error("MFA gate of %s: its mfa_* options are refused: %s", name, err)
            refusal = Decision.refused(SiteMisconfigured(str(err)))
            raise approval_required(request, refusal) from None
        decision = gate.check(request, getattr(view, "args", ()), getattr(view, "kwargs", {}))
        if decision.allowed:
            return True
        raise approval_required(request, decision)
