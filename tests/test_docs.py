"""The examples of README.md and docs/ run as written (see tests/docs_examples.py).

The first-hour project is what a newcomer builds from the README alone: a new Django
project, the settings and URLs of "Installation", the views of "Usage", and the
tests of "Testing your project" and docs/testing.md, run by pytest with the app's
plugin. Every other Python block either runs, passes the app's system checks as
settings, or says why it is shown only.
"""

from __future__ import annotations

import copy
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core import checks
from django.test import override_settings

from hyperid_mfa.constants import TOKEN_ENDPOINT_PATH
from hyperid_mfa.contrib import checks as sign_in_checks
from tests import docs_examples
from tests.docs_examples import Example

PYTHON = docs_examples.python_examples()


def by_how(how: str) -> list[pytest.param]:
    return [pytest.param(example, id=example.where) for example in PYTHON if example.how == how]


def test_every_python_example_says_how_it_is_checked_and_parses():
    found = [
        problem
        for example in docs_examples.examples()
        for problem in docs_examples.problems(example)
    ]

    assert found == []
    assert len(PYTHON) >= 20  # the reader found the documents' blocks at all


def test_a_block_without_a_marker_or_with_a_syntax_error_is_reported(tmp_path: Path):
    document = tmp_path / "doc.md"
    document.write_text(
        "```python\nx = 1\n```\n\n"
        "<!-- example: run -->\n```python\nx = (\n```\n\n"
        "<!-- example: skip -->\n```python\nx = 1\n```\n\n"
        "<!-- example: settings -->\n```python\nA = [..., 1]\nB = {..., 'k': 2}\n```\n"
    )
    [unmarked, broken, unexplained, shorthand] = docs_examples.examples([document])

    assert "without '<!-- example: ... -->'" in docs_examples.problems(unmarked)[0]
    assert "not Python" in docs_examples.problems(broken)[0]
    assert "needs a reason" in docs_examples.problems(unexplained)[0]
    assert docs_examples.problems(shorthand) == []
    namespace = {"A": [0], "B": {"j": 1}}
    exec(shorthand.compile(), namespace)  # noqa: S102 - the document's own example
    assert (namespace["A"], namespace["B"]) == ([0, 1], {"j": 1, "k": 2})


def run_blocks_by_document() -> list[pytest.param]:
    documents: dict[str, list[Example]] = {}
    for example in PYTHON:
        if example.how == "run":
            documents.setdefault(str(example.document.relative_to(docs_examples.ROOT)), []).append(
                example
            )
    return [pytest.param(blocks, id=name) for name, blocks in documents.items()]


@pytest.fixture
def celery_current_app_kept() -> Iterator[None]:
    """The Celery app current before the test is current again after it.

    docs/operations.md creates the project's Celery app, which becomes the process's
    current app: the one shared tasks send to. Left so, later tests' tasks would go
    to that app's default broker instead of the test workers'."""
    try:
        from celery import _state
    except ImportError:
        yield
        return
    previous = _state.get_current_app()
    yield
    previous.set_current()


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_current_app_kept")
@pytest.mark.parametrize("blocks", run_blocks_by_document())
def test_the_documents_examples_run(blocks: list[Example]):
    # A document's blocks run in order in one namespace, as a reader reads them: a
    # later block may use what an earlier one imported.
    namespace = {"__name__": "docs_example"}
    for example in blocks:
        exec(example.compile(), namespace)  # noqa: S102 - the document's own example


def settings_errors(example: Example) -> list[str]:
    """The errors of every system check, and the app's warnings, under the test
    settings as ``example`` changes them."""
    with warnings.catch_warnings():
        # Every setting is read, those Django deprecates too (EMAIL_BACKEND, 6.1).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        before = {
            name: copy.deepcopy(getattr(django_settings, name))
            for name in dir(django_settings)
            if name.isupper()
        }
    namespace = {**copy.deepcopy(before), "os": os}

    exec(example.compile(), namespace)  # noqa: S102 - the document's own example

    changed = {
        name: value
        for name, value in namespace.items()
        if name.isupper() and (name not in before or value != before[name])
    }
    assert changed, f"{example.where} changes no setting"
    for name in ("INSTALLED_APPS", "MIDDLEWARE"):
        if name in changed:  # "[..., app]" of an app the test settings have already
            changed[name] = list(dict.fromkeys(changed[name]))
    changed.update(one_hyperid_client(before, changed))
    # No check reads LOGGING, and overriding it reconfigures this process's logging
    # (Django 6.1): with the example's log file, which is not there.
    changed.pop("LOGGING", None)
    with override_settings(**changed):
        return [
            f"{message.id}: {message.msg}"
            for message in checks.run_checks()
            if message.level >= checks.ERROR
            or (message.level >= checks.WARNING and str(message.id).startswith("hyperid_mfa."))
        ]


