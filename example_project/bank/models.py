"""What the bank records: one row per transfer that ran."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class Transfer(models.Model):
    """A transfer that ran, after its approval in the HyperID Authenticator."""

    class Channel(models.TextChoices):
        WEB = "web", "web form"
        API = "api", "API"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="transfers",
        help_text="Who sent the money.",
    )
    amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="In EUR.",
    )
    payee = models.CharField(max_length=100, help_text="Who receives the money.")
    channel = models.CharField(
        max_length=3, choices=Channel.choices, help_text="Where the transfer was asked for."
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the transfer ran.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="bank_transfer_amount_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.amount} EUR to {self.payee}"


def transfer_question(amount: Decimal, payee: str) -> str:
    """What the phone asks; the amount and the payee are what the approval covers."""
    return f"Transfer {amount:.2f} EUR to {payee}?"
