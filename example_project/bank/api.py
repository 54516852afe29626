"""The transfer as an API: the same action behind the DRF permission ``MFAApproved``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from hyperid_mfa.api.serializers import MFAErrorSerializer
from hyperid_mfa.permissions import MFAApproved

from .models import Transfer, transfer_question


class TransferSerializer(serializers.ModelSerializer[Transfer]):
    class Meta:
        model = Transfer
        fields = ["id", "amount", "payee", "channel", "created_at"]
        read_only_fields = ["id", "channel", "created_at"]


@extend_schema_view(
    get=extend_schema(summary="Your transfers, newest first"),
    post=extend_schema(
        summary="Transfer money (after approval on the phone)",
        description="The first call sends a HyperID push and answers 403 `mfa_pending` "
        "with the two-digit code to match on the phone. Once the push is approved, "
        "the same call (same amount and payee) makes the transfer, once.",
        responses={
            201: TransferSerializer,
            403: OpenApiResponse(
                MFAErrorSerializer,
                description="`mfa_pending`: approve on the phone, then call again. "
                "`mfa_reauthenticate`: sign in with HyperID again.",
            ),
            429: OpenApiResponse(MFAErrorSerializer, description="Too many pushes."),
            503: OpenApiResponse(MFAErrorSerializer, description="HyperID unavailable."),
        },
    ),
)
class TransferListCreateView(generics.ListCreateAPIView[Transfer]):
    serializer_class = TransferSerializer
    permission_classes = [IsAuthenticated, MFAApproved]
    # The same action as the web form: one approval, one transfer, whichever way.
    mfa_action = "bank.transfer"
    mfa_bind = ("amount", "payee")

    def get_queryset(self) -> QuerySet[Transfer]:
        return Transfer.objects.filter(user=self.request.user)

    def check_permissions(self, request: Request) -> None:
        # Validate before the gate: an invalid transfer gets DRF's usual 400 and no
        # push is sent for it.
        if request.method == "POST" and request.user.is_authenticated:
            self.get_serializer(data=request.data).is_valid(raise_exception=True)
        super().check_permissions(request)

    def get_mfa_question(self, request: Request) -> str:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return transfer_question(
            serializer.validated_data["amount"], serializer.validated_data["payee"]
        )

    def perform_create(self, serializer: Any) -> None:
        serializer.save(user=self.request.user, channel=Transfer.Channel.API)
