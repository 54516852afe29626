"""What the app's model admins share: read-only rows, the user search, the audit's
name for the staff member who acted."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from .. import audit


def user_search_fields() -> list[str]:
    """``user__<username field>`` and ``user__<email field>`` of the project's user model."""
    user_model = get_user_model()
    names = [user_model.USERNAME_FIELD]
    email = user_model.get_email_field_name()
    try:
        user_model._meta.get_field(email)
    except FieldDoesNotExist:
        pass  # a custom user model without an email column
    else:
        if email not in names:
            names.append(email)
    return [f"user__{name}" for name in names]


def user_label(request: HttpRequest) -> str:
    """Who acted, for the audit line: the staff member, not the request's owner."""
    staff = request.user
    return f"staff user {staff.pk} ({staff.get_username()})"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shows rows, never writes them: no add, no edit, whoever asks."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # False (rather than read-only fields) also makes Django refuse a POST to the
        # change view with 403 before any form is built or any row saved.
        return False

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [*super().get_search_fields(request), *user_search_fields()]

    def audit_deletion(self, request: HttpRequest, obj: Any) -> None:
        """Write the audit line of a row the admin deletes (inside the request's context)."""
        raise NotImplementedError

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with audit.request_context(request):
            self.audit_deletion(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with audit.request_context(request):
            for obj in queryset:
                self.audit_deletion(request, obj)
        super().delete_queryset(request, queryset)
