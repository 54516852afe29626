"""The users' HyperID tokens: stored encrypted, refreshed, forgotten.

Owns the token providers (``StoredTokenProvider``, the default ``TOKEN_PROVIDER``),
storing the tokens of a sign-in and reading them back decrypted (``store``). It uses
the client for the token endpoint and the models for the rows; the services and the
sign-in integrations call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import export

if TYPE_CHECKING:
    from .store import StoredTokenProvider, forget_tokens, store_sign_in_tokens, store_tokens

_PUBLIC = {
    "StoredTokenProvider": ".store",
    "forget_tokens": ".store",
    "store_sign_in_tokens": ".store",
    "store_tokens": ".store",
}

__all__ = ["StoredTokenProvider", "forget_tokens", "store_sign_in_tokens", "store_tokens"]


def __getattr__(name: str) -> Any:
    return export(__name__, _PUBLIC, name)


def __dir__() -> list[str]:
    return __all__
