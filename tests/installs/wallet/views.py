from typing import Any

from django import forms
from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated

from hyperid_mfa.decorators import require_mfa_approval
from hyperid_mfa.permissions import MFAApproved

from .models import Transfer

#: The app that signs users in with HyperID -> how home.html links to it.
SIGN_IN_APPS = {"allauth.socialaccount": "allauth", "mozilla_django_oidc": "oidc"}


class TransferForm(forms.Form):
    amount = forms.DecimalField(min_value=1, decimal_places=2)
    payee = forms.CharField(max_length=100)


def home(request: HttpRequest) -> HttpResponse:
    """The front page, with the project's "Sign in with HyperID" button."""
    sign_in = next((name for app, name in SIGN_IN_APPS.items() if apps.is_installed(app)), None)
    return render(request, "wallet/home.html", {"sign_in": sign_in})


@login_required
@require_mfa_approval(
    "wallet.transfer",
    methods=("POST",),
    question=lambda request: f"Transfer {request.POST['amount']} EUR to {request.POST['payee']}?",
    bind=("amount", "payee"),
)
def transfer(request: HttpRequest) -> HttpResponse:
    form = TransferForm(request.POST or None)
    if form.is_valid():
        made = Transfer.objects.create(user=request.user, **form.cleaned_data)
        return HttpResponse(f'<p id="result">Transferred {made}.</p>')
    return render(request, "wallet/transfer.html", {"form": form})


class TransferSerializer(serializers.ModelSerializer):
    class Meta:
        model = Transfer
        fields = ["id", "amount", "payee", "channel"]


class TransferAPI(generics.CreateAPIView):
    serializer_class = TransferSerializer
    permission_classes = [IsAuthenticated, MFAApproved]
    mfa_action = "wallet.transfer"
    mfa_bind = ("amount", "payee")

    def perform_create(self, serializer: Any) -> None:
        serializer.save(user=self.request.user, channel="api")
