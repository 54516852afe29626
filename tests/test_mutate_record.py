"""The full mutation run's record (scripts/_mutate.py, tests/mutants_full_run.toml):
a module is recorded once all its mutants are tested, and a later run skips it while
its source is unchanged. A full run takes hours; the record lets it span sittings."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# scripts/mutate runs on Python 3.11 or newer (tomllib), as docs/testing.md says.
pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="scripts/_mutate.py needs Python 3.11 or newer"
)


@pytest.fixture
def mutate(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("_mutate", ROOT / "scripts" / "_mutate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "_mutate", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RECORD", tmp_path / "mutants_full_run.toml")
    monkeypatch.setattr(module, "log", lambda message: None)
    return module


def mutants(mutate, statuses):
    return [
        mutate.Mutant(
            f"hyperid_mfa.services.consuming.x_f__mutmut_{n}",
            "hyperid_mfa/services/consuming.py",
            s,
            "a",
            "b",
            (1,),
        )
        for n, s in enumerate(statuses, 1)
    ]


def test_a_module_whose_mutants_are_all_tested_is_recorded_with_its_figures_and_source(mutate):
    mutate.record_module(
        "hyperid_mfa/services/consuming.py",
        mutants(mutate, ["killed", "survived", "timeout", "no tests"]),
    )

    entry = mutate.read_record()["hyperid_mfa/services/consuming.py"]
    assert (entry["mutants"], entry["killed"], entry["not_killed"]) == (4, 2, 2)
    assert entry["code"] == mutate.code_hash("hyperid_mfa/services/consuming.py")
    assert len(entry["commit"]) == 40
    assert mutate.RECORD.read_text().startswith("# The full mutation run")


def test_a_module_with_an_untested_mutant_is_not_recorded(mutate):
    mutate.record_module(
        "hyperid_mfa/services/consuming.py", mutants(mutate, ["killed", "not checked"])
    )

    assert mutate.read_record() == {}


def test_recording_one_module_keeps_the_others_in_the_settings_order(mutate):
    mutate.record_module("hyperid_mfa/services/ratelimit.py", mutants(mutate, ["killed"]))
    mutate.record_module("hyperid_mfa/services/consuming.py", mutants(mutate, ["survived"]))
    mutate.record_module("hyperid_mfa/services/ratelimit.py", mutants(mutate, ["killed", "killed"]))

    record = mutate.read_record()
    assert list(record) == [
        "hyperid_mfa/services/consuming.py",
        "hyperid_mfa/services/ratelimit.py",
    ]
    assert record["hyperid_mfa/services/ratelimit.py"]["mutants"] == 2
    assert record["hyperid_mfa/services/consuming.py"]["not_killed"] == 1


def test_the_code_hash_ignores_imports_comments_and_blank_lines_but_not_code(
    mutate, tmp_path, monkeypatch
):
    """A module moved to another package (its imports rewritten) keeps its record; a
    change of code does not."""
    original = "from . import a\n\ndef f(x):\n    return a.g(x) + 1\n"
    variants = {
        "moved": "from .. import a  # now in a subpackage\n\n\ndef f(x):\n    return a.g(x) + 1\n",
        "changed": "from . import a\n\ndef f(x):\n    return a.g(x) + 2\n",
    }
    (tmp_path / "original.py").write_text(original)
    for name, text in variants.items():
        (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.setattr(mutate, "ROOT", tmp_path)
    assert mutate.code_hash("moved.py") == mutate.code_hash("original.py")
    assert mutate.code_hash("changed.py") != mutate.code_hash("original.py")


def test_the_committed_record_reads_back_and_names_only_mutated_modules(mutate):
    """What is committed reads back, and names modules scripts/mutate.toml mutates."""
    committed = ROOT / "tests" / "mutants_full_run.toml"
    if not committed.exists():
        pytest.skip("no module has been recorded yet")
    mutate.RECORD = committed
    modules = set(mutate.read_settings().tests)
    for path, entry in mutate.read_record().items():
        assert path in modules
        assert len(entry["code"]) == 64
        assert entry["killed"] + entry["not_killed"] == entry["mutants"]


def test_a_module_moved_since_the_base_has_changed_only_where_its_move_edited_it(
    mutate, tmp_path, monkeypatch
):
    """CI mutates the lines changed since the last run; moving a module into a
    subpackage changes its imports, not every line (else every old survivor would
    count as a new one)."""

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    body = "".join(f"def f{n}(x):\n    return x + {n}\n\n\n" for n in range(30))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "consuming.py").write_text("from . import models\n\n\n" + body)
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "0")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (tmp_path / "pkg" / "services").mkdir()
    git("mv", "pkg/consuming.py", "pkg/services/consuming.py")
    moved = tmp_path / "pkg" / "services" / "consuming.py"
    moved.write_text("from .. import models\n\n\n" + body.replace("x + 7\n", "x + 70\n"))
    monkeypatch.setattr(mutate, "ROOT", tmp_path)

    changed = mutate.changed_lines(base, ["pkg/services/consuming.py"])

    seventh = 4 + 7 * 4 + 1  # the line of f7's return
    assert changed == {"pkg/services/consuming.py": {1, seventh}}
