from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from hyperid_mfa.admin import MFAProtectedAdminMixin

from .models import Payee, Refund, Transfer


@admin.register(Transfer)
class TransferAdmin(admin.ModelAdmin):
    """Transfers are records of what ran: shown, never edited or added by hand."""

    list_display = ["created_at", "user", "amount", "payee", "channel"]
    list_filter = ["channel"]
    search_fields = ["payee", "user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "amount", "payee", "channel", "created_at"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Transfer | None = None) -> bool:
        return False


@admin.register(Payee)
class PayeeAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
    """A new payee, or a payee's new IBAN, needs the staff member's approval on the
    phone: "Change IBAN of Bob's bakery from DE89370400440532013000 to
    DE44500105175407324931?"."""

    list_display = ["name", "owner", "iban"]
    search_fields = ["name", "iban", "owner__username"]
    raw_id_fields = ["owner"]
    mfa_protect_fields = ["iban"]
    mfa_protect_delete = True


@admin.register(Refund)
class RefundAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
    """Refunds are approved in bulk: "Run 'Mark as refunded' on 14 refunds?"."""

    list_display = ["__str__", "transfer", "amount", "reason", "state", "refunded_at"]
    list_filter = ["state"]
    search_fields = ["reason"]
    raw_id_fields = ["transfer"]
    readonly_fields = ["state", "refunded_at"]
    actions = ["mark_refunded"]
    mfa_protect_fields = ["amount"]
    mfa_protect_actions = ["mark_refunded", "delete_selected"]

    @admin.action(description="Mark as refunded", permissions=["change"])
    def mark_refunded(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        selected = queryset.count()  # before the update: the list may filter on the state
        count = queryset.filter(state=Refund.State.REQUESTED).update(
            state=Refund.State.REFUNDED, refunded_at=timezone.now()
        )
        self.message_user(request, f"Refunded {count} of {selected}.", messages.SUCCESS)
