"""Shops with an IBAN and bank accounts, and payments to mark as paid."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from django.db import models
from django.utils import timezone


class Shop(models.Model):
    name = models.CharField(max_length=100, help_text="What the shop is called.")
    iban = models.CharField("IBAN", max_length=34, help_text="Where payouts go.")
    notes = models.TextField(blank=True, help_text="Anything; not protected.")
    contract = models.FileField(
        upload_to="contracts/", blank=True, help_text="The signed contract."
    )

    def __str__(self) -> str:
        return self.name


class BankAccount(models.Model):
    """More accounts of a shop, edited inline on the shop's page."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="accounts")
    label = models.CharField(max_length=50, help_text="What the account is for.")
    iban = models.CharField("IBAN", max_length=34, help_text="The account's IBAN.")

    def __str__(self) -> str:
        return self.label


class Payment(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "open"
        PAID = "paid", "paid"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="payments")
    amount = models.DecimalField(max_digits=10, decimal_places=2, help_text="In EUR.")
    state = models.CharField(max_length=4, choices=State.choices, default=State.OPEN)
    times_marked_paid = models.PositiveIntegerField(
        default=0, help_text="How often 'Mark as paid' ran on this payment."
    )

    def __str__(self) -> str:
        return f"Payment #{self.pk}"


# --- a merchant with a protected field of every kind -------------------------------------
# Django renders a field whose default is callable with a hidden "initial-<name>" input
# holding the value the form started from; the browser sends it back. These defaults
# are callables for that reason: the admin's step-up must not trust those inputs.


def default_payout_limit() -> Decimal:
    return Decimal("100.00")


def default_tier() -> str:
    return "basic"


def no_payout_shop() -> None:
    return None


def active_by_default() -> bool:
    return True


def no_licence() -> str:
    return ""


def no_tags() -> list[Tag]:
    return []


class Tag(models.Model):
    name = models.CharField(max_length=30, help_text="What the tag says.")

    def __str__(self) -> str:
        return self.name


class Market(models.Model):
    """A market whose merchants are edited inline on its page."""

    name = models.CharField(max_length=100, help_text="What the market is called.")

    def __str__(self) -> str:
        return self.name


class Merchant(models.Model):
    class Tier(models.TextChoices):
        BASIC = "basic", "Basic"
        GOLD = "gold", "Gold"

    market = models.ForeignKey(
        Market, null=True, blank=True, on_delete=models.CASCADE, related_name="merchants"
    )
    name = models.CharField(max_length=100, help_text="What the merchant is called; not protected.")
    settings = models.JSONField(default=dict, blank=True, help_text="Payout settings.")
    verified_at = models.DateTimeField(default=timezone.now, help_text="When KYC passed.")
    opens_on = models.DateField(default=date.today, help_text="First day of business.")
    payout_limit = models.DecimalField(
        max_digits=10, decimal_places=2, default=default_payout_limit, help_text="In EUR."
    )
    tier = models.CharField(max_length=10, choices=Tier.choices, default=default_tier)
    payout_shop = models.ForeignKey(
        Shop, null=True, blank=True, on_delete=models.SET_NULL, default=no_payout_shop
    )
    active = models.BooleanField(default=active_by_default, help_text="May sell.")
    tags = models.ManyToManyField(Tag, blank=True, default=no_tags, help_text="Labels.")
    licence = models.FileField(
        upload_to="licences/", blank=True, default=no_licence, help_text="The trade licence."
    )
    api_key = models.UUIDField(default=uuid.uuid4, help_text="Identifies the merchant's API.")

    class Meta:
        # Across a nullable relation: the admin's locked read of the stored row must
        # not take this ordering along (PostgreSQL locks no outer join's nullable side).
        ordering = ["payout_shop__name", "name"]

    def __str__(self) -> str:
        return self.name
