"""The admin of approval windows: the active and the ended ones, and "Revoke"."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import audit, services
from ..models import (
    WINDOW_STATE_FILTERS,
    ApprovalWindow,
    ApprovalWindowQuerySet,
    WindowState,
)
from .base import ReadOnlyAdmin, user_label

# --- approval windows ------------------------------------------------------------------------
# Kept in one block: the list of windows, its filter and its one action, "Revoke".


class WindowStateFilter(admin.SimpleListFilter):
    """Active, expired or ended, by the database's clock."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(value), str(label)) for value, label in WindowState.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        condition = WINDOW_STATE_FILTERS.get(self.value() or "")
        return queryset if condition is None else queryset.filter(condition)


_WINDOW_FIELDS = (
    "id",
    "user",
    "scope",
    "state_label",
    "opened_by",
    "opened_at",
    "expires_at",
    "runs",
    "last_run_at",
    "ended_at",
    "end_reason",
)


@admin.register(ApprovalWindow)
class ApprovalWindowAdmin(ReadOnlyAdmin):
    """Who may run which scope's actions without a push, in which session, until when.

    Read-only; "Revoke" ends the selected windows at once (staff with the model's
    *change* permission). The HMACs a window is matched by are not shown.
    """

    list_display = (
        "user",
        "scope",
        "state_label",
        "opened_by_action",
        "opened_at",
        "expires_at",
        "runs",
        "last_run_at",
        "end_reason",
    )
    list_filter = (WindowStateFilter, "scope", "end_reason", "opened_at")
    search_fields = ("scope",)
    date_hierarchy = "opened_at"
    raw_id_fields = ("user", "opened_by")
    list_select_related = ("user", "opened_by")
    actions = ("revoke",)
    fields = readonly_fields = _WINDOW_FIELDS

    @admin.display(description=_("state"))
    def state_label(self, obj: ApprovalWindow) -> str:
        return str(WindowState(obj.state).label)

    @admin.display(description=_("opened by"), ordering="opened_by__action")
    def opened_by_action(self, obj: ApprovalWindow) -> str:
        return obj.opened_by.action

    def audit_deletion(self, request: HttpRequest, obj: Any) -> None:
        audit.log_window(f"window deleted by {user_label(request)}", obj)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.action(description=_("Revoke"), permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        selected = queryset.count()
        with audit.request_context(request):
            windows = cast(ApprovalWindowQuerySet, queryset)
            revoked = services.revoke_windows(windows, by=user_label(request))
        if revoked:
            self.message_user(
                request,
                ngettext(
                    "Revoked %(count)d window: its actions need a new approval.",
                    "Revoked %(count)d windows: their actions need a new approval.",
                    revoked,
                )
                % {"count": revoked},
                messages.SUCCESS,
            )
        if selected > revoked:
            self.message_user(
                request,
                ngettext(
                    "%(count)d window had already ended and was left as it is.",
                    "%(count)d windows had already ended and were left as they are.",
                    selected - revoked,
                )
                % {"count": selected - revoked},
                messages.INFO,
            )
