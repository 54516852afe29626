"""wire: durations, rates and transaction ids read by one function each, Django-free."""

from __future__ import annotations

import ast
import math
from datetime import timedelta
from pathlib import Path

import pytest

from hyperid_mfa.client import wire
from hyperid_mfa.client.wire import Rate, check_transaction_id, parse_duration, parse_rate
from hyperid_mfa.constants import TRANSACTION_ID_MAX


def test_wire_imports_nothing_from_django():
    tree = ast.parse(Path(wire.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("django")]


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("90m", 5400),
        ("12h", 43200),
        ("30d", 2592000),
        (" 1.5 h ", 5400),
        ("0.5s", 0.5),
    ],
)
def test_durations_are_read_with_their_unit(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_numbers_are_seconds_and_timedeltas_pass_through():
    assert parse_duration(90) == timedelta(seconds=90)
    assert parse_duration(2.5) == timedelta(seconds=2.5)
    assert parse_duration(timedelta(days=2)) == timedelta(days=2)


@pytest.mark.parametrize(
    "value", ["30", "30w", "d", "thirty days", "", "1e3s", "-1d", None, True, [30], b"30d"]
)
def test_unreadable_durations_are_a_value_error(value):
    with pytest.raises(ValueError, match="cannot read the duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["0d", "0s", 0, -5, timedelta(0), timedelta(seconds=-1)])
def test_zero_and_negative_durations_are_refused(value):
    with pytest.raises(ValueError, match="must be positive"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["9999999999d", math.inf, 10**12 * 86400])
def test_durations_timedelta_cannot_hold_are_a_value_error_too(value):
    with pytest.raises(ValueError, match="too long"):
        parse_duration(value)


def test_nan_is_not_a_duration():
    with pytest.raises(ValueError, match="NaN"):
        parse_duration(math.nan)


# --- rates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("5/10m", Rate(5, 600)),
        ("3/h", Rate(3, 3600)),
        ("10/30s", Rate(10, 30)),
        (" 1 / 1d ", Rate(1, 86400)),
        (None, None),
    ],
)
def test_rates_are_read(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["5", "5/10", "five/m", "5/1.5m", "5/10w", "", 5, b"5/m"])
def test_unreadable_rates_are_a_value_error(text):
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


@pytest.mark.parametrize("text", ["0/m", "5/0m", "0/0s"])
def test_rates_that_allow_nothing_are_refused(text):
    with pytest.raises(ValueError, match="at least one"):
        parse_rate(text)


def test_durations_and_rates_share_one_unit_table():
    for unit, seconds in wire.UNIT_SECONDS.items():
        assert parse_duration(f"1{unit}") == timedelta(seconds=seconds)
        assert parse_rate(f"1/{unit}") == Rate(1, seconds)


# --- transaction ids ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 42, TRANSACTION_ID_MAX])
def test_transaction_ids_in_range_are_returned(value):
    assert check_transaction_id(value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (True, "integer, not bool"),
        ("42", "integer, not str"),
        (42.0, "integer, not float"),
        (None, "integer, not NoneType"),
        (0, "between 1 and"),
        (-1, "between 1 and"),
        (TRANSACTION_ID_MAX + 1, "between 1 and"),
    ],
)
def test_anything_else_is_a_value_error_saying_why(value, why):
    with pytest.raises(ValueError, match=why):
        check_transaction_id(value)
