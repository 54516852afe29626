"""What the API answers (and, for the schema, what it accepts). Read-only throughout:
a request changes only through the services (cancel), never through a serializer."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..constants import (
    STATUS_GET,
    TRANSACTION_ID_MAX,
    TRANSACTION_ID_MIN,
    CompleteResult,
    Result,
    Status,
)
from ..exceptions import results_of
from ..models import MFARequest, State

#: The result codes the status-get endpoint answers (HyperID's status-get codes).
STATUS_GET_RESULTS = tuple(Result(code) for code in sorted(results_of(STATUS_GET), reverse=True))


class MFARequestSerializer(serializers.ModelSerializer[MFARequest]):
    """One of the user's requests. Never the fingerprint, the errors or any token."""

    state = serializers.ChoiceField(
        choices=State.choices,
        read_only=True,
        help_text="Where the request stands: pending, approved, denied, expired, "
        "canceled, failed (HyperID no longer knows it) or consumed (the approval was used).",
    )
    consumed = serializers.BooleanField(
        source="is_consumed", read_only=True, help_text="Whether the approval was used."
    )

    class Meta:
        model = MFARequest
        fields: tuple[str, ...] = (
            "id",
            "transaction_id",
            "action",
            "question",
            "code",
            "state",
            "created_at",
            "expires_at",
            "completed_at",
            "consumed",
        )
        read_only_fields: tuple[str, ...] = fields


class MFARequestDetailSerializer(MFARequestSerializer):
    """A request and how long to wait before polling it again.

    The view passes ``poll_interval`` and ``retry_after`` in the serializer context.
    """

    poll_interval = serializers.SerializerMethodField(
        help_text="Seconds to wait before the next poll: POLL_INTERVAL, longer while "
        "HyperID asks for patience; null once the request is finished."
    )

    retry_after = serializers.SerializerMethodField(
        help_text="For a request that ended without approval (denied, expired, canceled, "
        "failed): seconds until a new push to this user is possible (the cooldown after "
        "a denial, the push limit), or null if one is possible now; null otherwise."
    )

    class Meta(MFARequestSerializer.Meta):
        fields = (*MFARequestSerializer.Meta.fields, "poll_interval", "retry_after")
        read_only_fields = fields

    def get_poll_interval(self, obj: MFARequest) -> float | None:
        value: float | None = self.context.get("poll_interval")
        return value

    def get_retry_after(self, obj: MFARequest) -> int | None:
        value: int | None = self.context.get("retry_after")
        return value


class MFAStatusGetRequestSerializer(serializers.Serializer[Any]):
    """The body of status-get, as HyperID's status-get takes it (documentation only:
    the view validates the raw JSON itself, to answer -2 as HyperID does)."""

    transaction_id = serializers.IntegerField(
        min_value=TRANSACTION_ID_MIN,
        max_value=TRANSACTION_ID_MAX,
        help_text="The transaction_id of one of your requests.",
    )


class MFAStatusGetAnswerSerializer(serializers.Serializer[Any]):
    """HyperID's status-get answer. Always HTTP 200; ``result`` says what happened."""

    result = serializers.ChoiceField(
        choices=[(int(code), code.name) for code in STATUS_GET_RESULTS],
        help_text="0 success; -1 HyperID unavailable; -2 invalid parameters; -3 access "
        "denied; -4 token expired; -5 token invalid; -6 transaction not found.",
    )
    transaction_id = serializers.IntegerField(
        allow_null=True,
        min_value=TRANSACTION_ID_MIN,
        max_value=TRANSACTION_ID_MAX,
        help_text="The transaction asked about; null when the body did not name one.",
    )
    transaction_status = serializers.ChoiceField(
        choices=[(int(status), status.name) for status in Status],
        allow_null=True,
        help_text="0 pending, 1 completed, 2 expired, 4 canceled; null unless result is 0.",
    )
    transaction_complete_result = serializers.ChoiceField(
        choices=[(int(outcome), outcome.name) for outcome in CompleteResult],
        allow_null=True,
        help_text="0 approved, 1 denied: meaningful only when transaction_status is 1 "
        "(0 otherwise, as HyperID sends it); null unless result is 0.",
    )


class MFAErrorSerializer(serializers.Serializer[Any]):
    """DRF's error answer: not signed in, CSRF, not found, throttled, bad method or body."""

    detail = serializers.CharField(help_text="What went wrong, for people.")


class MFAStateFilterErrorSerializer(serializers.Serializer[Any]):
    """An unknown ``?state=`` value."""

    state = serializers.ListField(child=serializers.CharField(), help_text="Why it was refused.")


class MFAUnavailableSerializer(MFAErrorSerializer):
    """A service the API needs failed: the database, the cache its throttles count in."""

    code = serializers.CharField(help_text='Always "mfa_unavailable".')


class MFACancelConflictSerializer(MFAErrorSerializer):
    """Cancel of a request that has already finished another way."""

    state = serializers.ChoiceField(
        choices=State.choices, help_text="The state the request finished in."
    )
    retry_after = serializers.IntegerField(
        allow_null=True,
        help_text="As in a request's answer: for one that ended without approval, the "
        "seconds until a new push is possible (null: now, or it was approved).",
    )
