"""What the bank records: the transfers that ran, the payees customers pay, and
refunds staff approve in the admin."""

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


class Payee(models.Model):
    """Someone a customer pays. Its IBAN changes only with a HyperID approval in the
    admin (``PayeeAdmin``): a changed IBAN is where the next payments go."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="payees",
        help_text="The customer who pays this payee.",
    )
    name = models.CharField(max_length=100, help_text="Who the payee is.")
    iban = models.CharField("IBAN", max_length=34, help_text="Where the money goes.")

    class Meta:
        ordering = ["owner", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="bank_payee_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Refund(models.Model):
    """Money to send back for a transfer. Staff approve refunds in bulk in the admin,
    each run approved on the phone (``RefundAdmin``)."""

    class State(models.TextChoices):
        REQUESTED = "requested", "requested"
        REFUNDED = "refunded", "refunded"

    transfer = models.ForeignKey(
        Transfer,
        on_delete=models.PROTECT,
        related_name="refunds",
        help_text="The transfer the money goes back for.",
    )
    amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="In EUR.",
    )
    reason = models.CharField(max_length=200, help_text="Why the money goes back.")
    state = models.CharField(
        max_length=9,
        choices=State.choices,
        default=State.REQUESTED,
        help_text="Requested until staff refund it.",
    )
    refunded_at = models.DateTimeField(null=True, blank=True, help_text="When it was refunded.")

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="bank_refund_amount_positive"
            )
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk}: {self.amount} EUR"


def transfer_question(amount: Decimal, payee: str) -> str:
    """What the phone asks; the amount and the payee are what the approval covers."""
    return f"Transfer {amount:.2f} EUR to {payee}?"
