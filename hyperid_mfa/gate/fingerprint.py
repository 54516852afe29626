"""The fingerprint that binds an approval to one request ("dynamic linking").

An approval is valid only for a request with the same fingerprint: an HMAC (keyed
with SECRET_KEY, so a client can neither compute nor forge one) over a canonical
form of the request. What it covers:

- always: the method, the path, the URL arguments (those of the URL pattern that
  routed the request), the whole query string,
  and, where the request has a session, the session key (an approval won in one
  browser cannot be consumed from another);
- the body, as the view will read it:

  - a form (``application/x-www-form-urlencoded`` or ``multipart/form-data``, in any
    spelling Django accepts) by its fields, read by Django's own parsers for every
    method (Django fills ``request.POST`` for POST only), and its uploaded files by
    field, name, size and SHA-256; the CSRF token is left out, as it changes
    between page loads;
  - JSON by its value, parsed strictly: UTF-8 only, no duplicate keys, no NaN or
    Infinity, every number kept as the literal the client sent (so ``100`` and
    ``100.0`` differ, as they do for a view that parses into ``Decimal``);
  - anything else (``text/plain``, no content type, an unknown type) by its raw
    bytes: a body the gate does not parse is never replaced by the query string;
  - on a DRF request, ``request.data``: the very object the view will read.

``bind=`` narrows only what the body contributes: field names keep just those
fields of a form or JSON object; a callable returns the values to bind. It never
narrows the method, path, URL arguments or query string, and a raw body stays
bound by its bytes whatever ``bind`` says.

``require_approval(..., values=...)`` binds, instead of the body, the values the view
validated, in their canonical form (:mod:`hyperid_mfa.gate.values`): the body is not
read at all (the view has read it), and the method, path, URL arguments, query
string and session stay bound.

Canonical means: keys sorted, repeated keys kept with their values in the order
sent, JSON objects with sorted keys. A faithful re-submission gives the same
fingerprint; a change to anything bound gives another. A body that cannot be read
raises :class:`UnreadableBody` (the gate answers 400): the gate never guesses.

Inside an approval window the fingerprint does not apply; what an explicit
``bind=`` binds does (:func:`compute_for_window`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.http.request import RawPostDataException, UnreadablePostError
from django.utils.crypto import salted_hmac
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _

from ..client import wire
from ..exceptions import RequestUnreadable, UnreadableBody

logger = logging.getLogger("hyperid_mfa")

#: What ``bind=`` may be: field names, or a callable returning the values to bind.
Binder = Sequence[str] | Callable[..., Any] | None
#: What a ``bind`` callable raises for a request that lacks a value it reads
#: (``request.POST["amount"]``) or holds one it cannot parse (``Decimal("five")``):
#: the client's mistake, answered 400, not the site's.
BAD_INPUT = (LookupError, ValueError, ArithmeticError)

CSRF_FIELD = "csrfmiddlewaretoken"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
#: Bumped whenever the canonical form changes, so that old and new never collide.
CANONICAL_VERSION = 2
_SALT = "hyperid_mfa.fingerprint"
_WINDOW_SALT = "hyperid_mfa.window.binding"
_UTF8_NAMES = frozenset({"utf-8", "utf8"})

# Django's own refusals of a body it cannot or will not parse.
_DJANGO_BODY_ERRORS = (
    BadRequest,
    SuspiciousOperation,  # RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
    MultiPartParserError,
    RawPostDataException,
    UnreadablePostError,
    UnicodeDecodeError,
)


def django_request(request: Any) -> HttpRequest:
    """The Django request, also when given DRF's wrapper around it."""
    return getattr(request, "_request", request)


def is_drf_request(request: Any) -> bool:
    """Whether ``request`` is DRF's ``Request`` wrapped around a Django request."""
    return request is not django_request(request)


def is_json_media_type(media_type: str) -> bool:
    """``application/json`` or a ``+json`` type, compared as Django compares types."""
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def is_json_body(request: Any) -> bool:
    return is_json_media_type(django_request(request).content_type or "")


