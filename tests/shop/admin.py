"""The shop's admin, protected with MFAProtectedAdminMixin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import F, QuerySet
from django.http import HttpRequest

from hyperid_mfa.admin import MFAProtectedAdminMixin

from .models import BankAccount, Market, Merchant, Payment, Shop, Tag


class BankAccountInline(admin.TabularInline):
    model = BankAccount
    extra = 0
    mfa_protect_fields = ("iban",)
    mfa_protect_delete = True


@admin.register(Shop)
class ShopAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "iban")
    inlines = [BankAccountInline]
    mfa_protect_fields = ("iban", "contract")
    mfa_protect_delete = True


@admin.register(Payment)
class PaymentAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "shop", "amount", "state")
    list_editable = ("amount",)
    list_filter = ("state",)
    actions = ("mark_as_paid", "reopen")
    mfa_protect_fields = "__all__"
    mfa_protect_actions = ("mark_as_paid", "delete_selected")

    @admin.action(description="Mark as paid")
    def mark_as_paid(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        queryset.update(state=Payment.State.PAID, times_marked_paid=F("times_marked_paid") + 1)

    @admin.action(description="Reopen")
    def reopen(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        queryset.update(state=Payment.State.OPEN)


#: Every protected field of a merchant: one of each kind the admin edits.
MERCHANT_PROTECTED = (
    "settings",
    "verified_at",
    "opens_on",
    "payout_limit",
    "tier",
    "payout_shop",
    "active",
    "tags",
    "licence",
    "api_key",
)


@admin.register(Merchant)
class MerchantAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "name", *(n for n in MERCHANT_PROTECTED if n != "tags"))
    list_editable = ("name", *(n for n in MERCHANT_PROTECTED if n != "tags"))
    mfa_protect_fields = MERCHANT_PROTECTED


class MerchantInline(admin.StackedInline):
    model = Merchant
    extra = 0
    mfa_protect_fields = MERCHANT_PROTECTED


@admin.register(Market)
class MarketAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
    inlines = [MerchantInline]


admin.site.register(Tag)
