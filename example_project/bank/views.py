"""The bank's pages: sign-in with HyperID, the transfer form (validated, then approved on
the phone), the transfers."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hyperid_mfa import require_approval
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
@transaction.non_atomic_requests  # the approval is consumed outside the transaction below
def transfer(request: HttpRequest) -> HttpResponse:
    """The transfer form: validated first, then approved on the phone, then made.

    An invalid form comes back with its errors and sends no push. A valid one asks for
    the approval of exactly this amount and payee: the approval page sends the form
    again once the phone approves it, and ``require_approval`` then returns, once.
    """
    form = TransferForm(request.POST if request.method == "POST" else None)
    if not form.is_valid():
        return render(request, "bank/transfer.html", {"form": form})
    values = form.cleaned_data
    require_approval(request, "bank.transfer", values=values, question=transfer_question(**values))
    with transaction.atomic():
        made = Transfer.objects.create(
            user=request.user,
            amount=values["amount"],
            payee=values["payee"],
            channel=Transfer.Channel.WEB,
        )
    messages.success(request, f"Transferred {made.amount:.2f} EUR to {made.payee}.")
    # Redirect after POST: reloading the list cannot submit the transfer again.
    return redirect("transfers")


@login_required
def transfers(request: HttpRequest) -> HttpResponse:
    rows = Transfer.objects.filter(user=request.user)
    return render(request, "bank/transfers.html", {"transfers": rows})
