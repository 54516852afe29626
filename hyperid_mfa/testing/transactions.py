"""MFA transactions as HyperID keeps them, expired by the fake's clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..client.wire import check_transaction_id
from ..constants import TRANSACTION_ID_MAX, CompleteResult, Status, is_approval

__all__ = ["FakeTransaction", "TransactionBook", "valid_transaction_id"]


@dataclasses.dataclass(frozen=True)
class FakeTransaction:
    """A snapshot of one MFA transaction as HyperID holds it.

    Snapshots do not change: ask :meth:`FakeHyperID.transaction` again to see a
    later state. ``complete_result`` is ``None`` unless ``status`` is COMPLETED.
    Times are seconds on the fake's clock (see :meth:`FakeHyperID.now`).
    """

    transaction_id: int
    subject: str
    question: str
    code: str
    template_id: int
    status: Status
    complete_result: CompleteResult | None
    created_at: float
    expires_at: float

    @property
    def is_pending(self) -> bool:
        return self.status == Status.PENDING

    @property
    def is_approved(self) -> bool:
        return is_approval(self.status, self.complete_result)

    @property
    def is_denied(self) -> bool:
        return self.status == Status.COMPLETED and self.complete_result == CompleteResult.DENIED

    @property
    def state(self) -> str:
        """One word for people and the control API: pending, approved, denied, expired, canceled."""
        if self.status == Status.COMPLETED:
            return "approved" if self.is_approved else "denied"
        return self.status.name.lower()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the ``/_fake/transactions`` control endpoint returns it."""
        return {
            "transaction_id": self.transaction_id,
            "subject": self.subject,
            "question": self.question,
            "code": self.code,
            "template_id": self.template_id,
            "status": int(self.status),
            "complete_result": None if self.complete_result is None else int(self.complete_result),
            "state": self.state,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }


def valid_transaction_id(value: object) -> int | None:
    try:
        return check_transaction_id(value)
    except ValueError:
        return None


class TransactionBook:
    """Every transaction by id; a pending one turns expired once ``clock()`` passes its end."""

    def __init__(self, clock: Callable[[], float], first_transaction_id: int) -> None:
        self._clock = clock
        self._next_id = first_transaction_id
        self._transactions: dict[int, FakeTransaction] = {}

    def current(self, transaction_id: int) -> FakeTransaction:
        """The transaction, turned expired first if its time ran out; KeyError if unknown."""
        try:
            txn = self._transactions[transaction_id]
        except KeyError:
            raise KeyError(f"FakeHyperID knows no transaction {transaction_id}") from None
        if txn.is_pending and self._clock() >= txn.expires_at:
            txn = dataclasses.replace(txn, status=Status.EXPIRED)
            self._transactions[transaction_id] = txn
        return txn

    def listing(self, subject: str | None = None) -> list[FakeTransaction]:
        """Every transaction (of one user, or all), oldest first."""
        return [
            txn
            for txn in (self.current(tid) for tid in sorted(self._transactions))
            if subject is None or txn.subject == subject
        ]

    def owned(self, transaction_id: int, subject: str) -> FakeTransaction | None:
        # Another user's transaction answers exactly like a missing one: no existence oracle.
        if transaction_id not in self._transactions:
            return None
        txn = self.current(transaction_id)
        return txn if txn.subject == subject else None

    def open(
        self, subject: str, question: str, code: str, template_id: int, ttl: float
    ) -> FakeTransaction | None:
        """A new pending transaction; None once the ids HyperID may use ran out."""
        transaction_id = self._next_id
        if transaction_id > TRANSACTION_ID_MAX:
            return None
        self._next_id += 1
        now = self._clock()
        txn = FakeTransaction(
            transaction_id=transaction_id,
            subject=subject,
            question=question,
            code=code,
            template_id=template_id,
            status=Status.PENDING,
            complete_result=None,
            created_at=now,
            expires_at=now + ttl,
        )
        self._transactions[transaction_id] = txn
        return txn

    def answer(
        self, transaction_id: int, status: Status, complete_result: CompleteResult | None
    ) -> FakeTransaction:
        """Move a pending transaction on; ``ValueError`` if it is not pending any more."""
        txn = self.current(transaction_id)
        if not txn.is_pending:
            raise ValueError(f"transaction {transaction_id} is not pending (it is {txn.state})")
        return self._replace(txn, status=status, complete_result=complete_result)

    def cancel(self, txn: FakeTransaction) -> FakeTransaction:
        """The site withdraws ``txn``, which the caller has just seen pending."""
        return self._replace(txn, status=Status.CANCELED)

    def forget(self, transaction_id: int) -> None:
        if transaction_id not in self._transactions:
            raise KeyError(f"FakeHyperID knows no transaction {transaction_id}")
        del self._transactions[transaction_id]

    def _replace(self, txn: FakeTransaction, **changes: Any) -> FakeTransaction:
        txn = dataclasses.replace(txn, **changes)
        self._transactions[txn.transaction_id] = txn
        return txn
