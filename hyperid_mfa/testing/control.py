"""The control endpoints below ``<base_url>/_fake/``: the fake's public API over HTTP.

They let other processes (the demo's authenticator pages, cross-process tests) play
the user's phone and drive the fake:

- ``GET  /_fake/transactions?subject=S&state=pending`` -> list of transactions
  (``state``: pending, approved, denied, expired, canceled; both filters optional)
- ``POST /_fake/transactions/<id>/approve|deny|decline|expire|forget``
  (404 unknown, 409 not pending)
- ``POST /_fake/users`` ``{"subject", "has_device", "scopes", "expires_in"}`` (all
  optional) -> ``{"subject", "access_token", "refresh_token", "expires_in"}``
- ``POST /_fake/tokens/expire`` ``{"subject"}`` -> ``{"expired": n}``: the user's
  access tokens answer -4 from now on (the app then refreshes them)
- ``GET  /_fake/calls`` -> ``{"status-get": n, "start": n, ...}``
- ``GET /_fake/faults`` -> the faults still waiting, in order
  (``[{"fault", "call", "times", "share", ...params}]``)
- ``POST /_fake/faults`` ``{"fault", "call", "times", "share", ...params}`` (``times``
  defaults to 1; ``null`` is forever), ``DELETE /_fake/faults`` (clears them all)
- ``POST /_fake/advance`` ``{"seconds": n}``

This is a test double: the control endpoints have no authentication whatsoever and
hand out tokens to anyone who asks. Serve them on loopback only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qs

from ..constants import MFA_SCOPE
from .calls import CALLS
from .encoding import json_object, number
from .responses import FakeResponse, json_response
from .tokens import TokenPair
from .transactions import FakeTransaction

__all__ = ["CONTROL_PREFIX", "ControlledFake", "control"]

#: The control endpoints' paths start with this, below the fake's base path.
CONTROL_PREFIX = "/_fake/"

_ACTION = re.compile(r"/_fake/transactions/(\d{1,19})/(approve|deny|decline|expire|forget)\Z")
_STATES = frozenset({"pending", "approved", "denied", "expired", "canceled"})


class ControlledFake(Protocol):
    """What the control endpoints use: :class:`FakeHyperID`'s public methods.

    A protocol rather than the class itself: ``FakeHyperID.handle`` answers the
    control endpoints, so its module imports this one and not the other way round.
    """

    def now(self) -> float: ...
    def advance(self, seconds: float) -> None: ...
    def add_user(self, subject: str | None = None, *, has_device: bool = True) -> str: ...
    def issue_tokens(
        self,
        subject: str,
        *,
        scopes: Iterable[str] = ...,
        expires_in: float | None = None,
    ) -> TokenPair: ...
    def expire_access_tokens(self, subject: str) -> int: ...
    def transactions(self, subject: str | None = None) -> list[FakeTransaction]: ...
    def approve(self, transaction_id: int) -> FakeTransaction: ...
    def deny(self, transaction_id: int) -> FakeTransaction: ...
    def decline(self, transaction_id: int) -> FakeTransaction: ...
    def expire(self, transaction_id: int) -> FakeTransaction: ...
    def forget(self, transaction_id: int) -> None: ...
    def inject(
        self,
        fault: str,
        *,
        call: str | None = None,
        times: int | None = 1,
        share: float = 1.0,
        **params: Any,
    ) -> None: ...
    def faults(self) -> list[dict[str, Any]]: ...
    def clear_faults(self) -> None: ...
    def call_count(self, name: str | None = None) -> int: ...


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def control(fake: ControlledFake, method: str, route: str, query: str, body: bytes) -> FakeResponse:
    """Answer one control request; ``route`` starts with ``/_fake/`` (base path removed)."""
    try:
        return _control(fake, method, route, query, body)
    except _ControlError as err:
        return json_response(err.status, {"error": err.message})


def _control(
    fake: ControlledFake, method: str, route: str, query: str, body: bytes
) -> FakeResponse:
    def require(*methods: str) -> None:
        if method not in methods:
            raise _ControlError(405, "method not allowed")

    def body_object() -> dict[str, Any]:
        data = json_object(body, allow_empty=True)
        if data is None:
            raise _ControlError(400, "the body must be a JSON object")
        return data

    if route == "/_fake/transactions":
        require("GET")
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        state = params.get("state") or None
        if state is not None and state not in _STATES:
            raise _ControlError(400, f"state must be one of {sorted(_STATES)}")
        txns = fake.transactions(params.get("subject") or None)
        return json_response(200, [t.to_dict() for t in txns if state is None or t.state == state])

    action = _ACTION.match(route)
    if action is not None:
        require("POST")
        transaction_id, verb = int(action.group(1)), action.group(2)
        try:
            if verb == "forget":
                fake.forget(transaction_id)
                return json_response(200, {"transaction_id": transaction_id, "forgotten": True})
            transitions: dict[str, Callable[[int], FakeTransaction]] = {
                "approve": fake.approve,
                "deny": fake.deny,
                "decline": fake.decline,
                "expire": fake.expire,
            }
            return json_response(200, transitions[verb](transaction_id).to_dict())
        except KeyError:
            raise _ControlError(404, f"no transaction {transaction_id}") from None
        except ValueError as err:
            raise _ControlError(409, str(err)) from None

    if route == "/_fake/users":
        require("POST")
        return _add_user(fake, body_object())

    if route == "/_fake/tokens/expire":
        require("POST")
        subject = body_object().get("subject")
        if not isinstance(subject, str) or not subject:
            raise _ControlError(400, "subject must be a non-empty string")
        return json_response(200, {"expired": fake.expire_access_tokens(subject)})

    if route == "/_fake/calls":
        require("GET")
        return json_response(200, {name: fake.call_count(name) for name in CALLS})

    if route == "/_fake/faults":
        require("GET", "POST", "DELETE")
        if method == "GET":
            return json_response(200, fake.faults())
        if method == "DELETE":
            fake.clear_faults()
            return json_response(200, {"cleared": True})
        data = body_object()
        fault = data.pop("fault", None)
        call = data.pop("call", None)
        times = data.pop("times", 1)
        if not isinstance(fault, str) or (call is not None and not isinstance(call, str)):
            raise _ControlError(400, "fault (and call, when given) must be strings")
        try:
            fake.inject(fault, call=call, times=times, **data)
        except (TypeError, ValueError) as err:
            raise _ControlError(400, str(err)) from None
        return json_response(200, {"injected": fault})

    if route == "/_fake/advance":
        require("POST")
        seconds = body_object().get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise _ControlError(400, "seconds must be a number")
        try:
            fake.advance(seconds)
        except ValueError as err:
            raise _ControlError(400, str(err)) from None
        return json_response(200, {"now": fake.now()})

    raise _ControlError(404, "not found")


def _add_user(fake: ControlledFake, data: dict[str, Any]) -> FakeResponse:
    subject, has_device = data.get("subject"), data.get("has_device", True)
    scopes = data.get("scopes", ["openid", "email", MFA_SCOPE])
    expires_in = data.get("expires_in")
    if subject is not None and (not isinstance(subject, str) or not subject):
        raise _ControlError(400, "subject must be a non-empty string")
    if not isinstance(has_device, bool):
        raise _ControlError(400, "has_device must be a boolean")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise _ControlError(400, "scopes must be a list of strings")
    if expires_in is not None and (
        not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool)
    ):
        raise _ControlError(400, "expires_in must be a number")
    subject = fake.add_user(subject, has_device=has_device)
    pair = fake.issue_tokens(subject, scopes=scopes, expires_in=expires_in)
    return json_response(
        200,
        {
            "subject": subject,
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "expires_in": number(pair.expires_in),
        },
        {"Cache-Control": "no-store"},
    )
