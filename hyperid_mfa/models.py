"""MFARequest: one HyperID push and its outcome. HyperIDToken: a user's tokens, encrypted.
ApprovalWindow: a while in which one approval lets a scope's gated actions run."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import connections, models, router
from django.db.models import Q
from django.db.models.functions import Now
from django.db.models.sql import Query, UpdateQuery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .conf import mfa_settings
from .constants import CompleteResult, Status, is_approval


class RequestStatus(models.IntegerChoices):
    """The ``status`` column: HyperID's statuses, plus FAILED, which only we record.

    FAILED means HyperID no longer knows the transaction (status-get answered -6).
    """

    PENDING = Status.PENDING, _("Pending")
    COMPLETED = Status.COMPLETED, _("Completed")
    EXPIRED = Status.EXPIRED, _("Expired")
    CANCELED = Status.CANCELED, _("Canceled")
    FAILED = 99, _("Failed (unknown to HyperID)")


class CompleteResultChoices(models.IntegerChoices):
    APPROVED = CompleteResult.APPROVED, _("Approved")
    DENIED = CompleteResult.DENIED, _("Denied")


class State(models.TextChoices):
    """The one word that says where a request stands (derived, never stored)."""

    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    DENIED = "denied", _("Denied")
    EXPIRED = "expired", _("Expired")
    CANCELED = "canceled", _("Canceled")
    FAILED = "failed", _("Failed")
    CONSUMED = "consumed", _("Consumed")


#: An instance of the project's AUTH_USER_MODEL (the app does not assume which model).
UserModel = Any

_APPROVED = Q(status=RequestStatus.COMPLETED, complete_result=CompleteResultChoices.APPROVED)

#: How each state reads as a filter on the table.
STATE_FILTERS: dict[str, Q] = {
    State.PENDING: Q(status=RequestStatus.PENDING),
    State.APPROVED: _APPROVED & Q(consumed_at__isnull=True),
    State.DENIED: Q(status=RequestStatus.COMPLETED, complete_result=CompleteResultChoices.DENIED),
    State.EXPIRED: Q(status=RequestStatus.EXPIRED),
    State.CANCELED: Q(status=RequestStatus.CANCELED),
    State.FAILED: Q(status=RequestStatus.FAILED),
    State.CONSUMED: Q(consumed_at__isnull=False),
}


_STATE_OF_STATUS: dict[int, str] = {
    RequestStatus.PENDING: State.PENDING,
    RequestStatus.EXPIRED: State.EXPIRED,
    RequestStatus.CANCELED: State.CANCELED,
    RequestStatus.FAILED: State.FAILED,
}


#: The range of the SmallIntegerField columns that hold HyperID's result codes.
SMALLINT_RANGE = range(-32768, 32768)


def storable_result(result: int | None) -> int | None:
    """``result`` if the ``last_result`` column can hold it, else None.

    HyperID's codes are small; a value outside the column (an answer outside the
    protocol) is kept in ``last_error``'s text instead of failing the write.
    """
    return result if result is not None and result in SMALLINT_RANGE else None


def database_now(using: str | None = None) -> datetime:
    """The database's clock: the one clock that decides expiry, approval age and
    claim windows, however far the app servers' clocks drift apart."""
    alias = using or router.db_for_write(MFARequest)
    connection = connections[alias]
    query = Query(MFARequest)
    expression = Now().resolve_expression(query)
    sql, params = query.get_compiler(using=alias).compile(expression)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", list(params))
        row = cursor.fetchone()
    value = row[0]
    for converter in connection.ops.get_db_converters(expression):
        value = converter(value, expression, connection)
    return value


def can_update_returning(using: str) -> bool:
    """Whether the database answers ``UPDATE ... RETURNING`` (PostgreSQL, SQLite 3.35+)."""
    connection = connections[using]
    return connection.vendor in ("postgresql", "sqlite") and bool(
        connection.features.can_return_columns_from_insert
    )


def seconds_ago(seconds: float | timedelta) -> Any:
    """``Now() - seconds`` as a database expression."""
    delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
    return Now() - delta


class ReturningUpdate:
    """An ``UPDATE ... RETURNING`` compiled by the ORM: run it, with its parameters or
    with others in their places (the statement is compiled once, bound per call)."""

    def __init__(self, model: Any, using: str, compiler: Any, sql: str, params: list[Any]) -> None:
        connection = connections[using]
        self.model, self.using, self.compiler = model, using, compiler
        self.fields = model._meta.concrete_fields
        columns = ", ".join(connection.ops.quote_name(str(field.column)) for field in self.fields)
        self.sql = f"{sql} RETURNING {columns}" if sql else ""
        self.params = params
        self.converters = compiler.get_converters(
            [field.get_col(model._meta.db_table) for field in self.fields]
        )

    def run(self, params: list[Any] | None = None) -> list[Any]:
        if not self.sql:
            return []
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.sql, self.params if params is None else params)
            rows = cursor.fetchall()
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        names = [field.attname for field in self.fields]
        return [self.model.from_db(self.using, names, tuple(row)) for row in rows]


