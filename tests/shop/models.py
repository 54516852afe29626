"""Shops with an IBAN and bank accounts, and payments to mark as paid."""

from __future__ import annotations

from django.db import models


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
