"""The gate: may this request to a gated view run now, and what the user sees if not.

Owns the decision (``decide``: ``Gate.check`` returns a ``Decision`` and knows no
HTTP), what an approval binds (``fingerprint``, ``values``), what the phone's
question names (``questions``), whether another site sent the request (``origins``),
the gate's place outside the view's transaction (``atomicity``), the answers it
renders (``rendering``, ``resume``) and ``require_approval`` (``approval``). It calls
the services; the decorator, the mixins, the DRF permission, the middleware and the
admin call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import export

if TYPE_CHECKING:
    from .decide import MAX_WINDOW, Decision, Gate

_PUBLIC = {
    "Decision": ".decide",
    "MAX_WINDOW": ".decide",
    "Gate": ".decide",
}

__all__ = ["MAX_WINDOW", "Decision", "Gate"]


def __getattr__(name: str) -> Any:
    return export(__name__, _PUBLIC, name)


def __dir__() -> list[str]:
    return __all__