_M = TypeVar("_M", bound=models.Model)


class ReturningQuerySet(models.QuerySet[_M]):
    """A QuerySet that can change rows and return them in one statement."""

    def update_returning(self, **values: Any) -> list[_M]:
        """``update(**values)``, returning the rows it changed, in one statement
        (``UPDATE ... RETURNING``). Raises ``NotImplementedError`` on a database
        without it (see :func:`can_update_returning`).

        For the hot paths of the gate: one round trip finds a row and changes it, so
        that the conditions of the UPDATE decide who wins.
        """
        return self.compile_update_returning(**values).run()

    def compile_update_returning(self, **values: Any) -> ReturningUpdate:
        """The statement of :meth:`update_returning`, compiled, to run now or again."""
        if not can_update_returning(self.db):
            raise NotImplementedError("this database has no UPDATE ... RETURNING")
        query = cast(UpdateQuery, self.query.chain(UpdateQuery))
        query.add_update_values(values)
        compiler = query.get_compiler(self.db)
        compiler.pre_sql_setup()
        sql, params = compiler.as_sql()
        return ReturningUpdate(self.model, self.db, compiler, sql, list(params))


class MFARequestQuerySet(ReturningQuerySet["MFARequest"]):
    def for_user(self, user: UserModel) -> MFARequestQuerySet:
        return self.filter(user=user)

    def bound_to(self, user: UserModel, action: str, fingerprint: str = "") -> MFARequestQuerySet:
        return self.filter(user=user, action=action, fingerprint=fingerprint)

    def pending(self) -> MFARequestQuerySet:
        return self.filter(status=RequestStatus.PENDING)

    def finished(self) -> MFARequestQuerySet:
        return self.exclude(status=RequestStatus.PENDING)

    def in_state(self, state: str) -> MFARequestQuerySet:
        try:
            return self.filter(STATE_FILTERS[state])
        except KeyError:
            raise ValueError(f"unknown state {state!r}") from None

    def consumable(self, *, max_age: float | timedelta | None = None) -> MFARequestQuerySet:
        """Approved, not consumed, approved no longer than ``max_age`` seconds ago
        (by the database's clock)."""
        age = mfa_settings.APPROVAL_MAX_AGE if max_age is None else max_age
        return self.filter(_APPROVED, consumed_at__isnull=True, completed_at__gte=seconds_ago(age))

    def due_for_refresh(self, *, interval: float | None = None) -> MFARequestQuerySet:
        """Pending requests nobody has asked HyperID about for ``interval`` seconds
        (by the database's clock)."""
        gap = mfa_settings.MIN_REFRESH_INTERVAL if interval is None else interval
        return self.pending().filter(
            Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=seconds_ago(gap))
        )


