"""The views the benchmarks compare the app's against."""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hyperid_mfa.decorators import require_mfa_approval
from hyperid_mfa.models import MFARequest

#: The actions the gated views ask approval for.
GATED_ACTION = "bench.trivial"
WRITE_ACTION = "bench.write"
SCALE_ACTION = "bench.act"
LATENCY_ACTION = "bench.latency"


def health(request: HttpRequest) -> HttpResponse:
    """For the harness to know that the server answers."""
    return HttpResponse(b"ok", content_type="text/plain")


@login_required
def plain_view(request: HttpRequest) -> HttpResponse:
    """A trivial view: the least a signed-in POST can cost."""
    return HttpResponse(b"done", content_type="text/plain")


@login_required
@require_mfa_approval(GATED_ACTION)
def gated_view(request: HttpRequest) -> HttpResponse:
    """The same trivial view behind the gate (default binding: the whole request)."""
    return HttpResponse(b"done", content_type="text/plain")


@login_required
def otp_view(request: HttpRequest) -> HttpResponse:
    """The same trivial view behind django-otp's single-use check, the gate's peer: the
    user's static device consumes the token posted as ``otp_token`` (``verify_token``
    deletes it), as django-otp's verification form does with the device it is given."""
    # Imported here: the harness's smoke tests import this module on the test suite's
    # settings, where django-otp is installed only for case 2's test.
    from django_otp.plugins.otp_static.models import StaticDevice

    device = StaticDevice.objects.devices_for_user(request.user, confirmed=True).first()
    if device is None or not device.verify_token(request.POST.get("otp_token", "")):
        return HttpResponse(b"refused", status=403, content_type="text/plain")
    return HttpResponse(b"done", content_type="text/plain")


def _act(request: HttpRequest) -> HttpResponse:
    # The least a view worth gating does: write one row. (login_required let only a
    # signed-in user through.)
    user_id: Any = request.user.pk
    get_user_model()._default_manager.filter(pk=user_id).update(last_login=timezone.now())
    return HttpResponse(b"done", content_type="text/plain")


@login_required
def plain_write_view(request: HttpRequest) -> HttpResponse:
    """A view that acts: it writes one row (the user's ``last_login``)."""
    return _act(request)


@login_required
@require_mfa_approval(WRITE_ACTION)
def gated_write_view(request: HttpRequest) -> HttpResponse:
    """The same view that acts, behind the gate."""
    return _act(request)


@csrf_exempt  # driven by the load generators of the several-server runs, not a browser
@login_required
@require_mfa_approval(SCALE_ACTION, methods=("POST",))
def act_view(request: HttpRequest) -> HttpResponse:
    """An action the several-server runs count: each run appends the posted ``order``
    (bound by the approval, with the rest of the body) and this process's id to
    ``ACTION_LOG``, one line in one ``O_APPEND`` write, which the kernel keeps whole
    across the servers' processes."""
    order = request.POST.get("order", "")
    line = f"{order} {request.user.pk} {os.getpid()}\n".encode()
    descriptor = os.open(
        getattr(settings, "ACTION_LOG", ""), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
    )
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)
    return HttpResponse(b"done", content_type="text/plain")


class BareRequestSerializer(serializers.ModelSerializer[MFARequest]):
    class Meta:
        model = MFARequest
        fields = (
            "id",
            "transaction_id",
            "action",
            "question",
            "code",
            "status",
            "complete_result",
            "created_at",
            "expires_at",
            "completed_at",
            "consumed_at",
        )


class BareRequestView(APIView):
    """One of the user's MFA requests, serialised: one query, no throttle, no extras.

    The least a DRF endpoint over this table can do while still showing a user only
    their own rows.
    """

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]

    def get(self, request: Request, pk: Any) -> Response:
        row = MFARequest.objects.for_user(request.user).filter(pk=pk).first()
        if row is None:
            raise NotFound()
        return Response(BareRequestSerializer(row).data)


@login_required
@require_mfa_approval(LATENCY_ACTION, methods=("POST",))
def latency_view(request: HttpRequest) -> HttpResponse:
    """Case 7's action: GET, a form that posts here; POST, gated, says when it ran
    (this machine's clock, which the harness shares), in ``#ran``."""
    if request.method == "POST":
        ran = f'<!doctype html><title>ran</title><p id="ran">{time.time():.6f}</p>'
        return HttpResponse(ran.encode())
    form = (
        '<!doctype html><title>send</title><form method="post">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{get_token(request)}">'
        '<input name="trial" id="trial" value="0"><button id="send">Send</button></form>'
    )
    return HttpResponse(form.encode())
