"""What the phone's default question names: every value the approval binds.

The user approves what the phone shows, so a gate without ``question=`` shows every
value its approval binds (:mod:`hyperid_mfa.gate.fingerprint`), by name, in this order:

1. the URL arguments, in the URL pattern's order (unnamed ones as ``#1``, ``#2``);
2. the query string, its fields sorted by name;
3. the body: a form's fields and uploads, or a JSON object's members, sorted by
   name (with ``bind=`` field names, just those, in ``bind``'s order); a JSON array
   or scalar whole, as ``body``; a body bound by its bytes (not a form or JSON, or
   a form that also reads as JSON) as its text, as ``body``; with a ``bind``
   callable, what it returns (a mapping by key, sorted; anything else as
   ``values``).

``require_approval`` binds the cleaned ``values=`` it is given instead of the body:
its question names the URL arguments and the query string as above, then those
values, sorted by name. A query field that is also a value, shown the same, is shown
once (a GET form's fields are both).

Inside a window the default binding does not apply: the window's question names
what the window binds, the fields ``bind=`` names (body and query string) or what a
``bind`` callable returns, and nothing for the default binding.

Values are shown as text: repeated fields as a list (``[1, 2]``), uploads by file
name and size, nested JSON compactly. Text that could be misread inside the question
(empty, with a comma, question mark, semicolon or quote, or spaces at its ends) is
shown quoted, so a value cannot pass for another field. Text that holds what the
phone does not show as itself (a control or format character, a zero-width or
other default-ignorable character, any space but a single plain one) is shown
quoted with those characters escaped (``"Bob\u2060 Smith"``): removed or merged,
they would make two values read alike. A name that comes twice
(``amount`` in the query and in the body) is shown with where it comes from. A body
that is not text cannot be shown: the gate refuses it (:class:`QuestionNotShowable`),
and the developer words the question with ``question=``. Bidi and control
characters are removed where every push starts (:func:`hyperid_mfa.services.pushes.clean_question`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

from django.core.files.base import File
from django.utils.translation import gettext_lazy as _

from ..client import wire
from ..exceptions import QuestionNotShowable
from .fingerprint import CSRF_FIELD, Binder, Body, call_binder, django_request, read_body

#: Text shown quoted: it could be misread next to the question's own punctuation.
_AMBIGUOUS = re.compile(r'^$|^\s|\s$|[,;?"]')

# What the phone does not show as itself: controls, format characters (bidi, zero
# width), surrogates, private use, unassigned code points, separators and every space
# but the plain one (the push removes or merges these), and the letters and marks
# that render as nothing (Unicode's Default_Ignorable_Code_Point, and the Braille blank).
_UNSHOWN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
_RENDERED_AS_NOTHING = frozenset(
    chain(
        (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0),
        range(0x180B, 0x1810),
        range(0xFE00, 0xFE10),
        range(0xE0100, 0xE01F0),
    )
)

# Where a value comes from, for a name that comes from two places.
_URL, _QUERY, _BODY, _VALUES = "url", "query", "body", "values"
_FROM = {
    _URL: _("%(name)s in the URL"),
    _QUERY: _("%(name)s in the query"),
    _BODY: _("%(name)s in the body"),
    _VALUES: _("%(name)s (validated)"),
}

NOT_TEXT_HINT = (
    "The default question names every value the approval binds, and the request's "
    "body is not text. Pass question= to the gate, worded from the values the view "
    "acts on."
)


class _Shown:
    """The values a question shows, by name, in the order added."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, name: str, values: Sequence[Any], where: str) -> None:
        label = text(name)
        if label in self.values:
            label = str(_FROM[where] % {"name": label})
        unique, count = label, 1
        while unique in self.values:
            count += 1
            unique = f"{label} ({count})"
        self.values[unique] = shown_as(values)


def shown_as(values: Sequence[Any]) -> str:
    """One name's values as the question shows them: one, or a list of several."""
    shown = [show(value) for value in values]
    return shown[0] if len(shown) == 1 else f"[{', '.join(shown)}]"


def question_values(
    request: Any, bind: Binder, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, str]:
    """Every value the approval of ``request`` binds, by name, as the default
    question shows them (module docstring). ``args`` and ``kwargs`` are the gated
    view's, passed to a ``bind`` callable.

    Raises :class:`QuestionNotShowable` for a body that is not text.
    """
    shown = _Shown()
    _add_url_and_query(shown, request)
    _add_body(shown, request, bind, args, kwargs)
    return shown.values


def cleaned_question_values(request: Any, values: Mapping[str, Any]) -> dict[str, str]:
    """What ``require_approval``'s approval binds, by name, as the default question
    shows it: the URL arguments, the query string, then ``values`` (the values the
    view acts on, as :class:`~hyperid_mfa.gate.values.BoundValues` shows them) sorted by
    name. A query field shown exactly as the value of the same name is shown once."""
    shown = _Shown()
    _add_url_and_query(shown, request)
    for name in sorted(values):
        if shown.values.get(text(name)) != shown_as([values[name]]):
            shown.add(name, [values[name]], _VALUES)
    return shown.values


