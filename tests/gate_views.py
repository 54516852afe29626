"""Gated views of every kind an integrator writes, for the gate's tests.

Each records a run in ``RUNS`` so tests can tell whether (and how often) it ran.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse, QueryDict
from django.middleware.csrf import get_token
from django.urls import path
from django.utils.decorators import method_decorator
from django.utils.html import escape
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework import generics, serializers, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from hyperid_mfa.decorators import require_mfa_approval
from hyperid_mfa.mixins import MFAApprovalRequiredMixin
from hyperid_mfa.permissions import MFAApproved

RUNS: list[tuple[str, str | None]] = []

ACTION = "payments.withdraw"


def question(request, *args, **kwargs):
    return f"Withdraw {request.POST['amount']} EUR to {request.POST['payee']}?"


def _amount(request):
    data = getattr(request, "data", None)
    if data is not None:
        return str(data.get("amount"))
    return request.POST.get("amount") or request.GET.get("amount")


def runs(kind):
    """The amounts each run of the views of ``kind`` read, in order."""
    return [amount for ran_kind, amount in RUNS if ran_kind == kind]


def ran(kind, request):
    RUNS.append((kind, _amount(request)))
    return {"ran": kind, "amount": _amount(request)}


# --- plain Django ----------------------------------------------------------------------


@require_mfa_approval(ACTION, question=question, bind=("amount", "payee"))
def function_view(request):
    return JsonResponse(ran("function", request))


@require_mfa_approval(ACTION)
def default_binding_view(request):
    return JsonResponse(ran("default", request))


@require_mfa_approval(ACTION, bind=("payee", "amount"))
def named_binding_view(request):
    """Binds two fields by name and words no question: the default names them."""
    return JsonResponse(ran("named", request))


@require_mfa_approval(
    ACTION, bind=lambda request: {"amount": request.POST["amount"], "to": request.POST["payee"]}
)
def callable_binding_view(request):
    return JsonResponse(ran("callable", request))


def _decimal_amount(request):
    return Decimal(request.POST["amount"])


@require_mfa_approval(
    ACTION,
    bind=("amount",),
    question=lambda request: f"Withdraw {_decimal_amount(request):.2f} EUR?",
)
def decimal_question_view(request):
    """Words its question from the amount as a Decimal, which the request may not hold."""
    return JsonResponse(ran("decimal", request))


class BindValuesMixinView(MFAApprovalRequiredMixin, View):
    mfa_action = ACTION

    def get_mfa_bind_values(self, request):
        return {"amount": request.POST["amount"], "to": request.POST["payee"]}

    def post(self, request):
        return JsonResponse(ran("bind-values-mixin", request))


class BindValuesAPIView(APIView):
    permission_classes = [IsAuthenticated, MFAApproved]
    mfa_action = ACTION

    def get_mfa_bind_values(self, request):
        return {"amount": request.data["amount"], "to": request.data["payee"]}

    def post(self, request):
        return Response(ran("drf-bind-values", request))


@require_mfa_approval(
    "payouts.to_iban",
    window=300,
    scope="iban-payouts",
    bind=lambda request: {"iban": request.POST["iban"]},
)
def window_callable_view(request):
    """A window kept to the IBAN a callable binds: its question names that IBAN."""
    return JsonResponse(ran("window-callable", request))


@require_mfa_approval
def bare_view(request):
    return JsonResponse(ran("bare", request))


@require_mfa_approval("reports.export")
def get_view(request):
    return HttpResponse(f"exported {request.GET.get('month')}")


class DecoratedClassView(View):
    @method_decorator(require_mfa_approval(ACTION, question=question, bind=("amount", "payee")))
    def post(self, request):
        return JsonResponse(ran("class", request))


class MixinView(MFAApprovalRequiredMixin, View):
    mfa_action = ACTION
    mfa_bind = ("amount", "payee")

    def get_mfa_question(self, request):
        return question(request)

    def get(self, request):
        return HttpResponse("the form")

    def post(self, request):
        return JsonResponse(ran("mixin", request))


@require_mfa_approval(ACTION, question=question, bind=("amount", "payee"))
async def async_view(request):
    return JsonResponse(ran("async", request))


class AsyncMixinView(MFAApprovalRequiredMixin, View):
    mfa_action = ACTION
    mfa_bind = ("amount", "payee")

    async def post(self, request):
        return JsonResponse(ran("async-mixin", request))


# --- DRF ---------------------------------------------------------------------------------


class DecoratedAPIView(APIView):
    permission_classes = [IsAuthenticated]

    @require_mfa_approval(ACTION, bind=("amount", "payee"))
    def post(self, request):
        return Response(ran("drf-method", request))


class PermissionAPIView(APIView):
    permission_classes = [IsAuthenticated, MFAApproved]
    mfa_action = ACTION
    mfa_bind = ("amount", "payee")

    def get(self, request):
        return Response({"balance": 1000})

    def post(self, request):
        return Response(ran("drf-permission", request))


class WithdrawalSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    payee = serializers.CharField()


class PermissionGenericView(generics.GenericAPIView):
    """OPTIONS on a generic view describes its POST action, asking the permissions."""

    permission_classes = [IsAuthenticated, MFAApproved]
    serializer_class = WithdrawalSerializer
    mfa_action = ACTION

    def post(self, request):
        return Response(ran("drf-generic", request))


@api_view(["POST"])
@require_mfa_approval(ACTION, bind=("amount", "payee"))
def drf_function_view(request):
    return Response(ran("drf-function", request))


class AccountViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]

    @action(detail=False, methods=["post"])
    @require_mfa_approval(ACTION, bind=("amount", "payee"))
    def withdraw(self, request):
        return Response(ran("drf-action", request))


class PermissionViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated, MFAApproved]
    mfa_action = ACTION
    mfa_bind = ("amount", "payee")

    @action(detail=False, methods=["post"])
    def withdraw(self, request):
        return Response(ran("drf-permission-action", request))


@require_mfa_approval(ACTION, bind=("amount", "payee"), methods=("POST",))
def withdraw_form_view(request):
    """The usual pair: GET shows the form (ungated), POST acts (gated)."""
    if request.method == "POST":
        return JsonResponse(ran("form-view", request))
    return HttpResponse("<form method='post'>the withdrawal form</form>")


# --- views that read the body themselves ------------------------------------------------


@require_mfa_approval(ACTION, bind=("amount", "payee"))
def json_body_view(request):
    """Reads a JSON body whatever the Content-Type says, as many API views do."""
    data = json.loads(request.body)
    RUNS.append(("json-body", str(data["amount"])))
    return JsonResponse({"ran": "json-body", "amount": data["amount"], "payee": data["payee"]})


class LimitView(MFAApprovalRequiredMixin, View):
    """Changes a card limit with PUT, PATCH or DELETE and a form body, which Django
    does not parse for methods other than POST: the view parses it."""

    mfa_action = "cards.limit"

    def put(self, request):
        limit = QueryDict(request.body).get("limit")
        RUNS.append(("limit", limit))
        return JsonResponse({"ran": "limit", "limit": limit})

    patch = put
    delete = put


@login_required
def plain_view(request):
    """The same work as function_view, without the gate (to count queries).

    A sensitive view serves signed-in users only, so it loads the session and the
    user in any case; the gate's own cost is what comes on top of that.
    """
    return JsonResponse(ran("plain", request))


TRANSFER_FORM = """<!DOCTYPE html>
<html><head><title>Transfer</title></head><body>
<form method="post" action="/gate/transfer/">
  <input type="hidden" name="csrfmiddlewaretoken" value="{token}">
  <label>Amount <input name="amount" id="amount"></label>
  <label>Payee <input name="payee" id="payee"></label>
  <button type="submit" id="send">Transfer</button>
