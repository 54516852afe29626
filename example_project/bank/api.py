"""The transfer as an API: the serializer validates, then ``require_approval`` asks for
the same action as the web form."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated

from hyperid_mfa import require_approval
from hyperid_mfa.api.serializers import MFAErrorSerializer

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
        description="An invalid transfer is answered 400, with no push. A valid one "
        "sends a HyperID push and answers 403 `mfa_pending` with the two-digit code to "
        "match on the phone. Once the push is approved, the same call (same amount and "
        "payee) makes the transfer, once.",
        responses={
            201: TransferSerializer,
            400: OpenApiResponse(description="The transfer is not valid: no push."),
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
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> QuerySet[Transfer]:
        return Transfer.objects.filter(user=self.request.user)

    def perform_create(self, serializer: Any) -> None:
        # Reached with valid data only: an invalid transfer got DRF's 400 and no push.
        # The same action as the web form: one approval, one transfer, whichever way.
        values = serializer.validated_data
        require_approval(
            self.request,
            "bank.transfer",
            values=values,
            question=transfer_question(values["amount"], values["payee"]),
        )
        serializer.save(user=self.request.user, channel=Transfer.Channel.API)
