"""Reading what crosses the wire, strictly. Django-free.

One strict JSON reader for HyperID's responses and for the request bodies the gate
binds: UTF-8 only, no repeated keys (parsers disagree on which one wins), no
``NaN`` or ``Infinity`` (not JSON, though Python's parser takes them).

The small text formats people type (durations like ``"30d"``, rates like
``"5/10m"``) and HyperID's ``transaction_id`` are read here too, each by one
function raising ``ValueError``; callers turn that into their own error (a
configuration error, a command error, ``InvalidParameters``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..constants import TRANSACTION_ID_MAX, TRANSACTION_ID_MIN


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


# --- durations and rates ----------------------------------------------------------------

#: Seconds in each unit a duration or a rate may name.
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


def parse_duration(value: str | float | timedelta) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"`` (or seconds, or a timedelta) as a timedelta.

    A string must carry its unit: a bare ``"30"`` could mean seconds or days.
    Raises ``ValueError`` for anything else, and for zero or negative durations.
    """
    try:
        if isinstance(value, timedelta):
            duration = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            duration = timedelta(seconds=value)
        elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
            duration = timedelta(seconds=float(match[1]) * UNIT_SECONDS[match[2]])
        else:
            raise ValueError(
                f"cannot read the duration {value!r}: write a number and a unit "
                "(s, m, h or d), for example '30d'"
            )
    except OverflowError:
        # timedelta refuses more than 999999999 days (and infinity) with an
        # OverflowError, which is not the ValueError callers catch.
        raise ValueError(f"the duration {value!r} is too long") from None
    if duration <= timedelta(0):
        raise ValueError(f"the duration {value!r} must be positive")
    return duration


@dataclass(frozen=True)
class Rate:
    """``count`` events per ``period`` seconds."""

    count: int
    period: int  # seconds


def parse_rate(value: str | None) -> Rate | None:
    """``"5/10m"`` (5 per 10 minutes), ``"3/h"``, ``"10/30s"`` as a Rate; None stays None.

    Raises ``ValueError`` for anything else, and for a rate that allows nothing.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"a rate must be a string like '5/10m', not {value!r}")
    match = _RATE_RE.match(value)
    if not match:
        raise ValueError(
            f"cannot read the rate {value!r}: write it as '<count>/<number><s|m|h|d>', "
            "for example '5/10m'"
        )
    count, multiplier, unit = match.groups()
    period = int(multiplier or 1) * UNIT_SECONDS[unit]
    if int(count) < 1 or period < 1:
        raise ValueError(f"the rate {value!r} must allow at least one push")
    return Rate(count=int(count), period=period)


# --- identifiers --------------------------------------------------------------------------


def check_transaction_id(value: object) -> int:
    """``value`` if it is a HyperID ``transaction_id`` (an int, not a bool, in
    1..2**63-1); else ``ValueError``."""
    if type(value) is not int:
        raise ValueError(f"transaction_id must be an integer, not {type(value).__name__}")
    if not TRANSACTION_ID_MIN <= value <= TRANSACTION_ID_MAX:
        raise ValueError(
            f"transaction_id must be between {TRANSACTION_ID_MIN} and {TRANSACTION_ID_MAX}"
        )
    return value
