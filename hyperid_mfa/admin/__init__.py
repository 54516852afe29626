"""The Django admin of the app: MFA requests, stored tokens, approval windows; and the
step-up for the project's own admins.

Owns the admins of requests and tokens (here: look, refresh, cancel; every field
read-only, for superusers too, and a POST to a change view refused: outcomes change
only through ``hyperid_mfa.services``, which the actions call), what they share
(``base``), the approval windows' admin and its "Revoke" (``windows``), and the
step-up: ``MFAProtectedAdminMixin`` (``step_up``, exported here), what a protected
operation changes (``changes``), a protected field as stored and as a save writes
it (``values``), the protected actions (``actions``). It calls the services and the
gate; the requests' list mounts the dashboard (``hyperid_mfa.dashboard``).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import Counter
from functools import cached_property, partial
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.paginator import Paginator
from django.db import connections, router
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import audit, services
from ..dashboard.views import dashboard_view
from ..exceptions import HyperIDError
from ..models import (
    STATE_FILTERS,
    HyperIDToken,
    MFARequest,
    MFARequestQuerySet,
    State,
)
from . import windows as windows  # registers ApprovalWindowAdmin
from .base import ReadOnlyAdmin, user_label
from .changes import ProtectedChange as ProtectedChange  # public: the hook's type
from .step_up import MFAProtectedAdminMixin as MFAProtectedAdminMixin  # public

logger = logging.getLogger("hyperid_mfa")

#: Pending requests one "Refresh from HyperID" may ask about: each is an HTTP call
#: made while the admin waits for the page. The poller follows larger numbers.
ADMIN_REFRESH_LIMIT = 100

_BIGINT_MAX = 2**63 - 1


class StateFilter(admin.SimpleListFilter):
    """The outcome as users see it (``MFARequest.state``), derived from several columns."""

    title = _("outcome")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(value), str(label)) for value, label in State.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in STATE_FILTERS:
            return cast(MFARequestQuerySet, queryset).in_state(value)
        return queryset


#: Actions the action filter lists at most (a site has a handful).
ACTION_FILTER_LIMIT = 200

# The distinct actions by a loose index scan: one probe of the action index per action,
# where SELECT DISTINCT would read every row (250 ms at 367,000 requests).
_DISTINCT_ACTIONS = """
WITH RECURSIVE found (action) AS (
    SELECT MIN({action}) FROM {table}
    UNION ALL
    SELECT (SELECT MIN({action}) FROM {table} WHERE {action} > found.action)
    FROM found WHERE found.action IS NOT NULL
)
SELECT action FROM found WHERE action IS NOT NULL LIMIT %s
"""


def distinct_actions(using: str = "default") -> list[str]:
    """Every action of the requests, in order, read from the action index."""
    connection = connections[using]
    if connection.vendor not in ("postgresql", "sqlite", "mysql"):
        actions = MFARequest.objects.using(using).order_by("action").values_list("action")
        return list(actions.distinct().values_list("action", flat=True)[:ACTION_FILTER_LIMIT])
    quote = connection.ops.quote_name
    sql = _DISTINCT_ACTIONS.format(action=quote("action"), table=quote(MFARequest._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, [ACTION_FILTER_LIMIT])
        return [row[0] for row in cursor.fetchall()]


#: Above this many requests (by PostgreSQL's statistics), the unfiltered list shows
#: the table's estimated size instead of counting every row on each view.
ESTIMATED_COUNT_ABOVE = 100_000


class LargeTablePaginator(Paginator):
    """Counts a filtered list; the whole table, once it is large, only estimated.

    ``COUNT(*)`` of a million requests reads a whole index: the better part of the
    changelist's time. PostgreSQL keeps the table's size in its statistics
    (``pg_class.reltuples``, refreshed by autovacuum); past ``ESTIMATED_COUNT_ABOVE``
    rows the unfiltered list shows that instead. A filter or a search counts exactly.
    """

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if isinstance(queryset, QuerySet) and query is not None and not query.where:
            connection = connections[queryset.db]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                        [connection.ops.quote_name(queryset.model._meta.db_table)],
                    )
                    row = cursor.fetchone()
                if row is not None and row[0] > ESTIMATED_COUNT_ABOVE:
                    return int(row[0])
        return int(super().count)


class ActionFilter(admin.SimpleListFilter):
    """The action, as Django's filter of a field offers it (same parameter), its
    choices found without reading the whole table."""

    title = _("action")
    parameter_name = "action__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        using = router.db_for_read(MFARequest)
        return [(action, action) for action in distinct_actions(using)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset if value is None else queryset.filter(action=value)


_SUMMARY_FIELDS = ("id", "user", "action", "question", "code", "state_label")
_OUTCOME_FIELDS = (
    "status",
    "complete_result",
    "created_at",
    "expires_at",
    "completed_at",
    "consumed_at",
)
_HYPERID_FIELDS = (
    "transaction_id",
    "last_checked_at",
    "check_count",
    "last_result",
    "last_error",
    "fingerprint",
)


@admin.register(MFARequest)
class MFARequestAdmin(ReadOnlyAdmin):
    list_display = (
        "transaction_id",
        "user",
        "action",
        "state_label",
        "created_at",
        "completed_at",
        "consumed_at",
    )
    list_filter = ("status", StateFilter, ActionFilter, "created_at")
    # Transaction ids and request ids are matched exactly in get_search_results.
    search_fields = ("action",)
    # No date_hierarchy: its links are the distinct years, months or days of every
    # row, which PostgreSQL finds only by reading the whole table; the date filter
    # above offers fixed periods at no cost, and ?created_at__year=... still works.
    # Nor a second COUNT(*) of the whole table for "N total" beside a filtered count.
    show_full_result_count = False
    paginator = LargeTablePaginator
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    actions = ("refresh_from_hyperid", "cancel")
    fieldsets = (
        (None, {"fields": _SUMMARY_FIELDS}),
        (_("Outcome"), {"fields": _OUTCOME_FIELDS}),
        (_("HyperID"), {"fields": _HYPERID_FIELDS}),
    )
    readonly_fields = _SUMMARY_FIELDS + _OUTCOME_FIELDS + _HYPERID_FIELDS

    @admin.display(description=_("state"))
    def state_label(self, obj: MFARequest) -> str:
        return str(State(obj.state).label)

    def get_urls(self) -> list[URLPattern]:
        # The dashboard, before the change view's catch-all pattern.
        opts = self.opts
        view = self.admin_site.admin_view(partial(dashboard_view, model_admin=self))
        return [
            path("dashboard/", view, name=f"{opts.app_label}_{opts.model_name}_dashboard"),
            *super().get_urls(),
        ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        # Exact matches on the indexed ids: an operator pastes one from a log line. ASCII
        # digits only: str.isdigit() also takes "²", which int() refuses.
        if term.isascii() and term.isdigit() and 0 < int(term) <= _BIGINT_MAX:
            results |= queryset.filter(transaction_id=int(term))
        else:
            with contextlib.suppress(ValueError):
                results |= queryset.filter(pk=uuid.UUID(term))
        return results, may_have_duplicates

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Finished requests may go (retention, erasure): deleting one cannot create an
        # approval. A pending one would leave a live push on the user's phone that no
        # row answers for; cancel it first, which also withdraws the push.
        if isinstance(obj, MFARequest) and obj.is_pending:
            return False
        return super().has_delete_permission(request, obj)

    def audit_deletion(self, request: HttpRequest, obj: Any) -> None:
        audit.log(f"admin delete by {user_label(request)}", mfa_request=obj)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """May run the actions, which change a request only through the services."""
        opts = self.opts
        codename = get_permission_codename("change", opts)
        return request.user.has_perm(f"{opts.app_label}.{codename}")

    @admin.action(description=_("Refresh from HyperID"), permissions=["operate"])
    def refresh_from_hyperid(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        pending = list(queryset.filter(STATE_FILTERS[State.PENDING]).select_related("user"))
        if len(pending) > ADMIN_REFRESH_LIMIT:
            self.message_user(
                request,
                _(
                    "Select at most %(limit)d pending requests to refresh at once "
                    "(%(count)d selected); the poller follows the others."
                )
                % {"limit": ADMIN_REFRESH_LIMIT, "count": len(pending)},
                messages.WARNING,
            )
            return
        outcomes: Counter[str] = Counter()
        failed = 0
        with audit.request_context(request):
            for index, mfa_request in enumerate(pending):
                audit.log(f"admin refresh by {user_label(request)}", mfa_request=mfa_request)
                try:
                    services.refresh_request(mfa_request, force=True)
                except HyperIDError as err:
                    failed += 1
                    # HyperIDError texts never hold a token (see hyperid_mfa.exceptions).
                    self._report_error(request, mfa_request, str(err))
                    if err.retryable:
                        # HyperID is down: the rest would fail the same way, each after
                        # its own timeouts, while the page waits.
                        self._report_skipped(request, len(pending) - index - 1)
                        break
                    continue
                except Exception as err:
                    logger.exception("Admin refresh of MFA request %s failed", mfa_request.pk)
                    failed += 1
                    self._report_error(request, mfa_request, type(err).__name__)
                    continue
                outcomes[mfa_request.state] += 1
        finished = queryset.count() - len(pending)
        self._report_refreshed(request, outcomes, finished, failed)

    @admin.action(description=_("Cancel"), permissions=["operate"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        canceled = unchanged = 0
        with audit.request_context(request):
            for mfa_request in queryset.select_related("user"):
                if not mfa_request.is_pending:
                    unchanged += 1
                    continue
                audit.log(f"admin cancel by {user_label(request)}", mfa_request=mfa_request)
                services.cancel_request(mfa_request)
                if mfa_request.state == State.CANCELED:
                    canceled += 1
                else:
                    unchanged += 1  # it finished while we were at it
        if canceled:
            self.message_user(
                request,
                ngettext(
                    "Canceled %(count)d request; its push was withdrawn.",
                    "Canceled %(count)d requests; their pushes were withdrawn.",
                    canceled,
                )
                % {"count": canceled},
                messages.SUCCESS,
            )
        if unchanged:
            self.message_user(
                request,
                ngettext(
                    "%(count)d request was already finished and was left as it is.",
                    "%(count)d requests were already finished and were left as they are.",
                    unchanged,
                )
                % {"count": unchanged},
                messages.INFO,
            )

    def _report_error(self, request: HttpRequest, mfa_request: MFARequest, detail: str) -> None:
        self.message_user(
            request,
            _("Request %(transaction_id)s could not be refreshed: %(error)s")
            % {"transaction_id": mfa_request.transaction_id, "error": detail},
            messages.ERROR,
        )

    def _report_skipped(self, request: HttpRequest, count: int) -> None:
        if count:
            self.message_user(
                request,
                ngettext(
                    "HyperID is unavailable: %(count)d more request was not asked about.",
                    "HyperID is unavailable: %(count)d more requests were not asked about.",
                    count,
                )
                % {"count": count},
                messages.WARNING,
            )

    def _report_refreshed(
        self, request: HttpRequest, outcomes: Counter[str], finished: int, failed: int
    ) -> None:
        refreshed = sum(outcomes.values())
        if refreshed:
            summary = ", ".join(
                f"{label}: {outcomes[state]}" for state, label in State.choices if outcomes[state]
            )
            self.message_user(
                request,
                ngettext(
                    "Refreshed %(count)d request (%(summary)s).",
                    "Refreshed %(count)d requests (%(summary)s).",
                    refreshed,
                )
                % {"count": refreshed, "summary": summary},
                messages.SUCCESS,
            )
        if finished:
            self.message_user(
                request,
                ngettext(
                    "%(count)d request was already finished; HyperID was not asked about it.",
                    "%(count)d requests were already finished; HyperID was not asked about them.",
                    finished,
                )
                % {"count": finished},
                messages.INFO,
            )
        if not refreshed and not finished and not failed:
            self.message_user(request, _("Nothing to refresh."), messages.INFO)


@admin.register(HyperIDToken)
class HyperIDTokenAdmin(ReadOnlyAdmin):
    """Whose tokens are stored and until when. The tokens themselves are never shown.

    Deleting a row signs the user out of HyperID MFA (``tokens.forget_tokens``): the
    next gated action asks them to sign in again.
    """

    list_display = (
        "user",
        "access_expires_at",
        "refresh_expires_at",
        "refreshed_at",
        "updated_at",
    )
    list_select_related = ("user",)
    list_filter = ("updated_at",)
    raw_id_fields = ("user",)
    # An explicit list, so that the encrypted columns are never rendered, even as ciphertext.
    fields = readonly_fields = (
        "user",
        "has_refresh_token",
        "access_expires_at",
        "refresh_expires_at",
        "refreshed_at",
        "created_at",
        "updated_at",
    )

    def audit_deletion(self, request: HttpRequest, obj: Any) -> None:
        audit.log(
            f"admin delete of the HyperID tokens by {user_label(request)}", user_id=obj.user_id
        )

    @admin.display(boolean=True, description=_("refresh token stored"))
    def has_refresh_token(self, obj: HyperIDToken) -> bool:
        return obj.has_refresh_token
