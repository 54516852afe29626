"""Bytes and JSON as the fake reads and writes them: base64url, strict and canonical JSON.

Strict on input (UTF-8 only, no NaN or Infinity): a fake that took what is not JSON
would let the app's client get away with sending it.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

_B64URL = re.compile(r"[A-Za-z0-9_-]+\Z")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser would accept them.
    raise ValueError(f"{name} is not JSON")


def loads(text: str | bytes) -> Any:
    """Parse strict JSON; raise ValueError on anything else."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, RecursionError) as err:
        raise ValueError(str(err)) from err


def json_object(body: bytes, *, allow_empty: bool) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is anything else."""
    if allow_empty and not body.strip():
        return {}
    try:
        data = loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def number(value: float) -> float | int:
    """Whole seconds as an int in JSON answers, as OIDC servers send them."""
    return int(value) if float(value).is_integer() else value
