"""MFARequest: one HyperID push and what became of it; its states and querysets."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..conf import mfa_settings
from ..constants import CompleteResult, Status, is_approval
from .database import ReturningQuerySet, seconds_ago


class RequestStatus(models.IntegerChoices):
    """The ``status`` column: HyperID's statuses, plus FAILED, which only we record.

    FAILED means HyperID no longer knows the transaction (status-get answered -6).
    """

    PENDING = Status.PENDING, _("Pending")
    COMPLETED = Status.COMPLETED, _("Completed")
    EXPIRED = Status.EXPIRED, _("Expired")
    CANCELED = Status.CANCELED, _("Canceled")
    FAILED = 99, _("Failed (unknown to HyperID)")


class CompleteResultChoices(models.IntegerChoices):
    APPROVED = CompleteResult.APPROVED, _("Approved")
    DENIED = CompleteResult.DENIED, _("Denied")


class State(models.TextChoices):
    """The one word that says where a request stands (derived, never stored)."""

    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    DENIED = "denied", _("Denied")
    EXPIRED = "expired", _("Expired")
    CANCELED = "canceled", _("Canceled")
    FAILED = "failed", _("Failed")
    CONSUMED = "consumed", _("Consumed")


#: An instance of the project's AUTH_USER_MODEL (the app does not assume which model).
UserModel = Any

_APPROVED = Q(status=RequestStatus.COMPLETED, complete_result=CompleteResultChoices.APPROVED)

#: How each state reads as a filter on the table.
STATE_FILTERS: dict[str, Q] = {
    State.PENDING: Q(status=RequestStatus.PENDING),
    State.APPROVED: _APPROVED & Q(consumed_at__isnull=True),
    State.DENIED: Q(status=RequestStatus.COMPLETED, complete_result=CompleteResultChoices.DENIED),
    State.EXPIRED: Q(status=RequestStatus.EXPIRED),
    State.CANCELED: Q(status=RequestStatus.CANCELED),
    State.FAILED: Q(status=RequestStatus.FAILED),
    State.CONSUMED: Q(consumed_at__isnull=False),
}


_STATE_OF_STATUS: dict[int, str] = {
    RequestStatus.PENDING: State.PENDING,
    RequestStatus.EXPIRED: State.EXPIRED,
    RequestStatus.CANCELED: State.CANCELED,
    RequestStatus.FAILED: State.FAILED,
}


class MFARequestQuerySet(ReturningQuerySet["MFARequest"]):
    def for_user(self, user: UserModel) -> MFARequestQuerySet:
        return self.filter(user=user)

    def bound_to(self, user: UserModel, action: str, fingerprint: str = "") -> MFARequestQuerySet:
        return self.filter(user=user, action=action, fingerprint=fingerprint)

    def pending(self) -> MFARequestQuerySet:
        return self.filter(status=RequestStatus.PENDING)

    def finished(self) -> MFARequestQuerySet:
        return self.exclude(status=RequestStatus.PENDING)

    def in_state(self, state: str) -> MFARequestQuerySet:
        try:
            return self.filter(STATE_FILTERS[state])
        except KeyError:
            raise ValueError(f"unknown state {state!r}") from None

    def consumable(self, *, max_age: float | timedelta | None = None) -> MFARequestQuerySet:
        """Approved, not consumed, approved no longer than ``max_age`` seconds ago
        (by the database's clock)."""
        age = mfa_settings.APPROVAL_MAX_AGE if max_age is None else max_age
        return self.filter(_APPROVED, consumed_at__isnull=True, completed_at__gte=seconds_ago(age))

    def due_for_refresh(self, *, interval: float | None = None) -> MFARequestQuerySet:
        """Pending requests nobody has asked HyperID about for ``interval`` seconds
        (by the database's clock)."""
        gap = mfa_settings.MIN_REFRESH_INTERVAL if interval is None else interval
        return self.pending().filter(
            Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=seconds_ago(gap))
        )


