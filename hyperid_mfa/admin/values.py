"""A protected field's value in the admin: as the database holds it, and as a save
would write it.

:class:`~hyperid_mfa.admin.step_up.MFAProtectedAdminMixin` decides what a save changes
by comparing the two, field by field, and never by asking the form. A form's
``changed_data`` (and ``has_changed()``) compares the submitted value with the
``initial-<name>`` value that the browser sends back for every field with a callable
default: a client that sends its new value twice declares it unchanged.

- The stored value is read from the database (:func:`stored_rows`), not from the
  form's instance: validation has already written the new values into it.
- The new value is the one the save writes: the cleaned values put into a copy of the
  stored row as Django's ``construct_instance`` puts them (:func:`written_row`, with
  Django's own rule for omitted fields), a many-to-many field's cleaned objects, an
  upload by its content.
- Both are compared as one canonical text (:func:`bound_text`) of the value as the
  database keeps it: after the model field's ``to_python``, a decimal at the field's
  places, an aware time in UTC, JSON with sorted keys, a relation by primary key.
  "1.0" and "1.00" are one amount, ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` one
  object; " DE89" (which the form strips) and "DE89" one IBAN, "de89" another.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, ValidationError
from django.core.files.base import File
from django.db import router, transaction
from django.db.models import Field, FileField, JSONField, Model, QuerySet
from django.db.models.fields.files import FieldFile
from django.forms import BaseForm
from django.forms.models import construct_instance
from django.utils import timezone
from django.utils.translation import gettext as _

from ..gate.fingerprint import canonical_json


class Value:
    """One field's value, as the database keeps it (``held``: a relation's key, a file,
    a many-to-many field's objects).

    ``bound`` is its canonical text, as the approval binds it; ``value`` as Python
    holds it (a relation's object, read from ``instance`` when first asked for);
    ``shown`` as the question names it, whole and on one line.
    """

    def __init__(
        self, field: Field[Any, Any] | None, held: Any, instance: Model | None = None
    ) -> None:
        self.field, self.held, self.instance = field, held, instance

    @cached_property
    def bound(self) -> str:
        return bound_text(self.field, self.held)

    @cached_property
    def value(self) -> Any:
        field, held = self.field, self.held
        if self.instance is None or field is None or held is None:
            return held
        if not (field.many_to_one or field.one_to_one):
            return held
        try:
            return getattr(self.instance, field.name)
        except ObjectDoesNotExist:  # a dangling key
            return held

    @cached_property
    def shown(self) -> str:
        return shown_text(self.field, self.value)


class _Absent(Value):
    """The stored value of a row that is gone: never one a save writes."""

    def __init__(self) -> None:
        super().__init__(None, None)
        self.bound = "<absent>"


def stored_rows(model: type[Model], keys: Iterable[Any]) -> dict[str, Model]:
    """The rows as the database holds them now, by primary key as text.

    Read from the database the admin writes to, bypassing the default manager's
    filters; locked until the end of the transaction where one is open (the admin's
    save), so that what was compared is what the save overwrites.
    """
    keys = [key for key in keys if key is not None]
    if not keys:
        return {}
    using = router.db_for_write(model)
    # No ordering: a Meta.ordering across a nullable relation would join the table that
    # PostgreSQL cannot lock (FOR UPDATE on the nullable side of an outer join).
    rows = model._base_manager.db_manager(using).filter(pk__in=keys).order_by()
    if not transaction.get_autocommit(using):
        rows = rows.select_for_update()
    return {str(row.pk): row for row in rows}


def model_field(model: type[Model], name: str) -> Field[Any, Any] | None:
    """The model's field a form field of that name saves, if any."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    if isinstance(field, Field) and (field.concrete or field.many_to_many):
        return field
    return None


def written_row(form: BaseForm, stored: Model | None) -> Model:
    """The row as saving the validated ``form`` writes it: its cleaned values put into a
    copy of the ``stored`` row (of the form's new instance for an add) the way Django's
    ModelForm puts them into its instance (``construct_instance``, which leaves a field
    with a default alone where the POST omits it). Neither row is changed, and what the
    project's own code does to the form's instance later is not counted as the form's.
    """
    base = copy.copy(stored if stored is not None else form.instance)  # type: ignore[attr-defined]
    options = form._meta  # type: ignore[attr-defined]
    return construct_instance(form, base, options.fields, options.exclude)


def compare(
    form: BaseForm, name: str, stored: Model | None, written: Model, *, adding: bool
) -> tuple[Value | None, Value]:
    """(held, written): field ``name`` as the ``stored`` row holds it, and as saving the
    validated ``form`` writes it (the ``written`` row of :func:`written_row`; a
    many-to-many field is saved from the cleaned objects). ``held`` is None for an
    add, and an absent value where the row to change is gone."""
    model: type[Model] = form._meta.model  # type: ignore[attr-defined]
    field = model_field(model, name)
    form_field = form.fields[name]
    if field is None:
        # A field of the form alone, saved by the form's own code: compared with the
        # initial value the server gave the form, never with one the client sent.
        new = Value(None, form.cleaned_data.get(name))
        if adding:
            return None, new
        initial = form.get_initial_for_field(form_field, name)
        with contextlib.suppress(ValidationError, TypeError, ValueError):
            initial = form_field.clean(initial)
        return Value(None, initial), new
    if field.many_to_many:
        # Saved after the row, from the cleaned objects (the form's save_m2m).
        new = Value(field, _ordered(form.cleaned_data.get(name) or ()))
    else:
        new = Value(field, field.value_from_object(written), written)
    if adding:
        return None, new
    if stored is None:
        return _Absent(), new
    if field.many_to_many:
        return Value(field, _ordered(getattr(stored, name).all())), new
    held = field.value_from_object(stored)
    if _drops_microseconds(form_field, new.held) and isinstance(
        held, (datetime.datetime, datetime.time)
    ):
        # The form shows times to the second, as Django renders them: the stored
        # value sent back as the form showed it is no change.
        held = held.replace(microsecond=0)
    return Value(field, held, stored), new


def _ordered(objects: Iterable[Model]) -> list[Model]:
    return sorted(objects, key=lambda obj: str(obj.pk))


def _drops_microseconds(form_field: Any, value: Any) -> bool:
    return (
        isinstance(value, (datetime.datetime, datetime.time))
        and value.microsecond == 0
        and not getattr(form_field.widget, "supports_microseconds", True)
    )


# --- one text per value -------------------------------------------------------------------


def bound_text(field: Field[Any, Any] | None, value: Any) -> str:
    """One text per value as the database keeps it in ``field``."""
    return canonical_json(_plain(field, value))


def _plain(field: Field[Any, Any] | None, value: Any) -> Any:
    if isinstance(value, (FieldFile, File)):
        return _file(value)
    if isinstance(value, Model):
        return [value._meta.label_lower, str(value.pk)]
    if isinstance(value, (QuerySet, list, tuple)) and all(isinstance(v, Model) for v in value):
        return [_plain(None, item) for item in value]
    if field is not None and value is not None:
        with contextlib.suppress(ValidationError, TypeError, ValueError):
            value = field.to_python(value)
    if isinstance(value, Decimal) and value.is_finite():
        places = getattr(field, "decimal_places", None)
        if places is not None:
            with contextlib.suppress(InvalidOperation):
                value = value.quantize(Decimal(1).scaleb(-places))
        if not value:
            value = abs(value)  # the database keeps no negative zero
    elif isinstance(value, datetime.datetime) and timezone.is_aware(value):
        value = value.astimezone(datetime.timezone.utc)
    elif isinstance(value, (bytes, memoryview)):
        value = bytes(value).hex()
    return value


def _file(value: File[Any]) -> Any:
    """A stored file by its name; a new upload by its name, size and SHA-256."""
    if isinstance(value, FieldFile):
        if getattr(value, "_committed", True):
            return value.name or ""
        value = value.file
    digest = hashlib.sha256()
    for chunk in value.chunks():
        digest.update(chunk)
    value.seek(0)
    return {"upload": value.name or "", "size": value.size, "sha256": digest.hexdigest()}


def shown_text(field: Field[Any, Any] | None, value: Any) -> str:
    """A value as the question names it: whole, on one line."""
    return "".join(" " if char.isspace() else char for char in _shown(field, value))


def _shown(field: Field[Any, Any] | None, value: Any) -> str:
    if isinstance(field, JSONField) and value is not None:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, (FieldFile, File)):
        value = value.name
    if value is None or value == "" or (value is False and isinstance(field, FileField)):
        return _("(empty)")
    if isinstance(value, Model):
        return str(value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, QuerySet):
        value = list(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, Model) for v in value):
        return ", ".join(str(item) for item in value) or _("(empty)")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    plain = _plain(field, value)
    if isinstance(plain, datetime.datetime) and timezone.is_aware(plain):
        return timezone.localtime(plain).isoformat(sep=" ")
    choices = getattr(field, "flatchoices", None) or ()
    for choice, label in choices:
        if choice == plain:
            return str(label)
    return str(plain)