class MFARequest(models.Model):
    """One push sent to a user's HyperID Authenticator, and what became of it."""

    Status = RequestStatus
    State = State

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mfa_requests",
        help_text=_("The user who must approve."),
        verbose_name=_("user"),
    )
    transaction_id = models.BigIntegerField(
        unique=True,
        help_text=_("HyperID's transaction_id for this push."),
        verbose_name=_("transaction id"),
    )
    action = models.CharField(
        max_length=200,
        help_text=_("What is being approved, e.g. 'payments.withdraw'."),
        verbose_name=_("action"),
    )
    question = models.CharField(
        max_length=500,
        help_text=_("The text shown on the user's phone."),
        verbose_name=_("question"),
    )
    code = models.CharField(
        max_length=2,
        validators=[RegexValidator(r"^[0-9]{2}$", _("Two digits."))],
        help_text=_("The two-digit number the user matches in the app."),
        verbose_name=_("code"),
    )
    fingerprint = models.CharField(
        max_length=128,
        blank=True,
        default="",
        help_text=_("HMAC of the bound request; an approval is valid only for it."),
        verbose_name=_("fingerprint"),
    )
    status = models.SmallIntegerField(
        choices=RequestStatus.choices,
        default=RequestStatus.PENDING,
        help_text=_("HyperID's transaction status as last seen, or failed."),
        verbose_name=_("status"),
    )
    complete_result = models.SmallIntegerField(
        choices=CompleteResultChoices.choices,
        null=True,
        blank=True,
        help_text=_("Approved or denied; set only when the status is completed."),
        verbose_name=_("complete result"),
    )
    created_at = models.DateTimeField(
        default=timezone.now, editable=False, verbose_name=_("created at")
    )
    expires_at = models.DateTimeField(
        help_text=_("After this the request is expired locally, whatever HyperID says."),
        verbose_name=_("expires at"),
    )
    completed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the outcome was learnt."),
        verbose_name=_("completed at"),
    )
    consumed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the approval was used; it cannot be used twice."),
        verbose_name=_("consumed at"),
    )
    last_checked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When HyperID was last asked about this request."),
        verbose_name=_("last checked at"),
    )
    check_count = models.PositiveIntegerField(
        default=0,
        help_text=_("How many times HyperID was asked."),
        verbose_name=_("check count"),
    )
    last_result = models.SmallIntegerField(
        null=True,
        blank=True,
        help_text=_("HyperID's result code of the last call."),
        verbose_name=_("last result"),
    )
    last_error = models.TextField(
        blank=True,
        default="",
        help_text=_("The last failure talking to HyperID, if any."),
        verbose_name=_("last error"),
    )

    objects = MFARequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("MFA request")
        verbose_name_plural = _("MFA requests")
        ordering = ["-created_at"]
        indexes = [
            # The gate: an approval or a pending request for (user, action, fingerprint).
            models.Index(
                fields=["user", "action", "fingerprint", "status"], name="hyperid_mfa_binding_idx"
            ),
            # The user's list, newest first.
            models.Index(fields=["user", "-created_at"], name="hyperid_mfa_user_created_idx"),
            # The poller: pending requests by last check.
            models.Index(
                fields=["last_checked_at"],
                name="hyperid_mfa_pending_idx",
                condition=Q(status=0),
            ),
            # Retention.
            models.Index(fields=["created_at"], name="hyperid_mfa_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(status=RequestStatus.COMPLETED) & Q(complete_result__isnull=False))
                | (~Q(status=RequestStatus.COMPLETED) & Q(complete_result__isnull=True)),
                name="hyperid_mfa_complete_result_iff_completed",
            ),
            models.CheckConstraint(
                condition=Q(consumed_at__isnull=True) | _APPROVED,
                name="hyperid_mfa_only_approvals_consumed",
            ),
            models.CheckConstraint(
                condition=Q(transaction_id__gt=0), name="hyperid_mfa_transaction_id_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.transaction_id} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING

    @property
    def is_terminal(self) -> bool:
        return not self.is_pending

    @property
    def is_approved(self) -> bool:
        return is_approval(self.status, self.complete_result)

    @property
    def is_denied(self) -> bool:
        return (
            self.status == RequestStatus.COMPLETED and self.complete_result == CompleteResult.DENIED
        )

    @property
    def is_consumed(self) -> bool:
        return self.consumed_at is not None

    # The two properties below read the local clock: for display. Decisions are taken
    # in SQL, by the database's clock (see MFARequestQuerySet.consumable).

    @property
    def is_consumable(self) -> bool:
        if not self.is_approved or self.consumed_at is not None or self.completed_at is None:
            return False
        max_age = timedelta(seconds=mfa_settings.APPROVAL_MAX_AGE)
        return timezone.now() - self.completed_at <= max_age

    @property
    def is_past_expiry(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def state(self) -> str:
        if self.consumed_at is not None:
            return State.CONSUMED
        if self.status == RequestStatus.COMPLETED:
            return State.APPROVED if self.is_approved else State.DENIED
        return _STATE_OF_STATUS.get(self.status, State.FAILED)


class HyperIDToken(models.Model):
    """A user's HyperID tokens, Fernet-encrypted at rest (see ``hyperid_mfa.tokens``).

    Read and write them through ``hyperid_mfa.tokens``; the columns hold ciphertext.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="hyperid_token",
        help_text=_("Whose tokens these are."),
        verbose_name=_("user"),
    )
    access_token_encrypted = models.TextField(
        editable=False,
        help_text=_("The access token, encrypted."),
        verbose_name=_("access token encrypted"),
    )
    refresh_token_encrypted = models.TextField(
        blank=True,
        default="",
        editable=False,
        help_text=_("The refresh token, encrypted."),
        verbose_name=_("refresh token encrypted"),
    )
    access_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the access token expires, if known."),
        verbose_name=_("access expires at"),
    )
    refresh_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the refresh token expires, if known."),
        verbose_name=_("refresh expires at"),
    )
    refreshed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the app last refreshed the access token."),
        verbose_name=_("refreshed at"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("HyperID token")
        verbose_name_plural = _("HyperID tokens")

    def __str__(self) -> str:
        return f"HyperID tokens of user {self.user_id}"

    def __repr__(self) -> str:
        return f"<HyperIDToken user_id={self.user_id} access_expires_at={self.access_expires_at}>"

    @property
    def has_refresh_token(self) -> bool:
        return bool(self.refresh_token_encrypted)

    def access_token_expired(self, *, leeway: float = 0, now: datetime | None = None) -> bool:
        if self.access_expires_at is None:
            return False
        return (now or timezone.now()) + timedelta(seconds=leeway) >= self.access_expires_at


# --- approval windows -------------------------------------------------------------------


class WindowEnd(models.TextChoices):
    """Why a window ended before its time (one past ``expires_at`` is simply over)."""

    LOGOUT = "logout", _("Signed out")
    PASSWORD = "password", _("Password changed")
    REVOKED = "revoked", _("Revoked")


class WindowState(models.TextChoices):
    """Where a window stands (derived, never stored)."""

    ACTIVE = "active", _("Active")
    EXPIRED = "expired", _("Expired")
    ENDED = "ended", _("Ended")


#: How each window state reads as a filter on the table, by the database's clock.
WINDOW_STATE_FILTERS: dict[str, Q] = {
    WindowState.ACTIVE: Q(ended_at__isnull=True, expires_at__gt=Now()),
    WindowState.EXPIRED: Q(ended_at__isnull=True, expires_at__lte=Now()),
    WindowState.ENDED: Q(ended_at__isnull=False),
}


class ApprovalWindowQuerySet(ReturningQuerySet["ApprovalWindow"]):
    def in_state(self, state: str) -> ApprovalWindowQuerySet:
        try:
            return self.filter(WINDOW_STATE_FILTERS[state])
        except KeyError:
            raise ValueError(f"unknown window state {state!r}") from None

    def active(self) -> ApprovalWindowQuerySet:
        """Neither ended nor past ``expires_at`` (by the database's clock)."""
        return self.in_state(WindowState.ACTIVE)


class ApprovalWindow(models.Model):
    """A run of sensitive actions on one approval: for a while, the gated actions of
    one scope run without a push, for one user in one browser session."""

    End = WindowEnd
    State = WindowState

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mfa_windows",
        help_text=_("Whose approval opened the window; nobody else can use it."),
        verbose_name=_("user"),
    )
    scope = models.CharField(
        max_length=200,
        help_text=_("The gates' scope= whose actions run inside the window."),
        verbose_name=_("scope"),
    )
    opened_by = models.OneToOneField(
        MFARequest,
        on_delete=models.CASCADE,
        related_name="window",
        help_text=_("The approval that opened the window; one approval opens one window."),
        verbose_name=_("opened by"),
    )
    session_digest = models.CharField(
        max_length=64,
        help_text=_("HMAC of the session key: the one browser session that can use the window."),
        verbose_name=_("session digest"),
    )
    auth_digest = models.CharField(
        max_length=64,
        help_text=_(
            "HMAC of the user's session auth hash at opening: a password change ends the window."
        ),
        verbose_name=_("auth digest"),
    )
    binding = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text=_(
            "HMAC of the values an explicit bind= bound at opening; empty without one. "
            "Actions with an explicit bind= run inside the window only with these values."
        ),
        verbose_name=_("binding"),
    )
    opened_at = models.DateTimeField(
        help_text=_("When the window opened (database clock)."), verbose_name=_("opened at")
    )
    expires_at = models.DateTimeField(
        help_text=_("When the window ends (database clock)."), verbose_name=_("expires at")
    )
    ended_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the window ended before its time, if it did."),
        verbose_name=_("ended at"),
    )
    end_reason = models.CharField(
        max_length=16,
        choices=WindowEnd.choices,
        blank=True,
        default="",
        help_text=_("Why the window ended before its time."),
        verbose_name=_("end reason"),
    )
    runs = models.PositiveIntegerField(
        default=0,
        help_text=_(
            "Gated actions run inside the window without a push (the opening one not counted)."
        ),
        verbose_name=_("runs"),
    )
    last_run_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When an action last ran inside the window."),
        verbose_name=_("last run at"),
    )

    objects = ApprovalWindowQuerySet.as_manager()

    class Meta:
        verbose_name = _("approval window")
        verbose_name_plural = _("approval windows")
        ordering = ["-opened_at"]
        indexes = [
            # The gate, on every request to a gated view with window=; logout's end.
            models.Index(fields=["user", "session_digest", "scope"], name="hyperid_mfa_window_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(ended_at__isnull=True) & Q(end_reason=""))
                | (Q(ended_at__isnull=False) & ~Q(end_reason="")),
                name="hyperid_mfa_window_end_reason_iff_ended",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("opened_at")),
                name="hyperid_mfa_window_expires_after_opening",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} window of user {self.user_id} ({self.state})"

    @property
    def state(self) -> str:
        """For display, by the local clock; the gate decides in SQL by the database's."""
        if self.ended_at is not None:
            return WindowState.ENDED
        if timezone.now() >= self.expires_at:
            return WindowState.EXPIRED
        return WindowState.ACTIVE
