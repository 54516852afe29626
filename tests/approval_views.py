"""Views that validate first, then ask: ``require_approval`` in every kind of view,
for tests/test_approval.py.

Each validates a withdrawal (an amount and a payee), answers invalid input itself,
and records in ``RUNS`` each time it acted, with the values it acted on.
"""

from __future__ import annotations

from decimal import Decimal

from asgiref.sync import sync_to_async
from django import forms
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path
from django.utils.decorators import method_decorator
from django.utils.html import escape
from django.views import View
from django.views.generic import FormView
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from hyperid_mfa import require_approval
from hyperid_mfa.permissions import MFAApproved

ACTION = "payments.withdraw"
CENT = Decimal("0.01")

#: (kind, amount, payee) of each time a view acted.
RUNS: list[tuple[str, str, str]] = []


def runs(kind: str) -> list[tuple[str, str]]:
    return [(amount, payee) for ran, amount, payee in RUNS if ran == kind]


class WithdrawForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)
    payee = forms.CharField(max_length=100)


class WithdrawSerializer(serializers.Serializer):
    amount = serializers.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)
    payee = serializers.CharField()  # no limit: a long one makes the question too long


def act(kind: str, values) -> dict[str, str]:
    # In cents: DRF's DecimalField gives 500.00 where a form gives 500.
    RUNS.append((kind, str(Decimal(str(values["amount"])).quantize(CENT)), values["payee"]))
    return {"ran": kind, "amount": str(values["amount"]), "payee": values["payee"]}


def invalid(form: forms.Form) -> JsonResponse:
    return JsonResponse({"errors": form.errors.get_json_data()}, status=400)


# --- plain Django ------------------------------------------------------------------------


@login_required
def withdraw(request):
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    require_approval(request, ACTION, values=form.cleaned_data)
    return JsonResponse(act("function", form.cleaned_data))


class WithdrawView(View):
    def post(self, request):
        form = WithdrawForm(request.POST)
        if not form.is_valid():
            return invalid(form)
        require_approval(request, ACTION, values=form.cleaned_data)
        return JsonResponse(act("class", form.cleaned_data))


class WithdrawFormView(FormView):
    form_class = WithdrawForm
    template_name = "unused.html"

    def form_invalid(self, form):
        return invalid(form)

    def form_valid(self, form):
        require_approval(self.request, ACTION, values=form.cleaned_data)
        return JsonResponse(act("form-view", form.cleaned_data))


async def withdraw_async(request):
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    await sync_to_async(require_approval)(request, ACTION, values=form.cleaned_data)
    return JsonResponse(act("async", form.cleaned_data))


@login_required
def withdraw_with_question(request):
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    values = form.cleaned_data
    question = f"Withdraw {values['amount']} EUR to {values['payee']}?"
    require_approval(request, ACTION, values=values, question=question)
    return JsonResponse(act("question", values))


@login_required
def withdraw_body_bound(request):
    """No values=: the body is bound whole, as the decorator binds it."""
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    require_approval(request, ACTION)
    return JsonResponse(act("body", form.cleaned_data))


@login_required
def withdraw_in_window(request):
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    require_approval(request, ACTION, values=form.cleaned_data, window=300, scope="payouts")
    return JsonResponse(act("window", form.cleaned_data))


@login_required
def withdraw_inside_atomic(request):
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    with transaction.atomic():  # wrong: the approval would be consumed inside it
        require_approval(request, ACTION, values=form.cleaned_data)
        return JsonResponse(act("inside-atomic", form.cleaned_data))


def withdraw_in_atomic_requests(request):
    """Left inside ATOMIC_REQUESTS: refused, and named by check E009."""
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    require_approval(request, ACTION, values=form.cleaned_data)
    return JsonResponse(act("atomic-requests", form.cleaned_data))


@transaction.non_atomic_requests
def withdraw_non_atomic(request):
    """What docs/gate.md says to write under ATOMIC_REQUESTS."""
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    require_approval(request, ACTION, values=form.cleaned_data)
    with transaction.atomic():
        return JsonResponse(act("non-atomic", form.cleaned_data))


