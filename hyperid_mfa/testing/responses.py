"""What the fake answers: :class:`FakeResponse`, and the JSON and HTML answers it builds.

An :class:`Answer` is what HyperID decided about a call; injected faults may still
bend it (see :mod:`.faults`) before it becomes the :class:`FakeResponse` that a
transport carries out.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..constants import Result
from .encoding import canonical_json

__all__ = ["Answer", "FakeResponse", "Handler", "html_response", "json_response"]

_JSON = "application/json"
_HTML = "text/html; charset=utf-8"


@dataclasses.dataclass
class FakeResponse:
    """What :meth:`FakeHyperID.handle` answers; the transports carry it out.

    ``delay``: seconds to wait before answering. ``disconnect``: close the connection
    without an answer (``status`` is then 0). ``exception``: the failure the client
    should observe, ``"timeout"`` or ``"connection_error"``; the mock raises the
    matching ``requests`` exception, the server sleeps ``delay`` or disconnects.
    """

    status: int
    headers: dict[str, str]
    body: bytes = dataclasses.field(repr=False)
    delay: float = 0
    disconnect: bool = False
    exception: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


#: What a transport asks for each request's answer: ``(method, path, headers, body)``.
#: ``FakeHyperID.handle`` by default; the simulator's authenticator pages wrap it.
Handler = Callable[[str, str, Mapping[str, str], bytes], FakeResponse]


@dataclasses.dataclass
class Answer:
    """HyperID's response to one call, before any injected fault bends it.

    ``subject`` and ``transaction_id`` are what the call was about, for the call log.
    """

    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    subject: str | None = None
    transaction_id: int | None = None

    @property
    def is_success(self) -> bool:
        if self.status != 200:
            return False
        return "result" not in self.payload or self.payload["result"] == Result.SUCCESS

    def response(self) -> FakeResponse:
        return json_response(self.status, self.payload, self.headers)


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> FakeResponse:
    merged = {"Content-Type": _JSON}
    if headers:
        merged.update(headers)
    return FakeResponse(status=status, headers=merged, body=canonical_json(payload))


def html_response(
    status: int, title: str, headers: Mapping[str, str] | None = None
) -> FakeResponse:
    page = (
        f"<!DOCTYPE html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1></body></html>"
    )
    merged = {"Content-Type": _HTML}
    if headers:
        merged.update(headers)
    return FakeResponse(status=status, headers=merged, body=page.encode("utf-8"))
