"""Request body parsers of the API: small, strict JSON, never an unhandled error.

DRF's own ``JSONParser`` reads the whole body into memory (only Django's 2.5 MB
``DATA_UPLOAD_MAX_MEMORY_SIZE`` bounds it), accepts ``NaN`` and ``Infinity``, and lets
a ``RecursionError`` from a deeply nested body escape as a server error. The bodies
of this API are a few dozen bytes, so these parsers read at most
:data:`MAX_BODY_BYTES` and turn every failure into a ``ParseError`` (400).

Note that DRF parses the body while it authenticates: ``SessionAuthentication``'s
CSRF check reads ``request.POST``. A parser failure therefore surfaces before the
view runs, which is why the status-get view reads the body first (see its
``initial``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any, cast

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import QueryDict
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, DataAndFiles

#: Largest body the API reads. ``{"transaction_id": 9223372036854775807}`` is 39 bytes.
MAX_BODY_BYTES = 4 * 1024


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class StrictJSONParser(BaseParser):
    """``application/json`` bodies of at most :data:`MAX_BODY_BYTES`, UTF-8, RFC 8259 only."""

    media_type = "application/json"

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        raw = b"" if stream is None else stream.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise ParseError(
                _("The request body must not exceed %(limit)d bytes.") % {"limit": MAX_BODY_BYTES}
            )
        try:
            # RFC 8259: JSON exchanged between systems is UTF-8, whatever charset is claimed.
            return json.loads(raw.decode("utf-8"), parse_constant=_not_json)
        except (UnicodeDecodeError, ValueError, RecursionError):
            # ValueError covers malformed JSON and integers longer than Python's
            # int-parsing limit; RecursionError a body nested thousands deep.
            raise ParseError(_("The request body is not valid JSON.")) from None


class NonJSONBody(QueryDict):
    """Stands in for a body that is not JSON (any other or no declared media type).

    It is an empty form on purpose: Django's CSRF check, run by DRF's
    ``SessionAuthentication``, looks for ``csrfmiddlewaretoken`` in ``request.POST``,
    which DRF answers with the parsed data for form media types.
    """


class AnyBodyParser(BaseParser):
    """Accepts every media type without reading the body, so that a view can answer a
    non-JSON body itself (status-get answers HyperID's -2) instead of DRF's 415."""

    media_type = "*/*"

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> NonJSONBody:
        # cast: django-stubs types QueryDict() by its overloads, not by the subclass.
        return cast(NonJSONBody, NonJSONBody())


class _DropFiles(FileUploadHandler):
    """Reads past every file of a multipart body, keeping none (in memory or on disk)."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        raise SkipFile

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        return None  # never called: new_file() skips the file

    def file_complete(self, file_size: int) -> None:
        return None


class FormFieldsParser(BaseParser):
    """``multipart/form-data`` (what a browser's ``FormData`` sends), its fields only.

    For a view that reads no body: the fields are there for session
    authentication's CSRF check (a ``csrfmiddlewaretoken`` field); file parts are
    read past and dropped. Django's limits on forms (``DATA_UPLOAD_MAX_*``) apply.
    """

    media_type = "multipart/form-data"

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> DataAndFiles[Any, Any]:
        if stream is None:  # DRF passes none for an empty body
            return DataAndFiles(QueryDict(), MultiValueDict())
        context = parser_context or {}
        request = context["request"]
        meta = {**request.META, "CONTENT_TYPE": media_type}
        encoding = context.get("encoding", settings.DEFAULT_CHARSET)
        # Any: django-stubs want read(None) too, which IO[bytes] does not promise.
        body: Any = stream
        try:
            data, _files = DjangoMultiPartParser(meta, body, [_DropFiles()], encoding).parse()
        except MultiPartParserError:
            raise ParseError(_("The request body is not a valid multipart form.")) from None
        return DataAndFiles(data, MultiValueDict())