class MFARequest(models.Model):
    """One push sent to a user's HyperID Authenticator, and what became of it."""

    Status = RequestStatus
    State = State

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mfa_requests",
        help_text=_("The user who must approve."),
        verbose_name=_("user"),
    )
    transaction_id = models.BigIntegerField(
        unique=True,
        help_text=_("HyperID's transaction_id for this push."),
        verbose_name=_("transaction id"),
    )
    action = models.CharField(
        max_length=200,
        help_text=_("What is being approved, e.g. 'payments.withdraw'."),
        verbose_name=_("action"),
    )
    question = models.CharField(
        max_length=500,
        help_text=_("The text shown on the user's phone."),
        verbose_name=_("question"),
    )
    code = models.CharField(
        max_length=2,
        validators=[RegexValidator(r"^[0-9]{2}$", _("Two digits."))],
        help_text=_("The two-digit number the user matches in the app."),
        verbose_name=_("code"),
    )
    fingerprint = models.CharField(
        max_length=128,
        blank=True,
        default="",
        help_text=_("HMAC of the bound request; an approval is valid only for it."),
        verbose_name=_("fingerprint"),
    )
    status = models.SmallIntegerField(
        choices=RequestStatus.choices,
        default=RequestStatus.PENDING,
        help_text=_("HyperID's transaction status as last seen, or failed."),
        verbose_name=_("status"),
    )
    complete_result = models.SmallIntegerField(
        choices=CompleteResultChoices.choices,
        null=True,
        blank=True,
        help_text=_("Approved or denied; set only when the status is completed."),
        verbose_name=_("complete result"),
    )
    created_at = models.DateTimeField(
        default=timezone.now, editable=False, verbose_name=_("created at")
    )
    expires_at = models.DateTimeField(
        help_text=_("After this the request is expired locally, whatever HyperID says."),
        verbose_name=_("expires at"),
    )
    completed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the outcome was learnt."),
        verbose_name=_("completed at"),
    )
    consumed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the approval was used; it cannot be used twice."),
        verbose_name=_("consumed at"),
    )
    last_checked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When HyperID was last asked about this request."),
        verbose_name=_("last checked at"),
    )
    check_count = models.PositiveIntegerField(
        default=0,
        help_text=_("How many times HyperID was asked."),
        verbose_name=_("check count"),
    )
    last_result = models.SmallIntegerField(
        null=True,
        blank=True,
        help_text=_("HyperID's result code of the last call."),
        verbose_name=_("last result"),
    )
    last_error = models.TextField(
        blank=True,
        default="",
        help_text=_("The last failure talking to HyperID, if any."),
        verbose_name=_("last error"),
    )

    objects = MFARequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("MFA request")
        verbose_name_plural = _("MFA requests")
        ordering = ["-created_at"]
        indexes = [
            # The gate: an approval or a pending request for (user, action, fingerprint).
            models.Index(
                fields=["user", "action", "fingerprint", "status"], name="hyperid_mfa_binding_idx"
            ),
            # The user's list, newest first.
            models.Index(fields=["user", "-created_at"], name="hyperid_mfa_user_created_idx"),
            # The poller: pending requests by last check.
            models.Index(
                fields=["last_checked_at"],
                name="hyperid_mfa_pending_idx",
                condition=Q(status=0),
            ),
            # Retention, and the admin's dashboard: it counts the requests of each hour,
            # and reads their times to decide, from the index alone. The extra columns
            # are keys rather than `include=`: SQLite has no covering columns (Django's
            # models.W040), and as trailing keys they serve the same index-only scans.
            models.Index(
                fields=["created_at", "status", "complete_result", "completed_at"],
                name="hyperid_mfa_created_idx",
            ),
            # The admin's action filter: its choices (one probe per action) and its
            # list, newest first.
            models.Index(fields=["action", "created_at"], name="hyperid_mfa_action_idx"),
            # The dashboard's users with the most denials.
            models.Index(
                fields=["created_at", "user"],
                name="hyperid_mfa_denied_idx",
                condition=Q(
                    status=int(RequestStatus.COMPLETED),
                    complete_result=int(CompleteResultChoices.DENIED),
                ),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(status=RequestStatus.COMPLETED) & Q(complete_result__isnull=False))
                | (~Q(status=RequestStatus.COMPLETED) & Q(complete_result__isnull=True)),
                name="hyperid_mfa_complete_result_iff_completed",
            ),
            models.CheckConstraint(
                condition=Q(consumed_at__isnull=True) | _APPROVED,
                name="hyperid_mfa_only_approvals_consumed",
            ),
            models.CheckConstraint(
                condition=Q(transaction_id__gt=0), name="hyperid_mfa_transaction_id_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.transaction_id} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING

    @property
    def is_terminal(self) -> bool:
        return not self.is_pending

    @property
    def is_approved(self) -> bool:
        return is_approval(self.status, self.complete_result)

    @property
    def is_denied(self) -> bool:
        return (
            self.status == RequestStatus.COMPLETED and self.complete_result == CompleteResult.DENIED
        )

    @property
    def is_consumed(self) -> bool:
        return self.consumed_at is not None

    # The two properties below read the local clock: for display. Decisions are taken
    # in SQL, by the database's clock (see MFARequestQuerySet.consumable).

    @property
    def is_consumable(self) -> bool:
        if not self.is_approved or self.consumed_at is not None or self.completed_at is None:
            return False
        max_age = timedelta(seconds=mfa_settings.APPROVAL_MAX_AGE)
        return timezone.now() - self.completed_at <= max_age

    @property
    def is_past_expiry(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def state(self) -> str:
        if self.consumed_at is not None:
            return State.CONSUMED
        if self.status == RequestStatus.COMPLETED:
            return State.APPROVED if self.is_approved else State.DENIED
        return _STATE_OF_STATUS.get(self.status, State.FAILED)