# --- the body, as the view will read it ------------------------------------------------


@dataclass(frozen=True)
class Body:
    """What a request's body says, read once.

    ``kind`` is ``"none"`` (no body, or an empty form), ``"form"`` (``form`` and
    ``files``), ``"json"`` (``value``: the parsed JSON) or ``"raw"`` (``raw``: the
    SHA-256 of the bytes).
    """

    kind: str
    media_type: str = ""
    form: QueryDict = field(default_factory=QueryDict)
    files: MultiValueDict = field(default_factory=MultiValueDict)
    value: Any = None
    #: SHA-256 of the bytes, for a raw body and for a form body that reads as JSON.
    raw: str = ""


def _form_body(form: QueryDict, files: MultiValueDict, media_type: str, raw: str = "") -> Body:
    if not form and not files and not raw:
        return Body("none", media_type)
    return Body("form", media_type, form=form, files=files, raw=raw)


def _looks_like_json(raw: bytes) -> bool:
    """Whether a view could read this body as JSON, whatever its declared type."""
    if raw.lstrip()[:1] in (b"{", b"[", b'"'):
        return True
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def read_body(request: Any) -> Body:
    """The body of ``request`` as the view will read it (see the module docstring).

    Raises :class:`UnreadableBody` for a body that cannot be read.
    """
    if is_drf_request(request):
        return _read_drf_body(request)
    plain = django_request(request)
    media_type = (plain.content_type or "").lower()
    try:
        if media_type in FORM_MEDIA_TYPES:
            form, files = _parse_form(plain, media_type)
            # A form parse maps "+" and "%2B" alike: a view that reads the same body
            # as JSON (many do, whatever the type says) would see what the form
            # parse hid. Such a body is bound by its bytes as well.
            as_bytes = ""
            if media_type == "application/x-www-form-urlencoded" and _looks_like_json(plain.body):
                as_bytes = hashlib.sha256(plain.body).hexdigest()
            return _form_body(form, files, media_type, as_bytes)
        raw = plain.body
    except _DJANGO_BODY_ERRORS as err:
        raise UnreadableBody("the request body cannot be read") from err
    if not raw:
        return Body("none", media_type)
    if is_json_media_type(media_type):
        _require_utf8(_charset(plain))
        return Body("json", media_type, value=strict_json(raw))
    return Body("raw", media_type, raw=hashlib.sha256(raw).hexdigest())


def _parse_form(plain: HttpRequest, media_type: str) -> tuple[QueryDict, MultiValueDict]:
    """A form body parsed by Django's own parsers, for any method.

    Django fills ``request.POST`` for POST only; a view handling PUT or PATCH parses
    the body itself, the same way.
    """
    if plain.method == "POST":
        return plain.POST, plain.FILES
    raw = plain.body
    if not raw:
        return QueryDict(), MultiValueDict()
    if media_type == "application/x-www-form-urlencoded":
        # As Django does for POST: a form body must be UTF-8.
        _require_utf8(_charset(plain))
        return QueryDict(raw, encoding="utf-8"), MultiValueDict()
    form, files = plain.parse_file_upload(plain.META, BytesIO(raw))
    return form, files


def _read_drf_body(request: Any) -> Body:
    from rest_framework.exceptions import ParseError

    media_type = (django_request(request).content_type or "").lower()
    try:
        data = request.data
        files = request.FILES
    except ParseError as err:
        raise UnreadableBody(str(err.detail)) from err
    except _DJANGO_BODY_ERRORS as err:
        raise UnreadableBody("the request body cannot be read") from err
    if isinstance(data, QueryDict):
        # DRF merges uploaded files into request.data; they are bound from FILES.
        form = QueryDict(mutable=True)
        for key in data:
            for value in data.getlist(key):
                if not isinstance(value, UploadedFile):
                    form.appendlist(key, value)
        return _form_body(form, files, media_type)
    if not data and not files:
        return Body("none", media_type)
    return Body("json", media_type, value=data)


