from django.contrib import admin

from hyperid_mfa.admin import MFAProtectedAdminMixin

from .models import Transfer


@admin.register(Transfer)
class TransferAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
    list_display = ["payee", "amount", "user"]
    mfa_protect_fields = ["payee"]
