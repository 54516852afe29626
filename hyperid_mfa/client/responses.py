"""HyperID's responses, read strictly: the shapes the client returns and the checks that
turn anything the protocol does not allow into :class:`ProtocolError`.

Used by :mod:`hyperid_mfa.client`; Django-free apart from ``sensitive_variables``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..constants import CompleteResult, Result, Status, is_approval
from ..exceptions import HyperIDError, InvalidParameters, ProtocolError, TokenUnavailable
from . import wire
from .transport import BEARER_RE, Answer

# An OAuth error code quoted in an exception; anything else (a server echoing the
# request, say) is not.
OAUTH_ERROR_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def validate_transaction_id(transaction_id: object) -> int:
    """Return ``transaction_id`` if it is an int in 1..2**63-1, else raise InvalidParameters."""
    try:
        return wire.check_transaction_id(transaction_id)
    except ValueError as err:
        raise InvalidParameters(str(err)) from None


@dataclass(frozen=True)
class StatusResponse:
    """A validated status-get answer.

    ``transaction_complete_result`` is ``None`` unless the status is COMPLETED: the
    seed document says it means nothing otherwise, and HyperID may send 0 there.
    """

    result: int
    transaction_id: int
    transaction_status: Status
    transaction_complete_result: CompleteResult | None

    @property
    def is_pending(self) -> bool:
        return self.transaction_status == Status.PENDING

    @property
    def is_approved(self) -> bool:
        return self.result == Result.SUCCESS and is_approval(
            self.transaction_status, self.transaction_complete_result
        )

    @property
    def is_denied(self) -> bool:
        return (
            self.transaction_status == Status.COMPLETED
            and self.transaction_complete_result == CompleteResult.DENIED
        )

    @property
    def is_terminal(self) -> bool:
        return self.transaction_status != Status.PENDING


@dataclass(frozen=True)
class TokenResponse:
    """A token endpoint answer. Tokens are kept out of ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: int | None
    refresh_expires_in: int | None
    scope: str | None


def parse_token_answer(answer: Answer, call: str) -> TokenResponse | HyperIDError:
    """The token endpoint's answer, or the error to raise: returned, not raised, since
    this frame holds the answer (new tokens included) in clear."""
    try:
        body = parse_json(answer.body, call, None)
    except ProtocolError as err:
        return err
    if answer.http_status != 200:
        # OAuth errors (invalid_grant, invalid_client...) carry no secret; anything
        # that does not look like one is not quoted.
        error = body.get("error")
        reason = error if isinstance(error, str) and OAUTH_ERROR_RE.fullmatch(error) else "refused"
        return TokenUnavailable(
            f"the HyperID token endpoint refused the refresh: {reason}",
            call=call,
            http_status=answer.http_status,
        )
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not BEARER_RE.fullmatch(access_token):
        return ProtocolError("the token endpoint answered no usable access_token", call=call)
    refresh_token = body.get("refresh_token")
    if refresh_token is not None and not isinstance(refresh_token, str):
        return ProtocolError("the token endpoint answered a malformed refresh_token", call=call)
    return TokenResponse(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=optional_seconds(body.get("expires_in")),
        refresh_expires_in=optional_seconds(body.get("refresh_expires_in")),
        scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
    )


def parse_json(raw: bytes, call: str, transaction_id: int | None) -> dict[str, Any]:
    try:
        value = wire.strict_json(raw)
    except wire.StrictJSONError:
        raise ProtocolError(
            "HyperID answered something that is not JSON", call=call, transaction_id=transaction_id
        ) from None
    if not isinstance(value, dict):
        raise ProtocolError(
            "HyperID answered JSON that is not an object", call=call, transaction_id=transaction_id
        )
    return value


def named_transaction(raw: bytes) -> int | None:
    """The valid ``transaction_id`` an answer names, however wrong the rest of it is."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    candidate = value.get("transaction_id") if isinstance(value, dict) else None
    try:
        return validate_transaction_id(candidate)
    except InvalidParameters:
        return None


def int_field(body: Mapping[str, Any], name: str, call: str, transaction_id: int | None) -> int:
    value = body.get(name)
    # bool is an int subclass: true/false must not pass for 1/0.
    if type(value) is not int:
        missing = name not in body
        raise ProtocolError(
            f"{name} is {'missing' if missing else 'not an integer'}",
            call=call,
            transaction_id=transaction_id,
        )
    return value


def optional_seconds(value: object) -> int | None:
    if type(value) is int and value >= 0:
        return value
    return None
