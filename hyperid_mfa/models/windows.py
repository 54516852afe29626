"""ApprovalWindow: a while in which one approval lets a scope's gated actions run."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .database import ReturningQuerySet
from .requests import MFARequest


class WindowEnd(models.TextChoices):
    """Why a window ended before its time (one past ``expires_at`` is simply over)."""

    LOGOUT = "logout", _("Signed out")
    PASSWORD = "password", _("Password changed")
    REVOKED = "revoked", _("Revoked")


class WindowState(models.TextChoices):
    """Where a window stands (derived, never stored)."""

    ACTIVE = "active", _("Active")
    EXPIRED = "expired", _("Expired")
    ENDED = "ended", _("Ended")


#: How each window state reads as a filter on the table, by the database's clock.
WINDOW_STATE_FILTERS: dict[str, Q] = {
    WindowState.ACTIVE: Q(ended_at__isnull=True, expires_at__gt=Now()),
    WindowState.EXPIRED: Q(ended_at__isnull=True, expires_at__lte=Now()),
    WindowState.ENDED: Q(ended_at__isnull=False),
}


class ApprovalWindowQuerySet(ReturningQuerySet["ApprovalWindow"]):
    def in_state(self, state: str) -> ApprovalWindowQuerySet:
        try:
            return self.filter(WINDOW_STATE_FILTERS[state])
        except KeyError:
            raise ValueError(f"unknown window state {state!r}") from None

    def active(self) -> ApprovalWindowQuerySet:
        """Neither ended nor past ``expires_at`` (by the database's clock)."""
        return self.in_state(WindowState.ACTIVE)


class ApprovalWindow(models.Model):
    """A run of sensitive actions on one approval: for a while, the gated actions of
    one scope run without a push, for one user in one browser session."""

    End = WindowEnd
    State = WindowState

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mfa_windows",
        help_text=_("Whose approval opened the window; nobody else can use it."),
        verbose_name=_("user"),
    )
    scope = models.CharField(
        max_length=200,
        help_text=_("The gates' scope= whose actions run inside the window."),
        verbose_name=_("scope"),
    )
    opened_by = models.OneToOneField(
        MFARequest,
        on_delete=models.CASCADE,
        related_name="window",
        help_text=_("The approval that opened the window; one approval opens one window."),
        verbose_name=_("opened by"),
    )
    session_digest = models.CharField(
        max_length=64,
        help_text=_("HMAC of the session key: the one browser session that can use the window."),
        verbose_name=_("session digest"),
    )
    auth_digest = models.CharField(
        max_length=64,
        help_text=_(
            "HMAC of the user's session auth hash at opening: a password change ends the window."
        ),
        verbose_name=_("auth digest"),
    )
    binding = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text=_(
            "HMAC of the values an explicit bind= bound at opening; empty without one. "
            "Actions with an explicit bind= run inside the window only with these values."
        ),
        verbose_name=_("binding"),
    )
    opened_at = models.DateTimeField(
        help_text=_("When the window opened (database clock)."), verbose_name=_("opened at")
    )
    expires_at = models.DateTimeField(
        help_text=_("When the window ends (database clock)."), verbose_name=_("expires at")
    )
    ended_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the window ended before its time, if it did."),
        verbose_name=_("ended at"),
    )
    end_reason = models.CharField(
        max_length=16,
        choices=WindowEnd.choices,
        blank=True,
        default="",
        help_text=_("Why the window ended before its time."),
        verbose_name=_("end reason"),
    )
    runs = models.PositiveIntegerField(
        default=0,
        help_text=_(
            "Gated actions run inside the window without a push (the opening one not counted)."
        ),
        verbose_name=_("runs"),
    )
    last_run_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When an action last ran inside the window."),
        verbose_name=_("last run at"),
    )

    objects = ApprovalWindowQuerySet.as_manager()

    class Meta:
        verbose_name = _("approval window")
        verbose_name_plural = _("approval windows")
        ordering = ["-opened_at"]
        indexes = [
            # The gate, on every request to a gated view with window=; logout's end.
            models.Index(fields=["user", "session_digest", "scope"], name="hyperid_mfa_window_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(ended_at__isnull=True) & Q(end_reason=""))
                | (Q(ended_at__isnull=False) & ~Q(end_reason="")),
                name="hyperid_mfa_window_end_reason_iff_ended",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("opened_at")),
                name="hyperid_mfa_window_expires_after_opening",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} window of user {self.user_id} ({self.state})"

    @property
    def state(self) -> str:
        """For display, by the local clock; the gate decides in SQL by the database's."""
        if self.ended_at is not None:
            return WindowState.ENDED
        if timezone.now() >= self.expires_at:
            return WindowState.EXPIRED
        return WindowState.ACTIVE
