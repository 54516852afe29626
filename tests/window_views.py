"""Gated views with approval windows, for tests/test_windows.py.

Each records a run in ``RUNS`` as (view, amount) so tests can tell which ran, and
with what.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import path
from django.views import View
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from hyperid_mfa.decorators import require_mfa_approval
from hyperid_mfa.mixins import MFAApprovalRequiredMixin
from hyperid_mfa.permissions import MFAApproved

RUNS: list[tuple[str, str | None]] = []

FIVE_MINUTES = 300


def ran(name, request):
    data = getattr(request, "data", None)
    amount = data.get("amount") if data is not None else request.POST.get("amount")
    RUNS.append((name, amount))
    return {"ran": name, "amount": amount}


def runs(name):
    return [amount for ran_name, amount in RUNS if ran_name == name]


@require_mfa_approval("payouts.send", window=FIVE_MINUTES, scope="payouts")
def send_payout(request):
    return JsonResponse(ran("send", request))


@require_mfa_approval("payouts.change_limit", window=FIVE_MINUTES, scope="payouts")
def change_limit(request):
    return JsonResponse(ran("limit", request))


@require_mfa_approval("payouts.to_account", window=FIVE_MINUTES, scope="payouts", bind=("account",))
def pay_account(request):
    """Binds the account explicitly: inside a window, only the window's account runs."""
    return JsonResponse(ran("account", request))


@require_mfa_approval("payouts.urgent", window=60, scope="payouts")
def urgent_payout(request):
    """Of the same scope, but accepts a window only within a minute of its approval."""
    return JsonResponse(ran("urgent", request))


@require_mfa_approval("reports.export", window=FIVE_MINUTES, scope="reports")
def export_report(request):
    return JsonResponse(ran("export", request))


@require_mfa_approval("payouts.refund", window=FIVE_MINUTES)
def refund(request):
    """A window without scope=: its scope is its own action."""
    return JsonResponse(ran("refund", request))


@require_mfa_approval("payouts.close_account")
def close_account(request):
    """Of the payouts module, but without window=: every run needs its own approval."""
    return JsonResponse(ran("close", request))


@require_mfa_approval(
    "payouts.send_async", window=FIVE_MINUTES, scope="payouts", question="Allow payout changes?"
)
async def send_payout_async(request):
    return JsonResponse(ran("async", request))


class PayoutMixinView(MFAApprovalRequiredMixin, View):
    mfa_action = "payouts.mixin"
    mfa_window = FIVE_MINUTES
    mfa_scope = "payouts"

    def post(self, request):
        return JsonResponse(ran("mixin", request))


class PayoutAPIView(APIView):
    permission_classes = [IsAuthenticated, MFAApproved]
    mfa_action = "payouts.api"
    mfa_window = FIVE_MINUTES
    mfa_scope = "payouts"

    def post(self, request):
        return Response(ran("drf", request))


urlpatterns = [
    path("send/", send_payout),
    path("limit/", change_limit),
    path("account/", pay_account),
    path("urgent/", urgent_payout),
    path("export/", export_report),
    path("refund/", refund),
    path("close/", close_account),
    path("async/", send_payout_async),
    path("mixin/", PayoutMixinView.as_view()),
    path("drf/", PayoutAPIView.as_view()),
]
