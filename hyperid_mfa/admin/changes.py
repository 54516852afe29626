"""What a protected admin operation changes, as its approval binds it and as the
phone asks about it.

For :mod:`hyperid_mfa.admin.step_up`: the protected fields whose stored value a save
replaces (with both values), inline rows added, changed or deleted, an action's rows
(:class:`ProtectedChange`); in a canonical form for the binding
(:mod:`hyperid_mfa.admin.values` compares and spells the values) and whole in the
question (:func:`default_question`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db.models import Model
from django.forms import BaseForm
from django.forms.formsets import DELETION_FIELD_NAME, ORDERING_FIELD_NAME
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .values import compare, stored_rows, written_row

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    _ModelAdmin = ModelAdmin[Any]
else:
    _ModelAdmin = object


#: ``mfa_protect_fields = "__all__"``: every field of the form.
ALL_FIELDS = "__all__"
#: An object's text longer than this is shortened in the question. (An object's text
#: only names the row; the approval binds its primary key. Values are shown whole.)
OBJECT_LENGTH = 60


#: One thing a protected operation does, as its approval binds it: (operation, model
#: label, primary key, field name, the value stored now, the value the save writes),
#: values in canonical form.
Entry = tuple[str, str, str, str, str, str]


@dataclass(frozen=True)
class FieldChange:
    """A protected field whose stored value a save replaces (or, in an add, sets).

    ``value`` as the save writes it, ``old_value`` as the database holds it now (None
    in an add); ``shown`` and ``old_shown`` as the question names them; ``bound`` and
    ``old_bound`` as the approval binds them.
    """

    name: str
    label: str
    value: Any
    shown: str
    old_value: Any = None
    old_shown: str = ""
    bound: str = ""
    old_bound: str = ""


@dataclass(frozen=True)
class RowChange:
    """An inline row (or a row of the change list's editable columns) that a save
    adds, changes or deletes. ``label`` is the row as it reads now; ``key`` is
    empty for an add."""

    kind: str  # "add", "change" or "delete"
    model: type[Model]
    key: str
    label: str
    fields: tuple[FieldChange, ...] = ()

    def entries(self) -> set[Entry]:
        model = self.model._meta.label_lower
        if self.kind == "delete":
            return {("delete", model, self.key, "", "", "")}
        entries = {
            (self.kind, model, self.key, field.name, field.old_bound, field.bound)
            for field in self.fields
        }
        if self.kind == "add":
            # An add needs approval even where no protected field is in the form.
            entries.add(("add", model, "", "", "", ""))
        return entries


@dataclass(frozen=True)
class ProtectedChange:
    """What a protected operation does: what its approval binds and its question names.

    ``kind`` is ``"add"``, ``"change"`` (the change form, or the change list's
    editable columns), ``"delete"`` or ``"action"``. ``keys`` are the primary keys
    it touches (none for an add); ``fields`` the protected fields of the change
    form with their new values; ``rows`` the protected inline rows (or change list
    rows) it adds, changes or deletes; ``action`` and ``action_description`` an
    action's name and label.

    Like the ``change`` argument of Django's admin hooks, it is true for a change of
    existing objects and false for anything else.
    """

    kind: str
    model: type[Model]
    keys: tuple[str, ...] = ()
    fields: tuple[FieldChange, ...] = ()
    rows: tuple[RowChange, ...] = ()
    action: str = ""
    action_description: str = ""
    entries: frozenset[Entry] = frozenset()

    def __bool__(self) -> bool:
        return self.kind == "change"

    @property
    def count(self) -> int:
        """How many objects it touches (an add: none yet)."""
        return len(self.keys)

    def bound(self) -> dict[str, Any]:
        """What the approval binds, besides what the gate binds of every request."""
        return {
            "operation": self.kind,
            "model": self.model._meta.label_lower,
            "keys": list(self.keys),
            "action": self.action,
            "entries": sorted(self.entries),
        }


# --- what a form would change -------------------------------------------------------------


@dataclass(frozen=True)
class Protection:
    """What is protected of one model's forms: field names (or all), and deletes."""

    fields: tuple[str, ...] | str = ()
    delete: bool = False

    @classmethod
    def of(cls, options: Any) -> Protection:
        """The ``mfa_protect_*`` options of a ModelAdmin or an inline."""
        names = getattr(options, "mfa_protect_fields", ()) or ()
        if names != ALL_FIELDS:
            names = option_names(names, "mfa_protect_fields", options)
        return cls(names, bool(getattr(options, "mfa_protect_delete", False)))

    def __bool__(self) -> bool:
        return bool(self.fields) or self.delete

    def names(self, form: BaseForm, skip: Iterable[str] = ()) -> list[str]:
        """The protected fields the form has."""
        if self.fields == ALL_FIELDS:
            left_out = {DELETION_FIELD_NAME, ORDERING_FIELD_NAME, *skip}
            return [name for name in form.fields if name not in left_out]
        return [name for name in self.fields if name in form.fields]

    def changes(
        self, form: BaseForm, stored: Model | None, *, adding: bool, skip: Iterable[str] = ()
    ) -> tuple[FieldChange, ...]:
        """The protected fields the save of the validated ``form`` writes: all of them
        for an add, else those whose value differs from the ``stored`` row's (read
        from the database; None where the row is gone, and then all of them).

        Decided from the database and the cleaned values alone: never from the form's
        ``changed_data``, which the ``initial-`` values a browser sends back decide.
        """
        model: type[Model] = form._meta.model  # type: ignore[attr-defined]
        written = written_row(form, stored)
        changes = []
        for name in self.names(form, skip):
            old, new = compare(form, name, stored, written, adding=adding)
            if old is not None and old.bound == new.bound:
                continue
            changes.append(
                FieldChange(
                    name,
                    _field_label(model, form, name),
                    new.value,
                    new.shown,
                    old_value=old.value if old else None,
                    old_shown=old.shown if old else "",
                    bound=new.bound,
                    old_bound=old.bound if old else "",
                )
            )
        return tuple(changes)


def option_names(value: Any, option: str, owner: Any) -> tuple[str, ...]:
    """A sequence of names; a lone string would be read letter by letter, leaving
    what it names unprotected."""
    if isinstance(value, str):
        raise ImproperlyConfigured(
            f"{qualname(owner)}.{option} takes a sequence of names"
            + (" or '__all__'" if option == "mfa_protect_fields" else "")
            + f", not the string {value!r}: write ({value!r},)"
        )
    return tuple(value)


def qualname(owner: Any) -> str:
    cls = owner if isinstance(owner, type) else type(owner)
    return f"{cls.__module__}.{cls.__qualname__}"


def _field_label(model: type[Model], form: BaseForm, name: str) -> str:
    try:
        label = getattr(model._meta.get_field(name), "verbose_name", None)
    except FieldDoesNotExist:
        label = None
    return str(label or form.fields[name].label or name)


def _shorten(text: str, length: int) -> str:
    """One line; a long text keeps its head and its tail."""
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    tail = length // 3
    return f"{text[: length - tail - 1]}…{text[-tail:]}"


def is_field(model: type[Model], name: str) -> bool:
    """A field of the model a form can edit (not a reverse relation)."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return not field.auto_created or field.concrete


def object_text(obj: Model) -> str:
    try:
        return _shorten(str(obj), OBJECT_LENGTH)
    except Exception:  # an unsaved object's __str__ may need what it lacks yet
        return str(obj._meta.verbose_name)


def row_changes(formset: Any, protection: Protection, *, can_change: bool) -> list[RowChange]:
    """The protected rows a validated formset's save adds, changes or deletes.

    An existing row changes where a protected field's value differs from the row as
    the database holds it, whatever the form says changed. A view-only inline
    changes nothing whatever the request sent: Django leaves its rows as they are.
    """
    if not protection:
        return []
    model = formset.model
    skip = {model._meta.pk.name}
    fk = getattr(formset, "fk", None)
    if fk is not None:
        skip.add(fk.name)  # the parent, bound as the operation's own key
    deleted = {id(form) for form in formset.deleted_forms}
    stored = stored_rows(model, (form.instance.pk for form in formset.initial_forms))
    rows = []
    for form in formset.initial_forms:
        key = str(form.instance.pk)
        row = stored.get(key)
        label = object_text(row if row is not None else form.instance)
        if id(form) in deleted:
            if protection.delete:
                rows.append(RowChange("delete", model, key, label))
            continue
        if not can_change:
            continue
        fields = protection.changes(form, row, adding=False, skip=skip)
        if fields:
            rows.append(RowChange("change", model, key, label, fields))
    if protection.fields and can_change:
        for form in formset.extra_forms:
            # Django's formset saves a new row only where its form has changed (and
            # the admin's, only with the add permission): no row, nothing to approve.
            # Every protected value of a row it saves is bound.
            if id(form) in deleted or not form.has_changed():
                continue
            fields = protection.changes(form, None, adding=True, skip=skip)
            rows.append(RowChange("add", model, "", object_text(form.instance), fields))
    return rows


def entries_of(rows: Iterable[RowChange]) -> frozenset[Entry]:
    return frozenset(entry for row in rows for entry in row.entries())


# --- the question -------------------------------------------------------------------------


def default_question(change: ProtectedChange, obj: Model | None) -> str:
    """The question on the phone, worded from the change: "Change IBAN of Shop #12 from
    DE89370400440532013000 to DE44500105175407324931?", "Delete 3 payments?", "Run
    'Mark as paid' on 14 payments?". It names every value the approval binds, whole:
    each protected field's stored and new value (an add's new values)."""
    opts = change.model._meta
    if change.kind == "action":
        if change.action == "delete_selected":
            return ngettext(
                "Delete %(count)d %(model)s?", "Delete %(count)d %(model)s?", change.count
            ) % {"count": change.count, "model": model_ngettext(opts, change.count)}
        return ngettext(
            "Run '%(action)s' on %(count)d %(model)s?",
            "Run '%(action)s' on %(count)d %(model)s?",
            change.count,
        ) % {
            "action": change.action_description,
            "count": change.count,
            "model": model_ngettext(opts, change.count),
        }
    if change.kind == "delete":
        return _("Delete %(model)s %(object)s?") % {
            "model": opts.verbose_name,
            "object": object_text(obj) if obj is not None else ", ".join(change.keys),
        }
    rows = [_row_text(row) for row in change.rows]
    if change.kind == "add":
        values = ", ".join(
            _("%(field)s %(value)s") % {"field": field.label, "value": field.shown}
            for field in change.fields
        )
        details = "; ".join(part for part in [values, *rows] if part)
        if not details:
            return _("Add %(model)s?") % {"model": opts.verbose_name}
        return _("Add %(model)s: %(details)s?") % {"model": opts.verbose_name, "details": details}
    if obj is None:  # the change list's editable columns
        return _("Change %(details)s?") % {"details": "; ".join(rows)}
    if len(change.fields) == 1 and not rows:
        [field] = change.fields
        return _("Change %(field)s of %(object)s from %(old)s to %(value)s?") % {
            "field": field.label,
            "object": object_text(obj),
            "old": field.old_shown,
            "value": field.shown,
        }
    values = _changed(change.fields)
    return _("Change %(object)s: %(details)s?") % {
        "object": object_text(obj),
        "details": "; ".join(part for part in [values, *rows] if part),
    }


def _row_text(row: RowChange) -> str:
    model = row.model._meta.verbose_name
    if row.kind == "delete":
        return _("delete %(model)s %(object)s") % {"model": model, "object": row.label}
    if row.kind == "add":
        if not row.fields:
            return _("add %(model)s %(object)s") % {"model": model, "object": row.label}
        values = ", ".join(
            _("%(field)s %(value)s") % {"field": field.label, "value": field.shown}
            for field in row.fields
        )
        return _("add %(model)s with %(values)s") % {"model": model, "values": values}
    if len(row.fields) == 1:
        [field] = row.fields
        return _("%(field)s of %(object)s from %(old)s to %(value)s") % {
            "field": field.label,
            "object": row.label,
            "old": field.old_shown,
            "value": field.shown,
        }
    return _("%(object)s: %(values)s") % {"object": row.label, "values": _changed(row.fields)}


def _changed(fields: Iterable[FieldChange]) -> str:
    """Each field's change: "IBAN from DE89370400440532013000 to DE44500105175407324931"."""
    return ", ".join(
        _("%(field)s from %(old)s to %(value)s")
        % {"field": field.label, "old": field.old_shown, "value": field.shown}
        for field in fields
    )
