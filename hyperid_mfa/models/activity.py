"""What the admin's dashboard counts that leaves no MFARequest row behind.

A push refused by the push limit or the denial cooldown, or one whose start failed,
is never recorded as a request; a failed call to HyperID is recorded on a request
only as its last error, if at all. Both are counted here instead, one row per hour
and per what they are counted by, so that a user hammering a gated view adds to a
count rather than to the table. Written by :mod:`hyperid_mfa.dashboard.tallies`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class PushOutcome(models.TextChoices):
    """What became of a push the app was asked to send (``hyperid_mfa_pushes_total``)."""

    SENT = "sent", _("Sent")
    LIMITED = "limited", _("Refused by the push limit")
    COOLDOWN = "cooldown", _("Refused after a denial")
    FAILED = "failed", _("Failed")


class HourlyCount(models.Model):
    """What happened within one hour, and how often."""

    hour = models.DateTimeField(
        help_text=_("The start of the hour (UTC) counted."), verbose_name=_("hour")
    )
    count = models.PositiveIntegerField(default=0, verbose_name=_("count"))

    class Meta:
        abstract = True


class UnsentPush(HourlyCount):
    """Pushes not sent, counted per hour, user, action and outcome."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("user"),
    )
    action = models.CharField(max_length=200, verbose_name=_("action"))
    outcome = models.CharField(
        max_length=16,
        choices=[(c.value, c.label) for c in PushOutcome if c != PushOutcome.SENT],
        verbose_name=_("outcome"),
    )

    class Meta:
        verbose_name = _("unsent push count")
        verbose_name_plural = _("unsent push counts")
        constraints = [
            # The row each refusal adds one to; also the dashboard's index (hour first).
            models.UniqueConstraint(
                fields=["hour", "outcome", "user", "action"], name="hyperid_mfa_unsent_push_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} x{self.count} at {self.hour:%Y-%m-%d %H:00}"


class FailedCall(HourlyCount):
    """HTTP exchanges with HyperID that did not succeed, counted per hour, call and result."""

    call = models.CharField(max_length=16, verbose_name=_("call"))
    result = models.CharField(
        max_length=40,
        help_text=_("HyperID's result name, or how the exchange failed."),
        verbose_name=_("result"),
    )

    class Meta:
        verbose_name = _("failed HyperID call count")
        verbose_name_plural = _("failed HyperID call counts")
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "result", "call"], name="hyperid_mfa_failed_call_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.call} {self.result} x{self.count} at {self.hour:%Y-%m-%d %H:00}"
