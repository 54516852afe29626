"""The bank's pages: sign-in with HyperID, the transfer form behind the gate, the transfers."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hyperid_mfa.decorators import require_mfa_approval
from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.tokens import forget_tokens

from .forms import TransferForm
from .models import Transfer, transfer_question


def sign_in(request: HttpRequest) -> HttpResponse:
    """The "Sign in with HyperID" page: its button starts allauth's OpenID Connect login."""
    if request.user.is_authenticated:
        return redirect("home")
    return render(request, "bank/login.html", {"next": request.GET.get("next", "")})


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        # Signing out of the site ends the HyperID session too: no pushes without it.
        forget_tokens(request.user)
    logout(request)
    return redirect("login")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "hyperid_connected": HyperIDToken.objects.filter(user=request.user).exists(),
        "transfer_count": Transfer.objects.filter(user=request.user).count(),
    }
    return render(request, "bank/home.html", context)


@login_required
def transfer(request: HttpRequest) -> HttpResponse:
    """The transfer form. A valid submission goes through the gate; an invalid one
    comes back with its errors and sends no push."""
    form = TransferForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        return send_transfer(request, form)
    return render(request, "bank/transfer.html", {"form": form})


# Gated after validation rather than on the view itself: a push goes out only for a
# transfer that can run, and the approval (spent when the gate lets this run) is
# never wasted on a form that would come back with errors.
@require_mfa_approval(
    "bank.transfer",
    question=lambda request, form: transfer_question(**form.cleaned_data),
    bind=("amount", "payee"),
)
def send_transfer(request: HttpRequest, form: TransferForm) -> HttpResponse:
    """Runs once per approval: after the push for this amount and payee was approved."""
    made = Transfer.objects.create(
        user=request.user,
        amount=form.cleaned_data["amount"],
        payee=form.cleaned_data["payee"],
        channel=Transfer.Channel.WEB,
    )
    messages.success(request, f"Transferred {made.amount:.2f} EUR to {made.payee}.")
    # Redirect after POST: reloading the list cannot submit the transfer again.
    return redirect("transfers")


@login_required
def transfers(request: HttpRequest) -> HttpResponse:
    rows = Transfer.objects.filter(user=request.user)
    return render(request, "bank/transfers.html", {"transfers": rows})
