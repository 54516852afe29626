"""The app's commands as manage.py runs them: the app's ``--version``, and every bad
argument refused one way (argparse's usage line, the reason, exit status 2).

``run_from_argv`` is what ``manage.py <command> ...`` calls. These tests touch no
database: it closes the connections when the command ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import load_command_class

import hyperid_mfa

REPO = Path(__file__).resolve().parent.parent
COMMANDS = [
    "hyperid_mfa_poll",
    "hyperid_mfa_purge",
    "hyperid_mfa_rotate_keys",
    "hyperid_mfa_simulator",
]


def from_command_line(capsys, name: str, *args: str) -> tuple[int, str, str]:
    """``manage.py NAME ARGS``: its exit status, stdout and stderr."""
    command = load_command_class("hyperid_mfa", name)
    try:
        command.run_from_argv(["manage.py", name, *args])
    except SystemExit as exit:
        status = exit.code if isinstance(exit.code, int) else 1
    else:
        status = 0
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("name", COMMANDS)
def test_version_is_the_apps(capsys, name):
    assert from_command_line(capsys, name, "--version") == (0, f"{hyperid_mfa.__version__}\n", "")


@pytest.mark.parametrize(
    ("name", "args", "reason"),
    [
        ("hyperid_mfa_poll", ["--limit", "0"], "argument --limit: 0 is not 1 or more"),
        ("hyperid_mfa_poll", ["--concurrency", "99"], "argument --concurrency: 99 is more than 32"),
        ("hyperid_mfa_poll", ["--loop", "--interval", "-1"], "argument --interval: -1 is not"),
        ("hyperid_mfa_poll", ["--interval", "5"], "--interval applies only with --loop"),
        ("hyperid_mfa_poll", ["--lopp"], "unrecognized arguments: --lopp"),
        ("hyperid_mfa_purge", [], "the following arguments are required: --older-than"),
        ("hyperid_mfa_purge", ["--older-than", "30"], "argument --older-than: cannot read"),
        ("hyperid_mfa_rotate_keys", ["--batch-size", "0"], "argument --batch-size: 0 is not"),
        ("hyperid_mfa_simulator", ["--port", "70000"], "argument --port: 70000 is more than"),
        ("hyperid_mfa_simulator", ["--latency", "x"], "argument --latency: 'x' is not a number"),
        (
            "hyperid_mfa_simulator",
            ["--redirect-uri", "site.test/cb"],
            "argument --redirect-uri: a redirect URI must be an absolute http(s) URL",
        ),
        ("hyperid_mfa_simulator", ["--host", "192.0.2.10"], "refusing to listen on 192.0.2.10"),
        ("hyperid_mfa_simulator", ["--fail-rate", "1.5"], "argument --fail-rate: 1.5 is not a"),
        ("hyperid_mfa_simulator", ["--seed", "x"], "argument --seed: 'x' is not a whole number"),
        ("hyperid_mfa_simulator", ["--fault", "http_999"], "argument --fault: unknown fault"),
        (
            "hyperid_mfa_simulator",
            ["--fault", "delay:seconds=-1"],
            "argument --fault: seconds must be a non-negative number",
        ),
        ("hyperid_mfa_simulator", ["--down", "--fail-rate", "0.1"], "--down fails every MFA call"),
    ],
)
def test_a_bad_argument_is_a_usage_error_with_exit_status_2(capsys, name, args, reason):
    status, out, err = from_command_line(capsys, name, *args)

    assert status == 2
    assert out == ""
    assert err.startswith(f"usage: manage.py {name} ")
    assert f"manage.py {name}: error: {reason}" in err
    assert "Traceback" not in err
    assert "CommandError" not in err


def test_manage_py_exits_with_status_2_on_a_bad_argument():
    completed = subprocess.run(
        [sys.executable, "-m", "django", "hyperid_mfa_poll", "--limit", "0"],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("usage: ")
    assert completed.stderr.splitlines()[-1].endswith(
        " hyperid_mfa_poll: error: argument --limit: 0 is not 1 or more"
    )
