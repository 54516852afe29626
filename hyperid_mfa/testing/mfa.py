"""The four MFA calls as HyperID answers them: status-get, start, cancel, availability.

Each answers HTTP 200 with a ``result`` code, errors included, as HyperID does;
the token is checked before the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..constants import (
    AVAILABILITY_PATH,
    CANCEL_PATH,
    DEFAULT_TEMPLATE_ID,
    MFA_SCOPE,
    START_PATH,
    STATUS_GET_PATH,
    Result,
    Status,
)
from .calls import CALL_AVAILABILITY, CALL_CANCEL, CALL_START, CALL_STATUS_GET
from .encoding import is_int, json_object, loads
from .responses import Answer
from .state import HyperIDState
from .transactions import valid_transaction_id

__all__ = ["PATHS", "answer_call", "peek"]

#: The MFA calls by their path below the API base URL.
PATHS = {
    STATUS_GET_PATH: CALL_STATUS_GET,
    START_PATH: CALL_START,
    CANCEL_PATH: CALL_CANCEL,
    AVAILABILITY_PATH: CALL_AVAILABILITY,
}


def answer_call(state: HyperIDState, name: str, headers: Mapping[str, str], body: bytes) -> Answer:
    """Process MFA call ``name``; ``headers`` have lower-cased names."""
    record = state.tokens.bearer(headers)
    if record is None:
        return Answer(200, {"result": Result.TOKEN_INVALID})
    subject = record.subject
    if record.revoked:
        return Answer(200, {"result": Result.TOKEN_INVALID}, subject=subject)
    if state.now() >= record.expires_at:
        return Answer(200, {"result": Result.TOKEN_EXPIRED}, subject=subject)
    if MFA_SCOPE not in record.scopes:
        return Answer(200, {"result": Result.ACCESS_DENIED}, subject=subject)
    data = json_object(body, allow_empty=name == CALL_AVAILABILITY)
    if data is None:
        return Answer(200, {"result": Result.INVALID_PARAMETERS}, subject=subject)
    if name == CALL_STATUS_GET:
        return _status_get(state, subject, data)
    if name == CALL_START:
        return _start(state, subject, data)
    if name == CALL_CANCEL:
        return _cancel(state, subject, data)
    return Answer(
        200,
        {"result": Result.SUCCESS, "is_available": state.users.get(subject, False)},
        subject=subject,
    )


def peek(
    state: HyperIDState, name: str, headers: Mapping[str, str], body: bytes
) -> tuple[str | None, int | None]:
    """Best-effort subject and transaction id of an MFA call that is not processed."""
    record = state.tokens.bearer(headers)
    subject = None if record is None else record.subject
    transaction_id = None
    if name in (CALL_STATUS_GET, CALL_CANCEL):
        try:
            data = loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            transaction_id = valid_transaction_id(data.get("transaction_id"))
    return subject, transaction_id


def _status_get(state: HyperIDState, subject: str, data: dict[str, Any]) -> Answer:
    transaction_id = valid_transaction_id(data.get("transaction_id"))
    if transaction_id is None:
        return Answer(200, {"result": Result.INVALID_PARAMETERS}, subject=subject)
    txn = state.transactions.owned(transaction_id, subject)
    if txn is None:
        return Answer(
            200,
            {"result": Result.TRANSACTION_NOT_FOUND},
            subject=subject,
            transaction_id=transaction_id,
        )
    complete = txn.complete_result if txn.status == Status.COMPLETED else None
    payload = {
        "result": Result.SUCCESS,
        "transaction_id": transaction_id,
        "transaction_status": int(txn.status),
        "transaction_complete_result": 0 if complete is None else int(complete),
    }
    return Answer(200, payload, subject=subject, transaction_id=transaction_id)


def _start(state: HyperIDState, subject: str, data: dict[str, Any]) -> Answer:
    template_id = data.get("template_id")
    values = data.get("values")
    code = data.get("code")
    question = _question_of(values) if isinstance(values, str) else None
    if not is_int(template_id) or question is None or not _is_code(code):
        return Answer(200, {"result": Result.INVALID_PARAMETERS}, subject=subject)
    if template_id != DEFAULT_TEMPLATE_ID:
        return Answer(200, {"result": Result.TEMPLATE_NOT_FOUND}, subject=subject)
    if not state.users.get(subject, False):
        return Answer(200, {"result": Result.NO_AUTHENTICATOR_DEVICE}, subject=subject)
    txn = state.transactions.open(
        subject, question, str(code), int(template_id), state.transaction_ttl
    )
    if txn is None:
        return Answer(200, {"result": Result.SERVICE_UNAVAILABLE}, subject=subject)
    return Answer(
        200,
        {"result": Result.SUCCESS, "transaction_id": txn.transaction_id},
        subject=subject,
        transaction_id=txn.transaction_id,
    )


def _cancel(state: HyperIDState, subject: str, data: dict[str, Any]) -> Answer:
    transaction_id = valid_transaction_id(data.get("transaction_id"))
    if transaction_id is None:
        return Answer(200, {"result": Result.INVALID_PARAMETERS}, subject=subject)
    txn = state.transactions.owned(transaction_id, subject)
    result: int
    if txn is None:
        result = Result.TRANSACTION_NOT_FOUND
    elif txn.status == Status.PENDING:
        state.transactions.cancel(txn)
        result = Result.SUCCESS
    elif txn.status == Status.EXPIRED:
        result = Result.TRANSACTION_ALREADY_EXPIRED
    elif txn.status == Status.COMPLETED:
        result = Result.TRANSACTION_ALREADY_COMPLETED
    else:
        result = Result.TRANSACTION_ALREADY_CANCELED
    return Answer(200, {"result": result}, subject=subject, transaction_id=transaction_id)


def _is_code(value: object) -> bool:
    # str.isdigit() would let "²" or Arabic-Indic digits through.
    return isinstance(value, str) and len(value) == 2 and all(c in "0123456789" for c in value)


def _question_of(values: str) -> str | None:
    """The action_info of a start/v2 ``values`` document, or None when it is malformed."""
    try:
        document = loads(values)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    version = document.get("version")
    action = document.get("action")
    if not is_int(version) or version != 1 or not isinstance(action, dict):
        return None
    info = action.get("action_info")
    if action.get("type") != "question" or not isinstance(info, str):
        return None
    return info
