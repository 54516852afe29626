"""``Secret``: a token or key carried through the app without ever being shown.

An access or refresh token held in a plain ``str`` shows wherever Python shows
values: Django's HTML error report and Sentry print every frame's local variables,
loggers print arguments, debuggers print ``repr``. Wrapped in :class:`Secret`, the
value prints as ``Secret('********')`` in all of them; code that must send it (the
HTTP client, at the last moment) calls :meth:`Secret.reveal`.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

REDACTED = "********"


class Secret:
    """A string that is redacted in ``repr``, ``str``, formatting and pickling."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The value itself: call it only where the value leaves for its destination."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, format_spec: str) -> str:
        return format(REDACTED, format_spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: it would leave the process in clear")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def reveal(value: str | Secret) -> str:
    """The clear value of a ``Secret``, or ``value`` itself when it is a plain ``str``."""
    return value.reveal() if isinstance(value, Secret) else value