WITHDRAW_PAGE = """<!DOCTYPE html>
<html><head><title>Withdraw</title></head><body>
{errors}
<form method="post" action="/approval/page/">
  <input type="hidden" name="csrfmiddlewaretoken" value="{token}">
  <label>Amount <input name="amount" id="amount" value="{amount}"></label>
  <label>Payee <input name="payee" id="payee" value="{payee}"></label>
  <button type="submit" id="send">Withdraw</button>
</form></body></html>"""


@login_required
def withdraw_page(request):
    """A form page as a browser sees it: the form again with its errors, or the result."""
    form = WithdrawForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        values = form.cleaned_data
        question = f"Withdraw {values['amount']} EUR to {values['payee']}?"
        require_approval(request, ACTION, values=values, question=question)
        act("page", values)
        return HttpResponse(
            f"<p id='result'>Sent {values['amount']} EUR to {escape(values['payee'])}</p>"
        )
    page = WITHDRAW_PAGE.format(
        errors=f"<div id='errors'>{form.errors}</div>" if form.errors else "",
        token=get_token(request),
        amount=escape(request.POST.get("amount", "")),
        payee=escape(request.POST.get("payee", "")),
    )
    return HttpResponse(page)


# --- DRF ---------------------------------------------------------------------------------


def drf_question(amount, payee) -> str:
    return f"Withdraw {amount} EUR to {payee}?"


class WithdrawAPI(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request):
        serializer = WithdrawSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        require_approval(
            request, ACTION, values=values, question=drf_question(values["amount"], values["payee"])
        )
        return Response(act("drf", values), status=201)


class WithdrawAnonymousAPI(WithdrawAPI):
    """No IsAuthenticated: require_approval meets the anonymous user itself."""

    permission_classes: list[type] = []


class WithdrawPermissionAPI(APIView):
    """The same action behind the permission, whose answers WithdrawAPI's must equal."""

    permission_classes = [IsAuthenticated, MFAApproved]
    mfa_action = ACTION
    mfa_bind = ("amount", "payee")

    def get_mfa_question(self, request):
        return drf_question(request.data["amount"], request.data["payee"])

    def post(self, request):
        return Response(act("permission", request.data), status=201)


class WithdrawPermissionAnonymousAPI(WithdrawPermissionAPI):
    permission_classes = [MFAApproved]


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class WithdrawNonAtomicAPI(WithdrawAPI):
    pass


@login_required
def withdraw_from_account(request, account):
    """The URL argument is bound too: another account asks again."""
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    require_approval(request, ACTION, values=form.cleaned_data)
    return JsonResponse(act(f"account-{account}", form.cleaned_data))


@login_required
def withdraw_asking_twice(request):
    """A view that asks for the same approval twice in one request (a helper it calls
    asks again)."""
    form = WithdrawForm(request.POST or None)
    if not form.is_valid():
        return invalid(form)
    require_approval(request, ACTION, values=form.cleaned_data)
    require_approval(request, ACTION, values=form.cleaned_data)
    return JsonResponse(act("twice", form.cleaned_data))


urlpatterns = [
    path("function/", withdraw),
    path("class/", login_required(WithdrawView.as_view())),
    path("form-view/", login_required(WithdrawFormView.as_view())),
    path("async/", withdraw_async),
    path("question/", withdraw_with_question),
    path("body/", withdraw_body_bound),
    path("window/", withdraw_in_window),
    path("page/", withdraw_page),
    path("inside-atomic/", withdraw_inside_atomic),
    path("atomic-requests/", withdraw_in_atomic_requests),
    path("non-atomic/", withdraw_non_atomic),
    path("drf/", WithdrawAPI.as_view()),
    path("drf-anonymous/", WithdrawAnonymousAPI.as_view()),
    path("permission/", WithdrawPermissionAPI.as_view()),
    path("permission-anonymous/", WithdrawPermissionAnonymousAPI.as_view()),
    path("non-atomic-drf/", WithdrawNonAtomicAPI.as_view()),
    path("accounts/<int:account>/", withdraw_from_account),
    path("twice/", withdraw_asking_twice),
]
