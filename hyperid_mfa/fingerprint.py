"""The fingerprint that binds an approval to one request ("dynamic linking").

An approval is valid only for a request with the same fingerprint: an HMAC (keyed
with SECRET_KEY, so a client can neither compute nor forge one) over a canonical
form of

- by default, the method, the path, the query string and the submitted data (form
  fields, uploaded files by name, size and content hash, or a JSON body), leaving out
  the CSRF token, which changes between page loads;
- with ``bind=``, only what the integrator names (amount, payee...);

and, where the request has a session, the session key, so that an approval won in
one browser cannot be spent from another.

Canonical means: keys sorted, repeated keys kept with their values in the order
sent, JSON objects with sorted keys. A faithful re-submission gives the same
fingerprint; any change to a bound value gives another. Plain Django requests and
DRF requests carrying the same data give the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.http import HttpRequest, QueryDict
from django.utils.crypto import salted_hmac

#: What ``bind=`` may be: field names, or a callable returning the values to bind.
Binder = Sequence[str] | Callable[..., Any] | None

CSRF_FIELD = "csrfmiddlewaretoken"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
_SALT = "hyperid_mfa.fingerprint"


class UnreadableRequest(ValueError):
    """The request body cannot be read for binding (malformed JSON, say)."""


def django_request(request: Any) -> HttpRequest:
    """The Django request, also when given DRF's wrapper around it."""
    return getattr(request, "_request", request)


def _is_drf(request: Any) -> bool:
    return request is not django_request(request)


def is_json_body(request: Any) -> bool:
    meta = django_request(request).META
    content_type = meta.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def _pairs(data: QueryDict, *, skip: str | None = None) -> list[list[str]]:
    return [[key, value] for key in sorted(data) if key != skip for value in data.getlist(key)]


def _files(files: Any) -> list[list[Any]]:
    described = []
    for field in sorted(files):
        for upload in files.getlist(field):
            digest = hashlib.sha256()
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
            described.append([field, upload.name, upload.size, digest.hexdigest()])
    return described


def _parsed(request: Any) -> tuple[str, Any]:
    """("json", value) or ("form", (QueryDict, files)) or ("body", sha256) or ("none", None)."""
    if request.method in SAFE_METHODS:
        return ("none", None)
    if _is_drf(request):
        from rest_framework.exceptions import ParseError

        try:
            data = request.data
        except ParseError as err:
            raise UnreadableRequest(str(err.detail)) from err
        if isinstance(data, QueryDict):
            return ("form", (data, request.FILES))
        return ("json", data)
    plain = django_request(request)
    if is_json_body(plain):
        try:
            return ("json", json.loads(plain.body or b"null"))
        except (ValueError, UnicodeDecodeError) as err:
            raise UnreadableRequest("the request body is not valid JSON") from err
    content_type = plain.META.get("CONTENT_TYPE", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return ("form", (plain.POST, plain.FILES))
    body = plain.body
    return ("body", hashlib.sha256(body).hexdigest()) if body else ("none", None)


def request_data(request: Any) -> dict[str, Any]:
    """The submitted data as a plain structure: what the default fingerprint covers."""
    kind, value = _parsed(request)
    if kind == "form":
        form, files = value
        return {"form": _pairs(form, skip=CSRF_FIELD), "files": _files(files)}
    if kind == "none":
        return {}
    return {kind: value}


def field_values(request: Any, name: str) -> list[Any]:
    """All values of one named field, from the body or else the query string."""
    return _field_values(request, _parsed(request), name)


def _field_values(request: Any, parsed: tuple[str, Any], name: str) -> list[Any]:
    kind, value = parsed
    if kind == "json" and isinstance(value, dict) and name in value:
        return [value[name]]
    if kind == "form" and name in value[0]:
        return list(value[0].getlist(name))
    return list(django_request(request).GET.getlist(name))


def bound_values(request: Any, bind: Binder, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """What to bind: the whole request by default, else what ``bind`` names."""
    plain = django_request(request)
    if bind is None:
        return {
            "method": plain.method,
            "path": plain.path,
            "query": _pairs(plain.GET),
            "data": request_data(request),
        }
    if callable(bind):
        return {"bound": bind(request, *args, **kwargs)}
    parsed = _parsed(request)  # once, not once per field: this runs on every gated call
    fields = {name: _field_values(request, parsed, name) for name in bind}
    return {"method": plain.method, "fields": fields}


def compute(
    request: Any,
    *,
    bind: Binder = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> str:
    """The fingerprint of ``request`` (hex), bound to its session if it has one.

    Raises :class:`UnreadableRequest` when the body cannot be parsed.
    """
    values = bound_values(request, bind, args, kwargs or {})
    session = getattr(django_request(request), "session", None)
    session_key = getattr(session, "session_key", None) or ""
    canonical = json.dumps(
        {"values": values, "session": session_key},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return salted_hmac(_SALT, canonical, secret=settings.SECRET_KEY, algorithm="sha256").hexdigest()