def _add_url_and_query(shown: _Shown, request: Any) -> None:
    plain = django_request(request)
    match = getattr(plain, "resolver_match", None)
    if match is not None:
        for index, arg in enumerate(match.args, start=1):
            shown.add(f"#{index}", [arg], _URL)
        for name, value in match.kwargs.items():
            shown.add(str(name), [value], _URL)
    for name in sorted(plain.GET):
        shown.add(name, plain.GET.getlist(name), _QUERY)


def window_question_values(
    request: Any, bind: Binder, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, str]:
    """What a window opened by ``request``'s approval binds, by name (nothing for the
    default binding, which does not apply inside a window)."""
    shown = _Shown()
    if bind is None:
        return shown.values
    if not callable(bind):
        query = django_request(request).GET
        for name in bind:
            if name in query:
                shown.add(name, query.getlist(name), _QUERY)
    _add_body(shown, request, bind, args, kwargs)
    return shown.values


def _add_body(
    shown: _Shown,
    request: Any,
    bind: Binder,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> None:
    body = read_body(request)
    if callable(bind):
        _add_bound(shown, call_binder(bind, request, args, kwargs))
    if body.raw:
        # Bound by its bytes whatever bind says: the view may read all of it.
        shown.add("body", [_body_text(request)], _BODY)
        return
    if callable(bind):
        return
    names = None if bind is None else list(bind)
    if body.kind == "form":
        _add_form(shown, body, names)
    elif body.kind == "json" and isinstance(body.value, Mapping):
        members = body.value
        for name in sorted(members, key=str) if names is None else names:
            if name in members:
                shown.add(str(name), [members[name]], _BODY)
    elif body.kind == "json":
        shown.add("body", [body.value], _BODY)


def _add_form(shown: _Shown, body: Body, names: list[str] | None) -> None:
    if names is None:
        names = sorted({*body.form, *body.files} - {CSRF_FIELD})
    for name in names:
        values = [*body.form.getlist(name), *body.files.getlist(name)]
        if values:
            shown.add(name, values, _BODY)


def _add_bound(shown: _Shown, bound: Any) -> None:
    if bound is None:
        return
    if isinstance(bound, Mapping):
        for key in sorted(bound, key=str):
            shown.add(str(key), [bound[key]], _BODY)
    else:
        shown.add("values", [bound], _BODY)


def _body_text(request: Any) -> str:
    try:
        return bytes(django_request(request).body).decode("utf-8")
    except UnicodeDecodeError:
        raise QuestionNotShowable(
            "the request body is not UTF-8 text", hint=NOT_TEXT_HINT
        ) from None


# --- values as text -------------------------------------------------------------------


def text(value: str) -> str:
    """``value`` as the question shows text: as it is, or quoted where it could be
    misread, with what the phone does not show escaped (module docstring)."""
    if _AMBIGUOUS.search(value) or _has_unshown(value):
        return _quoted(value)
    return value


def _unshown(char: str, previous: str) -> bool:
    if char == " ":
        return previous == " "  # a run of spaces reads as one
    return unicodedata.category(char) in _UNSHOWN_CATEGORIES or ord(char) in _RENDERED_AS_NOTHING


def _has_unshown(value: str) -> bool:
    return any(
        _unshown(char, previous) for previous, char in zip(" " + value[:-1], value, strict=True)
    )


def _quoted(value: str) -> str:
    """``value`` as a JSON string whose characters the phone would not show as
    themselves are escaped (``\u2060``), so that every value reads as itself."""
    quoted = json.dumps(value, ensure_ascii=False)
    return "".join(
        (f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
        if _unshown(char, previous)
        else char
        for previous, char in zip(quoted[:1] + quoted[:-1], quoted, strict=True)
    )


def show(value: Any) -> str:
    """One bound value as the question shows it."""
    if isinstance(value, File):
        return f"{text(str(value.name))} ({value.size} bytes)"
    if isinstance(value, wire.NumberText):
        return str.__str__(value)
    if isinstance(value, str):
        return text(value)
    if value is None or isinstance(value, (bool, int, float, Mapping, list, tuple)):
        return compact(value)
    return text(str(value))


def compact(value: Any) -> str:
    """A JSON value in one line: sorted keys, numbers as sent, text as it is."""
    try:
        return _compact(value)
    except RecursionError:
        raise QuestionNotShowable(
            "a bound value is nested too deeply", hint=NOT_TEXT_HINT
        ) from None


def _compact(value: Any) -> str:
    if isinstance(value, wire.NumberText):
        return str.__str__(value)
    if isinstance(value, Mapping):
        items = sorted(((str(key), item) for key, item in value.items()), key=lambda kv: kv[0])
        return "{" + ",".join(f"{_compact(key)}:{_compact(item)}" for key, item in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_compact(item) for item in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _quoted(value)
    if value is None or isinstance(value, (bool, int)):
        return json.dumps(value)
    return _quoted(str(value))
