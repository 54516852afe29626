"""The values a view acts on, in one canonical form: what ``require_approval``'s
``values=`` binds instead of the body, and what its question shows.

A view that has validated its input passes the cleaned values it will act on. Equal
values give equal bindings and different ones different bindings, whatever object
carries them:

- text (``str`` and its subclasses, ``TextChoices`` too): exactly as it is, no case
  folding, no Unicode normalisation, no trimming;
- ``int`` (``IntegerChoices`` too), ``bool``, ``None``: themselves; ``True`` is not
  ``1``, and an ``int`` is never equal to a ``Decimal`` or a ``float``;
- ``Decimal``: by value, finite only. ``Decimal("250")``, ``Decimal("250.00")`` and
  ``Decimal("2.5E+2")`` are one amount (a cleaned ``DecimalField`` of a form keeps
  what was typed, ``"250"`` or ``"250.00"``; DRF's rounds to its places), and ``-0``
  is ``0``;
- ``float``: by value, finite only (``-0.0`` is ``0.0``);
- ``datetime``: an aware one as the instant it names, in UTC (``10:00+02:00`` is
  ``08:00Z``); a naive one as the wall-clock time written, and its ``fold`` (the
  second time of the hour that happens twice), never equal to an aware one;
- ``date``, ``time``: ISO 8601; a ``time`` with a ``tzinfo`` must have a fixed offset;
- ``UUID``: its value;
- a model instance: its concrete model (a proxy's rows are its model's) and its
  primary key; an unsaved instance has none and is refused;
- a file (``File``, ``UploadedFile``): its name, size and SHA-256;
- ``list`` and ``tuple``: their items in order (a tuple is bound as a list);
- a mapping with ``str`` keys: by key (order does not matter).

Anything else raises ``TypeError`` where ``require_approval`` is called, naming the
value by its place (``values['accounts']``): a ``set`` (no order: pass
``sorted(...)``), a ``QuerySet`` (evaluated anew each time it is used: pass the
``list`` the view acts on), a ``QueryDict`` such as ``request.POST`` (as a mapping it
gives only the last value of a repeated field: pass the form's ``cleaned_data``, or
``dict(request.POST.lists())``), bytes, a lazy translation, an object of your own.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.core.files.base import File
from django.db.models import Model, QuerySet
from django.utils.datastructures import MultiValueDict

from ..client.wire import NumberText

#: How deep values may nest (a list in a mapping in a list...).
MAX_DEPTH = 32

#: Why some types are refused, for the TypeError.
_REFUSED = (
    ((set, frozenset), "it has no order: pass sorted(...) of it"),
    (
        QuerySet,
        "it is evaluated anew each time it is used: pass list(...) of it and act on that list",
    ),
    ((bytes, bytearray, memoryview), "bind text or a file instead"),
)

#: Why a ``QueryDict`` (``request.POST``) is refused: as a mapping it gives only the
#: last value of a repeated field, which the view may not be acting on.
_MULTI_VALUE = (
    "as a mapping it gives only the last value of a repeated field "
    "(payee=Bob&payee=Eve would bind Eve alone): pass the form's cleaned_data, "
    "or dict(request.POST.lists())"
)


@dataclass(frozen=True)
class BoundValues:
    """``values=`` read once: ``canonical`` is what the fingerprint binds (JSON-able),
    ``shown`` what the default question shows, by name."""

    canonical: list[Any]
    shown: dict[str, Any]


def bind_values(values: Mapping[str, Any]) -> BoundValues:
    """The canonical form of ``values`` (module docstring), or ``TypeError`` naming
    the first value that has none."""
    if isinstance(values, MultiValueDict):
        raise TypeError(f"values is {_type_name(values)}, which cannot be bound: {_MULTI_VALUE}")
    if not isinstance(values, Mapping):
        raise TypeError(
            f"values= takes a mapping of names to the values the view acts on, "
            f"not {_type_name(values)}"
        )
    canonical, shown = _canonical(values, "values", 0)
    return BoundValues(canonical, shown)


def _canonical(value: Any, where: str, depth: int) -> tuple[Any, Any]:
    """(what is bound, what is shown) of one value; ``where`` names it for errors."""
    if depth > MAX_DEPTH:
        raise TypeError(f"{where} nests more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return ["const", value], value
    if isinstance(value, str):
        text = str.__str__(value)
        return ["str", text], text
    if isinstance(value, int):
        number = int(value)
        # In hex: Python refuses to write a decimal text of more than 4,300 digits.
        return ["int", hex(number)], number
    if isinstance(value, Decimal):
        return ["decimal", _decimal(value, where)], NumberText(str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where} is not a finite number ({value})")
        return ["float", repr(value + 0.0)], value  # + 0.0 makes -0.0 0.0
    if isinstance(value, datetime):
        return _datetime(value), str(value)
    if isinstance(value, date):
        return ["date", value.isoformat()], value.isoformat()
    if isinstance(value, time):
        if value.tzinfo is not None and value.utcoffset() is None:
            raise TypeError(
                f"{where} is a time in a time zone without a fixed offset: bind a "
                "datetime, or the time without its tzinfo"
            )
        return ["time", value.isoformat(), *_fold(value)], value.isoformat()
    if isinstance(value, UUID):
        return ["uuid", value.hex], str(value)
    if isinstance(value, Model):
        return _instance(value, where, depth)
    if isinstance(value, File):
        return _file(value), value
    if isinstance(value, MultiValueDict):
        raise TypeError(f"{where} is {_type_name(value)}, which cannot be bound: {_MULTI_VALUE}")
    if isinstance(value, Mapping):
        return _mapping(value, where, depth)
    if isinstance(value, (list, tuple)):
        items = [
            _canonical(item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value)
        ]
        return ["list", [bound for bound, _shown in items]], [shown for _bound, shown in items]
    for types, why in _REFUSED:
        if isinstance(value, types):
            raise TypeError(f"{where} is {_type_name(value)}, which cannot be bound: {why}")
    raise TypeError(
        f"{where} is {_type_name(value)}, which cannot be bound: bind text, numbers, "
        "dates and times, UUIDs, model instances, files, and lists or mappings of them "
        "(docs/gate.md, 'Validate first, then ask')"
    )


def _mapping(value: Mapping[Any, Any], where: str, depth: int) -> tuple[Any, Any]:
    bound: list[list[Any]] = []
    shown: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{where} has a key that is not a str: {_type_name(key)}")
        name = str.__str__(key)
        bound_item, shown[name] = _canonical(item, f"{where}[{name!r}]", depth + 1)
        bound.append([name, bound_item])
    bound.sort(key=lambda pair: pair[0])
    return ["map", bound], shown


def _decimal(value: Decimal, where: str) -> str:
    """The value of a finite Decimal, one text per value: digits without trailing
    zeros and an exponent (exact: ``normalize()`` would round to the context)."""
    if not value.is_finite():
        raise TypeError(f"{where} is not a finite number ({value})")
    if value.is_zero():
        return "0"
    sign, digits, exponent = value.as_tuple()
    kept = list(digits)
    while kept[-1] == 0:
        kept.pop()
        exponent = int(exponent) + 1
    return f"{'-' if sign else ''}{''.join(map(str, kept))}E{exponent}"


def _datetime(value: datetime) -> list[str]:
    if value.utcoffset() is None:
        return ["naive-datetime", value.isoformat(), *_fold(value)]
    return ["datetime", value.astimezone(timezone.utc).isoformat()]


def _fold(value: datetime | time) -> list[str]:
    """A naive wall-clock time in the hour that happens twice as the clocks go back
    names two instants, which ``fold`` tells apart (``isoformat()`` and ``==`` do not):
    the second of them is bound apart from the first (the first as before)."""
    return ["fold=1"] if value.tzinfo is None and value.fold else []


def _instance(value: Model, where: str, depth: int) -> tuple[Any, Any]:
    model = value._meta.concrete_model or type(value)
    if value.pk is None:
        raise TypeError(
            f"{where} is an unsaved {model._meta.label} instance: it has no primary key to bind"
        )
    key, _shown = _canonical(value.pk, f"{where}.pk", depth + 1)
    return ["model", model._meta.label_lower, key], str(value)


def _file(value: File) -> list[Any]:
    digest = hashlib.sha256()
    for chunk in value.chunks():
        digest.update(chunk)
    value.seek(0)  # the view reads it next
    return ["file", str(value.name or ""), value.size, digest.hexdigest()]


def _type_name(value: Any) -> str:
    kind = type(value)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    name = f"{module}{kind.__qualname__}"
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"
