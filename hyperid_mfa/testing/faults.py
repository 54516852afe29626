"""Injected faults: which there are, what they take, and how they bend an answer.

:meth:`FakeHyperID.inject` documents each fault. Some answer *instead of* the call
(HyperID never processes it), the others bend the answer *after* the call was
processed. Faults wait in a queue in injection order; one call gets at most one.
A fault with a ``share`` below 1 meets each matching call with that probability,
drawn from the queue's own random generator (seeded, so that a run can be replayed).
:func:`parse_fault` reads the command line's spelling of a fault
(``KIND[:NAME=VALUE,...]``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
from collections.abc import Mapping
from typing import Any

from .calls import CALL_AVAILABILITY, CALL_CANCEL, CALL_START, CALL_STATUS_GET, CALL_TOKEN, CALLS
from .encoding import b64url_decode, canonical_json, is_int
from .responses import Answer, FakeResponse, html_response, json_response
from .signing import SigningKey

__all__ = ["FAULTS", "MFA_CALLS", "Fault", "FaultDraw", "FaultQueue", "parse_fault"]

#: HyperID's four MFA calls: every call but the token endpoint's.
MFA_CALLS: frozenset[str] = frozenset({CALL_STATUS_GET, CALL_START, CALL_CANCEL, CALL_AVAILABILITY})


@dataclasses.dataclass(frozen=True)
class _FaultSpec:
    #: Answered in place of the call (the call is not processed) rather than after it.
    instead: bool
    params: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    #: Calls the fault can apply to; None: any.
    calls: frozenset[str] | None = None
    #: The answer field the fault needs in a success answer; "*" means params["field"].
    field: str | None = None


_FAULT_SPECS: dict[str, _FaultSpec] = {
    "http_500": _FaultSpec(instead=True),
    "http_502": _FaultSpec(instead=True),
    "http_503": _FaultSpec(instead=True, params=frozenset({"retry_after"})),
    "http_429": _FaultSpec(instead=True, params=frozenset({"retry_after"})),
    "connection_error": _FaultSpec(instead=True),
    "html": _FaultSpec(instead=True),
    # {"result": n} is the MFA calls' answer; the token endpoint answers OAuth errors.
    "result": _FaultSpec(
        instead=True, params=frozenset({"result"}), required=frozenset({"result"}), calls=MFA_CALLS
    ),
    "timeout": _FaultSpec(instead=False, params=frozenset({"seconds"})),
    "delay": _FaultSpec(
        instead=False, params=frozenset({"seconds"}), required=frozenset({"seconds"})
    ),
    "malformed_json": _FaultSpec(instead=False),
    "truncated_json": _FaultSpec(instead=False),
    "wrong_transaction_id": _FaultSpec(
        instead=False, calls=frozenset({CALL_STATUS_GET, CALL_START}), field="transaction_id"
    ),
    "status": _FaultSpec(
        instead=False,
        params=frozenset({"value"}),
        required=frozenset({"value"}),
        calls=frozenset({CALL_STATUS_GET}),
        field="transaction_status",
    ),
    "complete_result": _FaultSpec(
        instead=False,
        params=frozenset({"value"}),
        required=frozenset({"value"}),
        calls=frozenset({CALL_STATUS_GET}),
        field="transaction_complete_result",
    ),
    "missing_field": _FaultSpec(
        instead=False, params=frozenset({"field"}), required=frozenset({"field"}), field="*"
    ),
    "id_token_signature": _FaultSpec(
        instead=False, calls=frozenset({CALL_TOKEN}), field="id_token"
    ),
    "id_token_claims": _FaultSpec(
        instead=False,
        params=frozenset({"claims"}),
        required=frozenset({"claims"}),
        calls=frozenset({CALL_TOKEN}),
        field="id_token",
    ),
}

#: The fault names :meth:`FakeHyperID.inject` accepts.
FAULTS: frozenset[str] = frozenset(_FAULT_SPECS)

_DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclasses.dataclass
class Fault:
    kind: str
    call: str | None
    remaining: int | None  # None: forever
    params: dict[str, Any]
    #: The probability that the fault meets a matching call (1: every one).
    share: float = 1.0

    @classmethod
    def checked(
        cls,
        fault: str,
        call: str | None,
        times: int | None,
        params: Mapping[str, Any],
        share: float = 1.0,
    ) -> Fault:
        """The fault ``inject()`` asked for; ValueError or TypeError if it cannot be."""
        spec = _FAULT_SPECS.get(fault)
        if spec is None:
            raise ValueError(f"unknown fault {fault!r}; choose from {sorted(FAULTS)}")
        if call is not None and call not in CALLS:
            raise ValueError(f"unknown call {call!r}; choose from {list(CALLS)}")
        if call is not None and spec.calls is not None and call not in spec.calls:
            raise ValueError(
                f"fault {fault!r} never applies to {call!r}; it applies to {sorted(spec.calls)}"
            )
        if times is not None and (not is_int(times) or times < 0):
            raise ValueError("times must be a non-negative int, or None for forever")
        if isinstance(share, bool) or not isinstance(share, (int, float)):
            raise TypeError("share must be a number")
        if not 0 < share <= 1:
            raise ValueError("share must be more than 0 and at most 1")
        unknown = set(params) - spec.params
        if unknown:
            raise TypeError(f"fault {fault!r} takes no parameter(s) {sorted(unknown)}")
        missing = spec.required - set(params)
        if missing:
            raise TypeError(f"fault {fault!r} needs parameter(s) {sorted(missing)}")
        for key in ("seconds", "retry_after"):
            value = params.get(key)
            if isinstance(value, bool) or (
                isinstance(value, (int, float)) and not (math.isfinite(value) and value >= 0)
            ):
                raise ValueError(f"{key} must be a non-negative number")
        if "seconds" in params and not isinstance(params["seconds"], (int, float)):
            raise TypeError("seconds must be a number")
        if "retry_after" in params and re.search(r"[\r\n]", str(params["retry_after"])):
            raise ValueError("retry_after must not contain line breaks")
        if "field" in params and not isinstance(params["field"], str):
            raise TypeError("field must be a string")
        if "claims" in params:
            claims = params["claims"]
            if not isinstance(claims, Mapping) or not all(isinstance(k, str) for k in claims):
                raise TypeError("claims must be a dict of claim names to values (None: left out)")
            canonical_json(dict(claims))  # must be JSON-serialisable: TypeError if not
        for key in ("value", "result"):
            if key in params:
                canonical_json(params[key])  # must be JSON-serialisable: TypeError if not
        return cls(fault, call, times or None, dict(params), float(share))

    def describe(self) -> dict[str, Any]:
        """The fault as ``inject()`` takes it, and as the control endpoints list it."""
        return {
            "fault": self.kind,
            "call": self.call,
            "times": self.remaining,
            "share": self.share,
            **self.params,
        }

    @property
    def spec(self) -> _FaultSpec:
        return _FAULT_SPECS[self.kind]

    def matches(self, call: str) -> bool:
        if self.call is not None and self.call != call:
            return False
        allowed = self.spec.calls
        return allowed is None or call in allowed

    def field(self) -> str | None:
        field = self.spec.field
        return str(self.params["field"]) if field == "*" else field

    def applies_to(self, answer: Answer) -> bool:
        field = self.field()
        if field is None:
            return True
        return answer.is_success and field in answer.payload

    def result(self) -> int | None:
        """The result code a ``result`` fault answers with, when it is an int."""
        result = self.params.get("result") if self.kind == "result" else None
        return result if is_int(result) else None

    def answer_instead(self) -> FakeResponse:
        kind = self.kind
        retry_after = self.params.get("retry_after")
        extra = {} if retry_after is None else {"Retry-After": str(retry_after)}
        if kind == "http_500":
            return html_response(500, "500 Internal Server Error")
        if kind == "http_502":
            return html_response(502, "502 Bad Gateway")
        if kind == "http_503":
            return html_response(503, "503 Service Temporarily Unavailable", extra)
        if kind == "http_429":
            return html_response(429, "429 Too Many Requests", extra)
        if kind == "connection_error":
            return FakeResponse(0, {}, b"", disconnect=True, exception="connection_error")
        if kind == "html":
            return html_response(200, "HyperID")
        return json_response(200, {"result": self.params["result"]})  # "result"

    def answer_after(self, answer: Answer, signing_key: SigningKey) -> FakeResponse:
        """``answer`` bent by this fault; ``signing_key`` signs ID tokens it rewrites."""
        kind = self.kind
        payload = dict(answer.payload)
        if kind == "timeout":
            response = json_response(answer.status, payload, answer.headers)
            response.delay = float(self.params.get("seconds", _DEFAULT_TIMEOUT_SECONDS))
            response.exception = "timeout"
            return response
        if kind == "delay":
            response = json_response(answer.status, payload, answer.headers)
            response.delay = float(self.params["seconds"])
            return response
        if kind == "malformed_json":
            response = json_response(answer.status, payload, answer.headers)
            response.body = b"{not json"
            return response
        if kind == "truncated_json":
            response = json_response(answer.status, payload, answer.headers)
            response.body = response.body[: len(response.body) // 2]
            return response
        if kind == "wrong_transaction_id":
            payload["transaction_id"] = int(payload["transaction_id"]) + 1
        elif kind == "status":
            payload["transaction_status"] = self.params["value"]
        elif kind == "complete_result":
            payload["transaction_complete_result"] = self.params["value"]
        elif kind == "missing_field":
            del payload[str(self.params["field"])]
        elif kind == "id_token_signature":
            payload["id_token"] = _broken_signature(str(payload["id_token"]))
        elif kind == "id_token_claims":
            payload["id_token"] = _with_claims(
                str(payload["id_token"]), self.params["claims"], signing_key
            )
        return json_response(answer.status, payload, answer.headers)


def _broken_signature(jws: str) -> str:
    """``jws`` with another signature of the same length: header and claims untouched.

    The first character of a base64url signature holds its first six bits alone, so
    changing it changes the signature's bytes (a later one may hold padding bits only).
    """
    header, claims, signature = jws.split(".")
    first = "B" if signature.startswith("A") else "A"
    return f"{header}.{claims}.{first}{signature[1:]}"


def _with_claims(jws: str, changes: Mapping[str, Any], signing_key: SigningKey) -> str:
    """``jws`` with ``changes`` to its claims (None: the claim is left out), signed
    again with the fake's own key: an ID token HyperID itself issued, but for another
    client, issuer or sign-in."""
    claims = json.loads(b64url_decode(jws.split(".")[1]))
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return signing_key.sign(claims)


class FaultQueue:
    """The faults still waiting, in injection order, and the generator of their shares."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._faults: list[Fault] = []
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - not a secret

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def waiting(self) -> list[Fault]:
        return list(self._faults)

    def draw(self, call: str) -> FaultDraw:
        """The faults that meet this call of ``call``: those matching it, each with
        a ``share`` below 1 drawn once, now."""
        met = [
            fault
            for fault in self._faults
            if fault.matches(call) and (fault.share >= 1 or self._rng.random() < fault.share)
        ]
        return FaultDraw(self, met)

    def take(self, fault: Fault) -> None:
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0 and fault in self._faults:
                self._faults.remove(fault)


