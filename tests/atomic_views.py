"""Gated views under ATOMIC_REQUESTS, for tests/test_atomicity.py.

Each "pays" through an external service (a list standing for a payment API: no
transaction can take a payment back), writes a row, and fails when asked to, as a
view does whose bookkeeping breaks after the money left.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.http import JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from hyperid_mfa.decorators import require_mfa_approval
from hyperid_mfa.mixins import MFAApprovalRequiredMixin
from hyperid_mfa.permissions import MFAApproved

#: Payments that left through the "external API", by view.
PAYMENTS: list[str] = []


def pay(kind: str, request) -> dict:
    PAYMENTS.append(kind)
    Group.objects.create(name=f"ledger-{kind}-{len(PAYMENTS)}")
    if request.GET.get("fail"):
        raise RuntimeError("the bookkeeping failed after the payment")
    return {"ran": kind, "in_transaction": connection.in_atomic_block}


@require_mfa_approval("payments.pay")
def function_view(request):
    return JsonResponse(pay("function", request))


class MixinView(MFAApprovalRequiredMixin, View):
    mfa_action = "payments.pay"

    def post(self, request):
        return JsonResponse(pay("mixin", request))


class PermissionView(APIView):
    """The DRF permission cannot take its view out of ATOMIC_REQUESTS: E009."""

    permission_classes = [IsAuthenticated, MFAApproved]
    mfa_action = "payments.pay"

    def post(self, request):
        return Response(pay("permission", request))


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class NonAtomicPermissionView(PermissionView):
    """What the hint of E009 says to do."""

    def post(self, request):
        with transaction.atomic():
            return Response(pay("non-atomic-permission", request))


@transaction.non_atomic_requests
@require_mfa_approval("payments.pay")
def explicitly_non_atomic_view(request):
    return JsonResponse(pay("explicit", request))


def calls_a_gated_function_inside_atomic(request):
    with transaction.atomic():
        return function_view(request)


urlpatterns = [
    path("function/", function_view),
    path("mixin/", MixinView.as_view()),
    path("permission/", PermissionView.as_view()),
    path("non-atomic-permission/", NonAtomicPermissionView.as_view()),
    path("explicit/", explicitly_non_atomic_view),
    path("inside-atomic/", calls_a_gated_function_inside_atomic),
]