def one_hyperid_client(before: dict[str, Any], changed: dict[str, Any]) -> dict[str, Any]:
    """The settings that make the sign-in and ``HYPERID_MFA`` use one HyperID client at
    one issuer, as the README asks, where ``changed`` (an example) sets only one side.

    The example's own values win: a sign-in it sets up gives ``HYPERID_MFA`` the client
    and issuer the example does not set there itself; otherwise the test settings'
    allauth app follows the example's ``HYPERID_MFA``. (Check E026 reports a project
    whose two sides differ; an example shows one side of a project that has both.)
    """
    mfa_before = before.get("HYPERID_MFA", {})
    mfa = changed.get("HYPERID_MFA", mfa_before)
    written = {key for key in ("CLIENT_ID", "ISSUER") if mfa.get(key) != mfa_before.get(key)}
    apps = sign_in_checks.hyperid_apps() if "SOCIALACCOUNT_PROVIDERS" not in changed else []
    if "SOCIALACCOUNT_PROVIDERS" in changed:
        with override_settings(SOCIALACCOUNT_PROVIDERS=changed["SOCIALACCOUNT_PROVIDERS"]):
            [app] = sign_in_checks.hyperid_apps()
        client = {"CLIENT_ID": app["client_id"], "ISSUER": app["settings"]["server_url"]}
    elif "OIDC_OP_TOKEN_ENDPOINT" in changed:
        endpoint = changed["OIDC_OP_TOKEN_ENDPOINT"]
        issuer = endpoint.removesuffix(TOKEN_ENDPOINT_PATH)
        client = {"CLIENT_ID": changed["OIDC_RP_CLIENT_ID"], "ISSUER": issuer}
    else:
        client = {"CLIENT_ID": mfa.get("CLIENT_ID"), "ISSUER": mfa.get("ISSUER")}
    client = {key: mfa[key] if key in written else value for key, value in client.items()}
    aligned: dict[str, Any] = {"HYPERID_MFA": {**mfa, **client}}
    if apps:
        providers = copy.deepcopy(before["SOCIALACCOUNT_PROVIDERS"])
        for app in providers["openid_connect"]["APPS"]:
            if app.get("provider_id") == "hyperid":
                app["client_id"] = client["CLIENT_ID"]
                app["settings"]["server_url"] = client["ISSUER"]
        aligned["SOCIALACCOUNT_PROVIDERS"] = providers
    return aligned


# The model checks ask the database what it supports (Django 6.1, JSONField on SQLite).
@pytest.mark.django_db
@pytest.mark.parametrize("example", by_how("settings"))
def test_the_settings_example_passes_the_checks(example: Example, monkeypatch):
    monkeypatch.setenv("HYPERID_CLIENT_SECRET", "a-client-secret")
    monkeypatch.setenv("HYPERID_TOKEN_KEY", Fernet.generate_key().decode())

    assert settings_errors(example) == []


@pytest.mark.django_db
def test_a_settings_example_with_a_wrong_value_fails(tmp_path: Path):
    document = tmp_path / "doc.md"
    document.write_text(
        '<!-- example: settings -->\n```python\nHYPERID_MFA = {..., "TIMEOUT": -1}\n```\n'
    )
    [example] = docs_examples.examples([document])

    assert [error.split(":")[0] for error in settings_errors(example)] == ["hyperid_mfa.E002"]


# ---------------------------------------------------------------- first hour


@pytest.fixture(scope="module")
def first_hour(tmp_path_factory):
    """The project built from the README's and docs' ``project`` blocks, and how to
    run commands in it the way its developer would (a clean environment)."""
    directory = tmp_path_factory.mktemp("first-hour")
    command = docs_examples.runner()

    def run(args: list[str]) -> str:
        return command(args, directory)

    blocks = docs_examples.build_project(directory, sys.executable, command)
    return directory, blocks, run


def test_the_first_hour_project_is_made_of_readme_and_testing_docs(first_hour):
    _directory, blocks, _run = first_hour
    files = {example.arg for example in blocks}

    assert {"proj/settings.py", "proj/urls.py", "payments/views.py"} <= files
    assert {example.document.name for example in blocks} >= {"README.md", "testing.md"}


def test_the_first_hour_project_passes_djangos_checks(first_hour):
    _directory, _blocks, run = first_hour

    output = run([sys.executable, "manage.py", "check", "--fail-level", "WARNING"])

    assert "System check identified no issues" in output


def test_the_first_hour_project_tests_pass_with_the_plugin(first_hour):
    _directory, blocks, run = first_hour
    tests = sum(
        len(re.findall(r"^(?:async )?def test_", example.source, re.MULTILINE))
        for example in blocks
        if Path(example.arg).name.startswith("test")
    )

    output = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"])

    assert tests >= 8
    assert re.search(rf"\b{tests} passed\b", output), output
    assert not re.search(r"\b(failed|skipped|error|xfailed)\b", output), output