class FaultDraw:
    """The faults one call meets, in queue order; it takes at most one of them."""

    def __init__(self, queue: FaultQueue, met: list[Fault]) -> None:
        self._queue = queue
        self._met = met

    def instead(self) -> Fault | None:
        """The fault that answers the call in its place, if the first one met does."""
        first = self._met[0] if self._met else None
        if first is None or not first.spec.instead:
            return None
        self._queue.take(first)
        return first

    def after(self, answer: Answer) -> Fault | None:
        """The first fault met that bends ``answer``, the call's answer."""
        fault = next(
            (f for f in self._met if not f.spec.instead and f.applies_to(answer)),
            None,
        )
        if fault is not None:
            self._queue.take(fault)
        return fault


#: The names a ``--fault`` spelling may set besides the fault's own parameters.
_OPTIONS = ("call", "times", "share")


def parse_fault(text: str) -> tuple[str, dict[str, Any]]:
    """``KIND[:NAME=VALUE,...]`` read as ``inject()``'s arguments: the fault, and its keywords.

    NAME is one of the fault's parameters, ``call`` (one call name), ``share`` (the
    probability of meeting a matching call) or ``times``; unlike ``inject()``, a
    fault spelled so lasts until cleared unless ``times`` says otherwise. A VALUE
    is read as JSON where it is JSON (``5``, ``-1``, ``0.5``, ``null``,
    ``"text"``), else as the text itself. ValueError says what is wrong.
    """
    kind, _, rest = text.partition(":")
    kind = kind.strip()
    keywords: dict[str, Any] = {"times": None}
    given: set[str] = set()
    for item in rest.split(",") if rest.strip() else []:
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name or not value.strip():
            raise ValueError(f"{item.strip()!r} in {text!r} is not NAME=VALUE")
        if name in given:
            raise ValueError(f"{name} is given twice in {text!r}")
        given.add(name)
        keywords[name] = _value(value.strip())
    options = {name: keywords.pop(name) for name in _OPTIONS if name in keywords}
    try:
        Fault.checked(
            kind, options.get("call"), options.get("times"), keywords, options.get("share", 1.0)
        )
    except (TypeError, ValueError) as err:
        raise ValueError(str(err)) from None
    return kind, {**options, **keywords}


def _value(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    # Objects and lists are no fault's parameter: keep them as the text written.
    return value if not isinstance(value, (dict, list)) else text
