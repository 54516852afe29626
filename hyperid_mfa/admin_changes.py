"""What a protected admin operation changes, as its approval binds it and as the
phone asks about it.

For :mod:`hyperid_mfa.admin_step_up`: the protected fields' new values, inline rows
added, changed or deleted, an action's rows (:class:`ProtectedChange`), in a
canonical form for the binding and shortened for the question
(:func:`default_question`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.files.uploadedfile import UploadedFile
from django.db.models import FileField, Model, QuerySet
from django.db.models.fields.files import FieldFile
from django.forms import BaseForm
from django.forms.formsets import DELETION_FIELD_NAME, ORDERING_FIELD_NAME
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .fingerprint import canonical_json

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    _ModelAdmin = ModelAdmin[Any]
else:
    _ModelAdmin = object


#: ``mfa_protect_fields = "__all__"``: every field of the form.
ALL_FIELDS = "__all__"
#: A value longer than this is shown shortened in the question (head…tail).
SHOWN_LENGTH = 40
#: An object's text longer than this is shortened in the question.
OBJECT_LENGTH = 60


#: One thing a protected operation does, as its approval binds it:
#: (operation, model label, primary key, field name, canonical value).
Entry = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class FieldChange:
    """A protected field as the save will write it: ``value`` as saved, ``shown`` as
    the question shows it."""

    name: str
    label: str
    value: Any
    shown: str


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
            return {("delete", model, self.key, "", "")}
        entries = {
            (self.kind, model, self.key, field.name, _canonical(field.value))
            for field in self.fields
        }
        if self.kind == "add":
            # An add needs approval even where no protected field is in the form.
            entries.add(("add", model, "", "", ""))
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
        self, form: BaseForm, *, adding: bool, skip: Iterable[str] = ()
    ) -> tuple[FieldChange, ...]:
        """The protected fields the save writes: all of them for an add, else the changed."""
        model: type[Model] = form._meta.model  # type: ignore[attr-defined]
        changed = set(form.changed_data)
        return tuple(
            FieldChange(name, _field_label(model, form, name), value, _shown(model, name, value))
            for name in self.names(form, skip)
            if adding or name in changed
            for value in [form.cleaned_data.get(name)]
        )


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


def _canonical(value: Any) -> str:
    """One text per value as the save writes it; an upload by name, size and SHA-256."""
    if isinstance(value, Model):
        return f"object:{value._meta.label_lower}:{value.pk}"
    if isinstance(value, QuerySet):
        return "objects:" + ",".join(sorted(str(pk) for pk in value.values_list("pk", flat=True)))
    if isinstance(value, UploadedFile):
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return f"upload:{value.name}:{value.size}:{digest.hexdigest()}"
    if isinstance(value, FieldFile):
        return f"stored:{value.name or ''}"
    if value is None or isinstance(value, (bool, dict)):
        return canonical_json(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    return f"{type(value).__name__}:{value}"


def _shorten(text: str, length: int = SHOWN_LENGTH) -> str:
    """One line; a long text keeps its head and its tail, since both ends of an
    account number matter to whoever checks it."""
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    tail = length // 3
    return f"{text[: length - tail - 1]}…{text[-tail:]}"


def _shown(model: type[Model], name: str, value: Any) -> str:
    """A value as the question shows it."""
    if value is None or value == "" or (value is False and _is_file_field(model, name)):
        return _("(empty)")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, (UploadedFile, FieldFile)):
        return _shorten(str(value.name or ""))
    if isinstance(value, QuerySet):
        value = list(value)
    if isinstance(value, (list, tuple)):
        return _shorten(", ".join(str(item) for item in value)) or _("(empty)")
    try:
        choices = dict(model._meta.get_field(name).flatchoices)  # type: ignore[union-attr]
    except (FieldDoesNotExist, AttributeError, TypeError):
        choices = {}
    return _shorten(str(choices.get(value, value)))


def is_field(model: type[Model], name: str) -> bool:
    """A field of the model a form can edit (not a reverse relation)."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return not field.auto_created or field.concrete


def _is_file_field(model: type[Model], name: str) -> bool:
    try:
        return isinstance(model._meta.get_field(name), FileField)
    except FieldDoesNotExist:
        return False


def object_text(obj: Model) -> str:
    try:
        return _shorten(str(obj), OBJECT_LENGTH)
    except Exception:  # an unsaved object's __str__ may need what it lacks yet
        return str(obj._meta.verbose_name)


def row_changes(
    formset: Any, protection: Protection, *, can_change: bool, labels: dict[int, str]
) -> list[RowChange]:
    """The protected rows a validated formset's save adds, changes or deletes.

    ``labels`` holds the existing rows' texts from before validation, which writes
    the new values into the instances. A view-only inline changes nothing whatever
    the request sent: Django leaves its rows as they are.
    """
    if not protection:
        return []
    model = formset.model
    skip = {model._meta.pk.name}
    fk = getattr(formset, "fk", None)
    if fk is not None:
        skip.add(fk.name)  # the parent, bound as the operation's own key
    deleted = {id(form) for form in formset.deleted_forms}
    rows = []
    for form in formset.initial_forms:
        key, label = str(form.instance.pk), labels.get(id(form), "")
        if id(form) in deleted:
            if protection.delete:
                rows.append(RowChange("delete", model, key, label or object_text(form.instance)))
            continue
        if not can_change or not form.has_changed():
            continue
        fields = protection.changes(form, adding=False, skip=skip)
        if fields:
            rows.append(
                RowChange("change", model, key, label or object_text(form.instance), fields)
            )
    if protection.fields and can_change:
        for form in formset.extra_forms:
            if id(form) in deleted or not form.has_changed():
                continue
            fields = protection.changes(form, adding=True, skip=skip)
            rows.append(RowChange("add", model, "", object_text(form.instance), fields))
    return rows


def entries_of(rows: Iterable[RowChange]) -> frozenset[Entry]:
    return frozenset(entry for row in rows for entry in row.entries())


# --- the question -------------------------------------------------------------------------


def default_question(change: ProtectedChange, obj: Model | None) -> str:
    """The question on the phone, worded from the change: "Change IBAN of Shop #12 to
    DE89…?", "Delete 3 payments?", "Run 'Mark as paid' on 14 payments?"."""
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
        return _("Change %(field)s of %(object)s to %(value)s?") % {
            "field": field.label,
            "object": object_text(obj),
            "value": field.shown,
        }
    values = ", ".join(
        _("%(field)s to %(value)s") % {"field": field.label, "value": field.shown}
        for field in change.fields
    )
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
    return ", ".join(
        _("%(field)s of %(object)s to %(value)s")
        % {"field": field.label, "object": row.label, "value": field.shown}
        for field in row.fields
    )
