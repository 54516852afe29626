"""System checks: a wrong HYPERID_MFA setting is reported by `manage.py check`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from hyperid_mfa.checks import settings as checks
from hyperid_mfa.checks.settings import value_errors
from hyperid_mfa.checks.system import check_settings

ROOT = Path(__file__).parents[1]

GOOD = {
    "API_BASE_URL": "https://api.hypersecureid.com",
    "CLIENT_ID": "id",
    "CLIENT_SECRET": "secret",
    "TOKEN_ENCRYPTION_KEYS": ["u7wGgNsWdkdEJA0nHGz4oYhZyqlVDOL6kD0XjrHnyKs="],
}


def ids(**changes):
    config = {**GOOD, **changes}
    config = {k: v for k, v in config.items() if v is not ...}
    with override_settings(HYPERID_MFA=config):
        return sorted(m.id for m in check_settings())


def test_a_good_configuration_passes():
    assert ids() == []


def test_not_a_dict_is_e001():
    with override_settings(HYPERID_MFA="https://api"):
        assert [m.id for m in check_settings()] == ["hyperid_mfa.E001"]


def test_unknown_key_is_e001():
    assert ids(CLIENTID="x") == ["hyperid_mfa.E001"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TIMEOUT", "10"),
        ("TIMEOUT", (1, 2, 3)),
        ("TIMEOUT", (0, 5)),
        ("TIMEOUT", -1),
        ("MAX_RETRIES", -1),
        ("MAX_RETRIES", True),
        ("MAX_RETRIES", 1.5),
        ("REQUEST_TTL", 0),
        ("APPROVAL_MAX_AGE", "300"),
        ("MIN_REFRESH_INTERVAL", -2),
        ("TEMPLATE_ID", "4"),
        ("CLIENT_ID", 123),
        ("API_BASE_URL", None),
        ("TOKEN_ENCRYPTION_KEYS", [1, 2]),
        ("START_RATE_LIMIT", 5),
    ],
)
def test_wrong_types_and_ranges_are_e002(key, value):
    assert "hyperid_mfa.E002" in ids(**{key: value})


@pytest.mark.parametrize("url", ["api.hypersecureid.com", "ftp://x.example", "https://"])
def test_malformed_url_is_e003(url):
    assert ids(API_BASE_URL=url) == ["hyperid_mfa.E003"]


def test_plain_http_to_a_remote_host_is_e004_outside_debug():
    assert ids(API_BASE_URL="http://api.hypersecureid.com") == ["hyperid_mfa.E004"]
    assert ids(ISSUER="http://login.example/realm") == ["hyperid_mfa.E004"]
    with override_settings(DEBUG=True):
        assert ids(API_BASE_URL="http://api.hypersecureid.com") == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8100", "http://localhost:8100", "http://[::1]:8100"]
)
def test_plain_http_to_loopback_is_fine(url):
    assert ids(API_BASE_URL=url) == []


def test_unimportable_or_incomplete_provider_is_e005():
    assert ids(TOKEN_PROVIDER="nowhere.Provider") == ["hyperid_mfa.E005"]
    assert ids(TOKEN_PROVIDER="hyperid_mfa.models.MFARequest") == ["hyperid_mfa.E005"]


def test_bad_fernet_key_is_e006():
    assert ids(TOKEN_ENCRYPTION_KEYS=["not-a-key"]) == ["hyperid_mfa.E006"]


def test_keys_derived_from_secret_key_warn_w007():
    assert ids(TOKEN_ENCRYPTION_KEYS=...) == ["hyperid_mfa.W007"]


def test_unreadable_rate_is_e008():
    assert ids(START_RATE_LIMIT="5 per minute") == ["hyperid_mfa.E008"]


def test_missing_client_credentials_warn_w010():
    assert ids(CLIENT_SECRET=...) == ["hyperid_mfa.W010"]


def test_manage_py_check_reports_errors():
    with (
        override_settings(HYPERID_MFA={**GOOD, "REQUEST_TTL": "soon"}),
        pytest.raises(SystemCheckError, match=r"hyperid_mfa\.E002"),
    ):
        call_command("check")


def test_every_setting_has_a_type_check():
    from hyperid_mfa.checks.settings import _TYPES
    from hyperid_mfa.conf import DEFAULTS

    assert set(_TYPES) == set(DEFAULTS)


def test_the_defaults_follow_the_rules():
    assert value_errors(checks.DEFAULTS) == []
    assert value_errors(None) == []  # no HYPERID_MFA at all: every default


def test_the_keys_hint_says_what_unset_means_as_the_docs_do():
    docs = (ROOT / "docs" / "settings.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `TOKEN_ENCRYPTION_KEYS`"))
    assert "derived from `SECRET_KEY` and `SECRET_KEY_FALLBACKS` (warning `W007`)" in row
    assert "newest first" in row
    with override_settings(HYPERID_MFA={**GOOD, "TOKEN_ENCRYPTION_KEYS": [1, 2]}):
        [message] = check_settings()
    assert "SECRET_KEY and SECRET_KEY_FALLBACKS" in message.hint
    assert f"(warning {checks.W007})" in message.hint
    assert "newest first" in message.hint
    assert "default is None" not in message.hint


def test_w007_names_the_fallbacks_that_keep_derived_keys_readable():
    with override_settings(
        HYPERID_MFA={k: v for k, v in GOOD.items() if k != "TOKEN_ENCRYPTION_KEYS"}
    ):
        [message] = check_settings()
    assert message.id == "hyperid_mfa.W007"
    assert "SECRET_KEY_FALLBACKS" in message.msg + message.hint


def test_value_errors_are_the_errors_conf_refuses_at_run_time():
    # E004 (plain http://) depends on DEBUG and the host, not on the value alone.
    errors = value_errors({"API_BASE_URL": "http://api.hypersecureid.com", "REQUEST_TTL": 0})
    assert [m.id for m in errors] == ["hyperid_mfa.E002"]


def test_checks_imports_nothing_that_reads_settings():
    """conf imports checks for the rules; checks must not import conf back, not even
    through the gate's modules (decorators, mixins, atomicity -> models -> conf)."""
    tree = ast.parse(Path(checks.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            imported |= {node.module} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hyperid_mfa"):
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names if a.name.startswith("hyperid_mfa")}
    assert imported <= {"constants", "crypto", "wire"}


def test_refresh_after_start_without_celery_warns_w012(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "celery" else real_find_spec(name, *a),
    )
    assert ids(REFRESH_AFTER_START=2) == ["hyperid_mfa.W012"]
    assert ids(REFRESH_AFTER_START=None) == []


@pytest.mark.parametrize("url", ["http://[::1", "https://[not-ip]:8100/"])
def test_a_url_python_cannot_split_is_e003_not_a_crash(url):
    assert ids(API_BASE_URL=url) == ["hyperid_mfa.E003"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TOKEN_ENCRYPTION_KEYS", ("u7wGgNsWdkdEJA0nHGz4oYhZyqlVDOL6kD0XjrHnyKs=", 5)),
        ("CLIENT_SECRET", b"the-client-secret"),
    ],
)
def test_secrets_of_the_wrong_type_are_not_quoted(key, value):
    with override_settings(HYPERID_MFA={**GOOD, key: value}):
        [message] = check_settings()
    assert message.id == "hyperid_mfa.E002"
    assert "u7wGg" not in message.msg
    assert "the-client-secret" not in message.msg


