"""Reading what crosses the wire, strictly. Django-free.

One strict JSON reader for HyperID's answers and for the request bodies the gate
binds: UTF-8 only, no repeated keys (parsers disagree on which one wins), no
``NaN`` or ``Infinity`` (not JSON, though Python's parser takes them).
"""

from __future__ import annotations

import json
from typing import Any


class StrictJSONError(ValueError):
    """Not strict JSON; the message says why, without quoting more than a key."""


class NumberText(str):
    """A JSON number kept as the exact text that was sent (``100`` is not ``100.0``)."""


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError(f"the JSON repeats the key {key[:40]!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise StrictJSONError(f"{name} is not JSON")


def strict_json(raw: bytes, *, numbers_as_text: bool = False) -> Any:
    """Parse ``raw`` as strict JSON, or raise :class:`StrictJSONError`.

    With ``numbers_as_text``, every number comes back as :class:`NumberText`.
    """
    number = NumberText if numbers_as_text else None
    try:
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_repeated_keys,
            parse_constant=_no_constants,
            parse_float=number,
            parse_int=number,
        )
    except StrictJSONError:
        raise
    except UnicodeDecodeError:
        raise StrictJSONError("the JSON is not UTF-8") from None
    except RecursionError:
        raise StrictJSONError("the JSON is nested too deeply") from None
    except ValueError:
        raise StrictJSONError("not valid JSON") from None