def _charset(plain: HttpRequest) -> str | None:
    return (plain.content_params or {}).get("charset")


def _require_utf8(charset: str | None) -> None:
    if charset is not None and charset.strip().lower() not in _UTF8_NAMES:
        raise UnreadableBody(f"the body must be UTF-8, not {charset[:40]!r}")


# --- strict JSON --------------------------------------------------------------------------


def strict_json(raw: bytes) -> Any:
    """Parse a JSON body strictly (:func:`hyperid_mfa.client.wire.strict_json`), numbers as
    sent; raise :class:`UnreadableBody` otherwise."""
    try:
        return wire.strict_json(raw, numbers_as_text=True)
    except wire.StrictJSONError as err:
        raise UnreadableBody(f"the request body is not strict JSON: {err}") from err


def canonical_json(value: Any) -> str:
    """One text per JSON value: sorted keys, ASCII only, numbers as sent.

    Also takes what DRF's parsers return (floats, Decimals, other objects).
    """
    try:
        return _canonical(value)
    except RecursionError as err:
        raise UnreadableBody("the request body is nested too deeply") from err


def _canonical(value: Any) -> str:
    if isinstance(value, wire.NumberText):
        return str.__str__(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as this float
    if isinstance(value, Mapping):
        items = sorted((str(key), item) for key, item in value.items())
        return "{" + ",".join(f"{_canonical(key)}:{_canonical(item)}" for key, item in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    # Decimal and other parser output: its text, unquoted, so it never equals a string.
    return f"<{type(value).__name__}:{value}>"


# --- what is bound ------------------------------------------------------------------------


def _pairs(data: QueryDict, *, skip: str | None = None) -> list[list[str]]:
    return [[key, value] for key in sorted(data) if key != skip for value in data.getlist(key)]


def _describe_files(files: MultiValueDict, names: Sequence[str] | None = None) -> list[list[Any]]:
    described = []
    for name in sorted(files):
        if names is not None and name not in names:
            continue
        for upload in files.getlist(name):
            digest = hashlib.sha256()
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
            described.append([name, upload.name, upload.size, digest.hexdigest()])
    return described


def _body_values(body: Body) -> dict[str, Any]:
    """The whole body: what the default binding covers."""
    if body.kind == "form":
        return {
            "form": _pairs(body.form, skip=CSRF_FIELD),
            "files": _describe_files(body.files),
            "raw": body.raw,
        }
    if body.kind == "json":
        return {"json": canonical_json(body.value)}
    if body.kind == "raw":
        return {"raw": body.raw, "type": body.media_type}
    return {}


def _named_values(body: Body, names: Sequence[str]) -> dict[str, Any]:
    """Only the named fields of a form or JSON object; any other body whole."""
    if body.kind == "form":
        fields = {name: body.form.getlist(name) for name in names}
        return {"fields": fields, "files": _describe_files(body.files, names), "raw": body.raw}
    if body.kind == "json" and isinstance(body.value, Mapping):
        obj = body.value
        return {
            "fields": {name: canonical_json(obj[name]) if name in obj else None for name in names}
        }
    # A JSON array or scalar has no named fields, and a raw body no fields at all:
    # the view may read all of it.
    return _body_values(body)


def _url_arguments(plain: HttpRequest) -> dict[str, Any]:
    # From the URL that routed the request, not from the gated function's call: a
    # function gated as a helper may be called with objects that have no stable text.
    match = getattr(plain, "resolver_match", None)
    if match is None:
        return {"args": [], "kwargs": {}}
    return {
        "args": [str(arg) for arg in match.args],
        "kwargs": {str(key): str(value) for key, value in match.kwargs.items()},
    }


def bound_values(
    request: Any,
    bind: Binder,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    values: Any = None,
) -> Any:
    """What the fingerprint covers (see the module docstring). ``args`` and
    ``kwargs`` are the gated view's, passed to a ``bind`` callable; ``values`` is
    the canonical form of ``require_approval``'s ``values=``, bound instead of the body."""
    plain = django_request(request)
    bound: dict[str, Any] = {
        "version": CANONICAL_VERSION,
        "method": str(request.method).upper(),
        "path": plain.path,
        "url": _url_arguments(plain),
        "query": _pairs(plain.GET),
    }
    if values is not None:
        bound["values"] = values
        return bound
    body = read_body(request)
    if bind is None:
        bound["body"] = _body_values(body)
    elif callable(bind):
        bound["body"] = {"bound": call_binder(bind, request, args, kwargs), "raw": body.raw}
    else:
        bound["body"] = _named_values(body, bind)
    return bound


def call_binder(
    bind: Callable[..., Any], request: Any, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Any:
    """What the ``bind`` callable returns for ``request``; :class:`RequestUnreadable`
    (400) where it cannot read the request (:data:`BAD_INPUT`)."""
    try:
        return bind(request, *args, **kwargs)
    except BAD_INPUT as err:
        logger.info("MFA gate: the bind callable cannot read the request: %r", err)
        raise RequestUnreadable(
            _("The request is missing information needed to ask for approval.")
        ) from err


#: What :func:`named_fields` gives for a field the request lacks.
ABSENT = object()


def named_fields(request: Any, names: Sequence[str]) -> dict[str, Any]:
    """The value of each named field, as the binding reads it (the body's, an upload
    of that name, else the query string's; the last of repeated values); ``ABSENT``
    where the request lacks it."""
    body = read_body(request)
    plain = django_request(request)
    found: dict[str, Any] = {}
    for name in names:
        if body.kind == "form" and name in body.form:
            found[name] = body.form.get(name)
        elif body.kind == "form" and name in body.files:
            found[name] = body.files.get(name)
        elif body.kind == "json" and isinstance(body.value, Mapping) and name in body.value:
            found[name] = body.value[name]
        elif name in plain.GET:
            found[name] = plain.GET.get(name)
        else:
            found[name] = ABSENT
    return found


def compute(
    request: Any,
    *,
    bind: Binder = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    values: Any = None,
) -> str:
    """The fingerprint of ``request`` (hex), bound to its session if it has one.
    ``values``: the canonical values bound instead of the body (``require_approval``).

    Raises :class:`UnreadableBody` when the body cannot be read.
    """
    return _sign(request, bound_values(request, bind, args, kwargs or {}, values))


def compute_for_window(
    request: Any,
    *,
    bind: Binder = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    values: Any = None,
) -> tuple[str, str]:
    """The fingerprint of ``request`` and its window binding, reading it once.

    The window binding is what an explicit ``bind=`` binds, path-independent: the
    body as that ``bind`` narrows it (a body the gate does not parse stays bound by
    its bytes) and, for field names, those fields of the query string. It is empty
    for the default binding, which does not apply inside a window, and for
    ``require_approval``'s ``values``, which replace the default binding.
    """
    values = bound_values(request, bind, args, kwargs or {}, values)
    if bind is None:
        return _sign(request, values), ""
    binding: dict[str, Any] = {"version": CANONICAL_VERSION, "body": values["body"]}
    if not callable(bind):
        query = django_request(request).GET
        binding["query"] = {name: query.getlist(name) for name in bind if name in query}
    return _sign(request, values), _hmac(_WINDOW_SALT, binding)


def _sign(request: Any, values: Any) -> str:
    """The fingerprint of the bound ``values``, bound to the request's session."""
    session = getattr(django_request(request), "session", None)
    session_key = getattr(session, "session_key", None) or ""
    return _hmac(_SALT, {"values": values, "session": session_key})


def _hmac(salt: str, value: Any) -> str:
    canonical = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str
    )
    return salted_hmac(salt, canonical, secret=settings.SECRET_KEY, algorithm="sha256").hexdigest()