# --- base URLs the app appends paths to (W019, E020) ----------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://api.hypersecureid.com/", "https://api.hypersecureid.com//", "http://[::1]:8100"],
)
def test_a_base_url_without_a_path_is_quiet(url):
    assert ids(API_BASE_URL=url) == []


def test_a_base_url_with_a_path_is_w019_and_shows_the_url_the_client_would_call():
    with override_settings(
        HYPERID_MFA={**GOOD, "API_BASE_URL": "https://api.hypersecureid.com/mfa-client/"}
    ):
        [warning] = check_settings()
    assert warning.id == "hyperid_mfa.W019"
    assert "https://api.hypersecureid.com/mfa-client/mfa-client/transaction/start/v2" in (
        warning.msg
    )
    assert "'https://api.hypersecureid.com'" in warning.hint
    assert "hyperid_mfa.W019" in warning.hint  # a gateway under a path may silence it


def test_a_path_in_the_issuer_is_expected():
    assert ids(ISSUER="https://login.hypersecureid.com/auth/realms/HyperID") == []


@pytest.mark.parametrize(
    ("key", "url", "what"),
    [
        ("API_BASE_URL", "https://api.hypersecureid.com?key=gateway-key", "query string"),
        ("API_BASE_URL", "https://api.hypersecureid.com/?", "query string"),
        ("API_BASE_URL", "https://api.hypersecureid.com#gateway-key", "fragment"),
        ("ISSUER", "https://login.example/realms/HyperID?key=gateway-key", "query string"),
    ],
)
def test_a_base_url_with_a_query_or_fragment_is_e020(key, url, what):
    with override_settings(HYPERID_MFA={**GOOD, key: url}):
        [error] = check_settings()
    assert error.id == "hyperid_mfa.E020"
    assert what in error.msg
    assert "gateway-key" not in error.msg + error.hint


def test_e020_is_refused_at_run_time():
    errors = value_errors({"API_BASE_URL": "https://api.hypersecureid.com?x=1"})
    assert [m.id for m in errors] == ["hyperid_mfa.E020"]


# --- every id: unique, and documented in docs/checks.md -------------------------------------

ID = re.compile(r"hyperid_mfa\.([EW])(\d{3})")


def ids_in_the_package():
    found = set()
    for path in (ROOT / "hyperid_mfa").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = ID.fullmatch(node.value)
                if match:
                    found.add(match.groups())
    return found


def test_no_check_number_is_used_twice():
    numbers = [number for _level, number in ids_in_the_package()]
    assert len(numbers) == len(set(numbers))


def test_docs_checks_md_documents_every_id_of_the_package_once():
    docs = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    headings = re.findall(r"^### hyperid_mfa\.([EW])(\d{3})$", docs, flags=re.MULTILINE)
    rows = re.findall(r"^\| \[`hyperid_mfa\.([EW])(\d{3})`\]", docs, flags=re.MULTILINE)
    assert len(headings) == len(set(headings))
    assert set(headings) == ids_in_the_package()
    assert rows == sorted(headings, key=lambda id_: id_[1])  # the table, in order


def test_the_id_constants_name_their_own_number():
    constants = {
        name: value
        for name, value in vars(checks).items()
        if re.fullmatch(r"[EW]\d{3}", name) and isinstance(value, str)
    }
    assert constants
    assert all(value == f"hyperid_mfa.{name}" for name, value in constants.items())