</form></body></html>"""


@login_required
def transfer_form(request):
    return HttpResponse(TRANSFER_FORM.format(token=get_token(request)))


@require_mfa_approval(ACTION, question=question, bind=("amount", "payee"))
def transfer(request):
    ran("transfer", request)
    return HttpResponse(
        f"<p id='result'>Transferred {request.POST['amount']} EUR to {request.POST['payee']}</p>"
    )


@require_mfa_approval("statements.send")
def statement(request, account):
    """Routed at the root of the URLconf with a first segment of any text
    (tests/urls.py), as sites with per-account URLs are."""
    RUNS.append(("statement", account))
    return HttpResponse(f"<p id='result'>Statement of {escape(account)} sent</p>")


def _signed(upload):
    digest = hashlib.sha256(upload.read()).hexdigest()
    return {"ran": "sign", "name": upload.name, "sha256": digest}


@require_mfa_approval("documents.sign", bind=["document"])
def sign_document(request):
    """Binds an upload by its field name: its file name, size and content."""
    signed = _signed(request.FILES["document"])
    RUNS.append(("sign", signed["sha256"]))
    return JsonResponse(signed)


class SignDocumentAPIView(APIView):
    permission_classes = [IsAuthenticated, MFAApproved]
    mfa_action = "documents.sign"
    mfa_bind = ("document",)

    def post(self, request):
        signed = _signed(request.FILES["document"])
        RUNS.append(("drf-sign", signed["sha256"]))
        return Response(signed)


@sensitive_post_parameters("new_password")
@require_mfa_approval("account.password", question="Change your password?")
def password_view(request):
    """A form Django is told holds a secret (``sensitive_post_parameters``)."""
    return JsonResponse(ran("password", request))


urlpatterns = [
    path("transfer-form/", transfer_form),
    path("transfer/", transfer),
    path("function/", function_view),
    # The same gated view at a second path (an alias, an old URL kept working).
    path("function-again/", function_view),
    path("default/", default_binding_view),
    path("named/", named_binding_view),
    path("callable/", callable_binding_view),
    path("decimal/", decimal_question_view),
    path("bind-values-mixin/", BindValuesMixinView.as_view()),
    path("drf-bind-values/", BindValuesAPIView.as_view()),
    path("window-callable/", window_callable_view),
    path("bare/", bare_view),
    path("export/", get_view),
    path("class/", DecoratedClassView.as_view()),
    path("mixin/", MixinView.as_view()),
    path("async/", async_view),
    path("async-mixin/", AsyncMixinView.as_view()),
    path("drf-method/", DecoratedAPIView.as_view()),
    path("drf-permission/", PermissionAPIView.as_view()),
    path("drf-function/", drf_function_view),
    path("drf-generic/", PermissionGenericView.as_view()),
    path("drf-action/", AccountViewSet.as_view({"post": "withdraw"})),
    path("drf-permission-action/", PermissionViewSet.as_view({"post": "withdraw"})),
    path("plain/", plain_view),
    path("json-body/", json_body_view),
    path("form-view/", withdraw_form_view),
    path("limit/", LimitView.as_view()),
    path("sign/", sign_document),
    path("drf-sign/", SignDocumentAPIView.as_view()),
    path("password/", password_view),
]
