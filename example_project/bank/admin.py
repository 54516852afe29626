from django.contrib import admin
from django.http import HttpRequest

from .models import Transfer


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
