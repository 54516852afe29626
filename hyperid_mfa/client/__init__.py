"""HyperID's protocol: the client of its MFA calls and token endpoint.

Owns everything said over HTTP to HyperID: the calls and their retries
(``calls``), one exchange with a hard deadline (``transport``, ``deadline``), the
strict reading of HyperID's replies (``answers``) and the Django-free wire formats
(``wire``). It knows no Django model and imports nothing of the app but the
constants, the exceptions, the settings and the adapter; the services call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import export

if TYPE_CHECKING:
    from .calls import HyperIDClient, get_client
    from .responses import StatusResponse, TokenResponse

_PUBLIC = {
    "HyperIDClient": ".calls",
    "get_client": ".calls",
    "StatusResponse": ".responses",
    "TokenResponse": ".responses",
}

__all__ = ["HyperIDClient", "StatusResponse", "TokenResponse", "get_client"]


def __getattr__(name: str) -> Any:
    return export(__name__, _PUBLIC, name)


def __dir__() -> list[str]:
    return __all__
