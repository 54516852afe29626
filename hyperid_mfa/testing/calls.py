"""The calls the fake answers, by name, and its log of those it received."""

from __future__ import annotations

import collections
from typing import NamedTuple

__all__ = [
    "CALLS",
    "CALL_AVAILABILITY",
    "CALL_CANCEL",
    "CALL_START",
    "CALL_STATUS_GET",
    "CALL_TOKEN",
    "CallLog",
    "RecordedCall",
]

#: Names of the calls the fake answers, as used in ``calls``, ``call_count`` and ``inject``.
CALL_STATUS_GET = "status-get"
CALL_START = "start"
CALL_CANCEL = "cancel"
CALL_AVAILABILITY = "availability"
CALL_TOKEN = "token"  # noqa: S105 - a call name, not a credential
CALLS: tuple[str, ...] = (CALL_STATUS_GET, CALL_START, CALL_CANCEL, CALL_AVAILABILITY, CALL_TOKEN)


class RecordedCall(NamedTuple):
    """One HyperID call the fake received (control endpoints are not recorded).

    ``transaction_id`` is the id asked about (status-get, cancel) or created (start).
    ``subject`` is the token's owner whenever the token was one the fake issued,
    even an expired or revoked one. ``http_status`` and ``result`` describe the answer
    the fake produced (``None`` where it produced none, e.g. ``connection_error``;
    ``result`` is ``None`` for the token endpoint). ``fault`` names the injected fault
    that shaped the answer, if any.
    """

    name: str
    transaction_id: int | None
    subject: str | None
    http_status: int | None
    result: int | None
    fault: str | None


class CallLog:
    """The last ``max_records`` calls, and exact counts of all of them.

    Bounded, so a long-running simulator does not grow without end.
    """

    def __init__(self, max_records: int) -> None:
        self._records: collections.deque[RecordedCall] = collections.deque(maxlen=max_records)
        self._counts: collections.Counter[str] = collections.Counter()

    def record(
        self,
        name: str,
        transaction_id: int | None,
        subject: str | None,
        http_status: int | None,
        result: int | None,
        fault: str | None,
    ) -> None:
        self._counts[name] += 1
        self._records.append(
            RecordedCall(
                name,
                transaction_id,
                subject,
                http_status,
                None if result is None else int(result),  # plain ints, not Result members
                fault,
            )
        )

    def records(self) -> list[RecordedCall]:
        return list(self._records)

    def count(self, name: str | None = None) -> int:
        if name is not None and name not in CALLS:
            raise ValueError(f"unknown call {name!r}; choose from {list(CALLS)}")
        if name is None:
            return sum(self._counts.values())
        return self._counts[name]

    def clear(self) -> None:
        self._records.clear()
        self._counts.clear()
