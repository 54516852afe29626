"""Mutation testing of the security core with mutmut: the body of scripts/mutate.

    python scripts/_mutate.py full [--resume] [--max-children N]
    python scripts/_mutate.py changed [BASE] [--budget SECONDS] [--max-children N]
    python scripts/_mutate.py survivors [--max-children N]
    python scripts/_mutate.py report

What is mutated, and which tests each module's mutants may need, is in
scripts/mutate.toml (``[tests]``: module -> test modules); mutmut's own settings are
pyproject.toml's ``[tool.mutmut]``, which lists the same modules and tests. mutmut
runs each mutant against the tests that reach the mutated function (it records which
tests call which function in a first run of the module's tests).

A surviving mutant fails the run unless tests/mutants_equivalent.toml lists it:
the function, the line as written and as mutated, and why no test can tell them
apart. Mutants whose line a pattern of ``do_not_mutate_patterns`` matches (log and
audit lines, translated text, message strings) are never made.

Uses mutmut's internals (its data files and diffs), so pyproject.toml pins mutmut
to one minor version.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "scripts" / "mutate.toml"
EQUIVALENT = ROOT / "tests" / "mutants_equivalent.toml"
#: Assumed seconds per mutant on this project's 2-core machines (the full run's
#: figure, in docs/testing.md), to turn a time budget into a number of mutants.
SECONDS_PER_MUTANT = 1.5
#: What a run of --changed may take before sampling, in seconds.
DEFAULT_BUDGET = 420


def log(message: str) -> None:
    print(f"mutate: {message}", flush=True)


def die(message: str) -> None:
    print(f"mutate: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


# --- settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    tests: dict[str, list[str]]  # module path -> test modules
    baseline: str  # the commit of the last full run


def read_settings() -> Settings:
    data = tomllib.loads(SETTINGS.read_text())
    tests = {module: list(names) for module, names in data["tests"].items()}
    mutmut = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    if sorted(tests) != sorted(mutmut["only_mutate"]):
        die("scripts/mutate.toml [tests] and pyproject.toml only_mutate list other modules")
    wanted = sorted({name for names in tests.values() for name in names})
    if wanted != sorted(mutmut["pytest_add_cli_args_test_selection"]):
        die(
            "pyproject.toml pytest_add_cli_args_test_selection must be every test module "
            "named in scripts/mutate.toml [tests]"
        )
    return Settings(tests, str(data.get("baseline", "")))


@dataclass(frozen=True)
class Equivalent:
    function: str
    before: str
    after: str | None  # None: any mutation of the line
    reason: str


def read_equivalents() -> list[Equivalent]:
    if not EQUIVALENT.exists():
        return []
    entries = tomllib.loads(EQUIVALENT.read_text()).get("equivalent", [])
    found = []
    for entry in entries:
        if not str(entry.get("reason", "")).strip():
            die(f"{EQUIVALENT.name}: an entry without a reason: {entry}")
        after = entry.get("after")
        found.append(
            Equivalent(
                entry["function"],
                _squash(entry["before"]),
                None if after is None else _squash(after),
                entry["reason"],
            )
        )
    return found


def _squash(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())


# --- mutants ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    name: str  # mutmut's: hyperid_mfa.spending.x_consume_approval__mutmut_3
    path: str  # hyperid_mfa/spending.py
    status: str
    before: str  # the original line(s), stripped
    after: str  # the mutated line(s), stripped
    lines: tuple[int, ...]  # the original file's lines it changes

    @property
    def function(self) -> str:
        return self.name.rsplit("__mutmut_", 1)[0]

    @property
    def where(self) -> str:
        first = self.lines[0] if self.lines else "?"
        return f"{self.path}:{first}"

    def matches(self, equivalent: Equivalent) -> bool:
        return (
            equivalent.function == self.function
            and equivalent.before == self.before
            and (equivalent.after is None or equivalent.after == self.after)
        )


def _function_lines(path: Path) -> dict[str, int]:
    """Mangled name (as mutmut writes it) -> the line of that function's ``def``."""
    tree = ast.parse(path.read_text())
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[f"x_{node.name}"] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"x\u01c1{node.name}\u01c1{item.name}"] = item.lineno
    return found


_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


def _changed_lines(diff: str, def_line: int) -> tuple[str, str, tuple[int, ...]]:
    """The removed and added lines of a function's diff, and the file lines removed."""
    lines = diff.splitlines()
    body = [line for line in lines if not line.startswith(("---", "+++"))]
    # The diff numbers the function's text, which may start with comments above the
    # def: find the def to anchor it to the file.
    text_line, offset = 0, None
    removed: list[str] = []
    added: list[str] = []
    file_lines: list[int] = []
    positions: list[int] = []
    for line in body:
        hunk = _HUNK.match(line)
        if hunk:
            text_line = int(hunk.group(1))
            continue
        if line.startswith("+"):
            added.append(line[1:])
            continue
        content = line[1:]
        if offset is None and re.match(r"\s*(async\s+)?def\s", content):
            offset = def_line - text_line
        if line.startswith("-"):
            removed.append(content)
            positions.append(text_line)
        text_line += 1
    if offset is None:
        offset = def_line - 1
    file_lines = [position + offset for position in positions]
    return _squash("\n".join(removed)), _squash("\n".join(added)), tuple(file_lines)


def load_mutants(paths: Iterable[str] | None = None) -> list[Mutant]:
    """Every mutant mutmut made (of ``paths``), with its status and what it changes."""
    os.chdir(ROOT)
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    wanted = None if paths is None else set(paths)
    mutants = []
    for path in walk_mutatable_files():
        if wanted is not None and str(path) not in wanted:
            continue
        data = SourceFileMutationData(path=path)
        data.load()
        defs = _function_lines(ROOT / path)
        for name, exit_code in data.exit_code_by_key.items():
            function = name.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
            diff = get_diff_for_mutant(name, path=path)
            before, after, lines = _changed_lines(diff, defs.get(function, 1))
            mutants.append(
                Mutant(name, str(path), status_by_exit_code[exit_code], before, after, lines)
            )
    return mutants


def _generate_mutants() -> None:
    """Make the mutants (mutants/) without running any, as ``mutmut run`` begins."""
    from mutmut.__main__ import create_mutants
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths

    os.chdir(ROOT)
    set_mutant_under_test("mutant_generation")
    Path("mutants").mkdir(exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # a line per file copied
        copy_src_dir()
        copy_also_copy_files()
        setup_source_paths()
        create_mutants(os.cpu_count() or 2)
    set_mutant_under_test("")


# --- running ------------------------------------------------------------------------------


def _database_template() -> str:
    """A migrated SQLite test database, which each mutant's tests start from a copy of."""
    path = os.path.join(tempfile.gettempdir(), f"hyperid-mfa-mutate-{os.getpid()}.sqlite3")
    code = (
        "import django, sys\n"
        "from django.conf import settings\n"
        "django.setup()\n"
        "from django.db import connection\n"
        "settings.DATABASES['default']['TEST']['NAME'] = sys.argv[1]\n"
        "connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    subprocess.run([sys.executable, "-c", code, path], cwd=ROOT, env=env, check=True)  # noqa: S603
    return path


def _remove_leftovers() -> None:
    """The copies of the template that workers killed on their time limit left behind
    (those of processes still alive, another run's, stay)."""
    for leftover in Path(tempfile.gettempdir()).glob("hyperid-mfa-mutant-*.sqlite3*"):
        pid = leftover.name.split("-")[3].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mutation_environment(template: str) -> None:
    # SQLite only: a copy of the template per mutant. The PostgreSQL-only tests skip.
    os.environ.pop("HYPERID_MFA_TEST_DATABASE", None)
    os.environ.pop("HYPERID_MFA_REQUIRE_SERVICES", None)
    os.environ["HYPERID_MFA_MUTATE_DB"] = template


#: ``mutmut run``, with the tests it may run narrowed (argv: the test modules as JSON,
#: the number of workers, the mutants' names).
_RUN_NARROWED = (
    "import json, sys\n"
    "from mutmut.__main__ import _run\n"
    "from mutmut.configuration import config\n"
    "config().pytest_add_cli_args_test_selection = json.loads(sys.argv[1])\n"
    "_run(sys.argv[3:], int(sys.argv[2]))\n"
)


def run_mutmut(
    names: Sequence[str], max_children: int, log_path: Path, tests: Sequence[str] | None = None
) -> None:
    """``mutmut run`` (of ``names``, or all; with only ``tests`` if given), its chatter
    in ``log_path``."""
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    if tests is not None:
        command = [sys.executable, "-c", _RUN_NARROWED, json.dumps(list(tests)), str(max_children)]
    started = time.monotonic()
    with log_path.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 (this interpreter, mutmut, mutants' names)
            [*command, *names], cwd=ROOT, stdout=out, stderr=out
        )
        while process.poll() is None:
            time.sleep(60 if not names else 15)
            log(f"{_progress(log_path)} ({int(time.monotonic() - started)} s)")
    if process.returncode != 0:
        print(log_path.read_text()[-4000:])
        die(f"mutmut run exited with {process.returncode}; its output: {log_path}")


def _progress(log_path: Path) -> str:
    tail = log_path.read_bytes()[-2000:].decode("utf-8", "replace")
    found = re.findall(r"(\d+/\d+)\s+\S+ (\d+) \S+ (\d+)\s+\S+ (\d+)\s+\S+ (\d+)\s+\S+ (\d+)", tail)
    if not found:
        return "preparing"
    done, killed, untested, timeout, suspicious, survived = found[-1]
    return (
        f"{done} mutants: {killed} killed, {survived} survived, {untested} without tests, "
        f"{timeout} timed out, {suspicious} suspicious"
    )


# --- verdicts -------------------------------------------------------------------------------

#: Statuses that count as a test telling the mutant apart.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def judge(mutants: Sequence[Mutant], equivalents: Sequence[Equivalent]) -> int:
    """Print the figures and every unexplained survivor; the number of those."""
    statuses = Counter(m.status for m in mutants)
    explained = [m for m in mutants if m.status not in KILLED if _explained(m, equivalents)]
    unexplained = [m for m in mutants if m.status not in KILLED and not _explained(m, equivalents)]
    log(
        f"{len(mutants)} mutants: "
        + ", ".join(f"{count} {status}" for status, count in statuses.most_common())
    )
    log(f"{len(explained)} survivors listed as equivalent in {EQUIVALENT.relative_to(ROOT)}")
    by_module = Counter(m.path for m in mutants)
    survived_by_module = Counter(m.path for m in mutants if m.status not in KILLED)
    for module in sorted(by_module):
        log(f"  {module}: {by_module[module]} mutants, {survived_by_module[module]} not killed")
    used = {id(e) for m in explained for e in equivalents if m.matches(e)}
    stale = [e for e in equivalents if id(e) not in used]
    if stale and len(mutants) == sum(by_module.values()) and _is_full(mutants):
        for entry in stale:
            log(f"  listed but not found (the code changed?): {entry.function}: {entry.before}")
    for mutant in unexplained:
        print(
            f"\nNOT KILLED ({mutant.status}) {mutant.where} {mutant.name}\n"
            f"  - {mutant.before.replace(chr(10), chr(10) + '  - ')}\n"
            f"  + {mutant.after.replace(chr(10), chr(10) + '  + ')}"
        )
    if unexplained:
        log(
            f"{len(unexplained)} mutant(s) not killed and not listed as equivalent: add a test "
            f"that tells each apart, or list it in {EQUIVALENT.relative_to(ROOT)} with why "
            "no test can"
        )
    return len(unexplained)


def _explained(mutant: Mutant, equivalents: Sequence[Equivalent]) -> bool:
    return any(mutant.matches(entry) for entry in equivalents)


def _is_full(mutants: Sequence[Mutant]) -> bool:
    return all(m.status != "not checked" for m in mutants)


# --- what changed ---------------------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(  # noqa: S603
        ["git", *args],  # noqa: S607
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _commit_exists(ref: str) -> bool:
    return (
        bool(ref)
        and subprocess.run(  # noqa: S603
            ["git", "cat-file", "-e", f"{ref}^{{commit}}"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
        ).returncode
        == 0
    )


def changed_lines(base: str, modules: Iterable[str]) -> dict[str, set[int]]:
    """Lines of ``modules`` added or changed since ``base`` (the working tree's)."""
    diff = _git("diff", "-U0", "--no-color", base, "--", *modules)
    changed: dict[str, set[int]] = {}
    current = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            current = line[6:] if line.startswith("+++ b/") else None
            continue
        hunk = re.match(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", line)
        if hunk and current is not None:
            start, count = int(hunk.group(1)), int(hunk.group(2) or 1)
            # A deletion (count 0) changes the lines around it.
            lines = range(start, start + count) if count else range(max(1, start), start + 2)
            changed.setdefault(current, set()).update(lines)
    return changed


def sample(mutants: Sequence[Mutant], limit: int) -> list[Mutant]:
    """At most ``limit`` mutants, the same ones for the same code on every machine."""

    def key(mutant: Mutant) -> str:
        text = f"{mutant.function}\n{mutant.before}\n{mutant.after}"
        return hashlib.sha256(text.encode()).hexdigest()

    return sorted(mutants, key=key)[:limit]


# --- commands -------------------------------------------------------------------------------


def full(max_children: int, *, resume: bool = False) -> int:
    """Every mutant, module by module in scripts/mutate.toml's order (the spend and
    the binding first): a run stopped early has tested what matters most. ``resume``
    goes on with the mutants a stopped run left untested."""
    settings = read_settings()
    if not resume:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    elif not (ROOT / "mutants").exists():
        die("no mutants/ here to resume: run ./scripts/mutate first")
    started = time.monotonic()
    _generate_mutants()
    template = _database_template()
    _mutation_environment(template)
    try:
        for module in settings.tests:
            untested = [m.name for m in load_mutants([module]) if m.status == "not checked"]
            log(f"{module}: {len(untested)} mutants to test")
            if untested:
                log_path = ROOT / "mutants" / f"run-{Path(module).stem}.log"
                run_mutmut(untested, max_children, log_path)
    finally:
        os.remove(template)
        _remove_leftovers()
    took = int(time.monotonic() - started)
    log(f"took {took // 60} min {took % 60} s at commit {_git('rev-parse', 'HEAD').strip()}")
    return 1 if judge(load_mutants(), read_equivalents()) else 0


def survivors(max_children: int) -> int:
    """Test again the mutants the last run did not kill (after tests were added)."""
    read_settings()
    if not (ROOT / "mutants").exists():
        die("no mutants/ here: run ./scripts/mutate first")
    again = [m.name for m in load_mutants() if m.status not in KILLED]
    log(f"testing again the {len(again)} mutants the last run did not kill")
    if again:
        template = _database_template()
        _mutation_environment(template)
        try:
            run_mutmut(again, max_children, ROOT / "mutants" / "survivors.log")
        finally:
            os.remove(template)
    return 1 if judge(load_mutants(), read_equivalents()) else 0


def changed(base: str | None, budget: int, max_children: int) -> int:
    settings = read_settings()
    if base is None:
        base = settings.baseline
        if not _commit_exists(base):
            log(f"the baseline {base or '(none)'} of scripts/mutate.toml is not in this clone")
            base = "HEAD~1"
        else:
            log(f"changes since the last full run ({base[:12]}, scripts/mutate.toml)")
    if not _commit_exists(base):
        die(f"no such commit: {base}")
    lines = changed_lines(base, settings.tests)
    if not lines:
        log(f"no line of the security core changed since {base}: nothing to mutate")
        return 0
    log(
        "changed since "
        + base
        + ": "
        + ", ".join(f"{path} ({len(found)} lines)" for path, found in sorted(lines.items()))
    )
    started = time.monotonic()
    _generate_mutants()
    on_changed = [
        m for m in load_mutants(lines) if m.lines and any(line in lines[m.path] for line in m.lines)
    ]
    if not on_changed:
        log("no mutant on the changed lines (only lines mutmut leaves alone changed)")
        return 0
    limit = max(1, int(budget / SECONDS_PER_MUTANT))
    chosen = sample(on_changed, limit)
    if len(chosen) < len(on_changed):
        log(
            f"{len(on_changed)} mutants on the changed lines, more than a {budget} s budget "
            f"allows: running {len(chosen)}, chosen by a hash of each mutation (the same "
            "ones on every run of the same code). ./scripts/mutate runs them all."
        )
    else:
        log(f"{len(chosen)} mutants on the changed lines")
    # Only the changed modules' tests: the first run, which records which test reaches
    # which function, is then a fraction of the whole selection.
    tests = sorted({name for path in lines for name in settings.tests[path]})
    template = _database_template()
    _mutation_environment(template)
    try:
        run_mutmut([m.name for m in chosen], max_children, ROOT / "mutants" / "changed.log", tests)
    finally:
        os.remove(template)
        _remove_leftovers()
    names = {m.name for m in chosen}
    results = [m for m in load_mutants(lines) if m.name in names]
    took = int(time.monotonic() - started)
    log(f"took {took // 60} min {took % 60} s")
    return 1 if judge(results, read_equivalents()) else 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_all = commands.add_parser("full", help="mutate every module of scripts/mutate.toml")
    run_all.add_argument("--resume", action="store_true", help="go on with a stopped run")
    run_changed = commands.add_parser("changed", help="only the lines changed since BASE")
    run_changed.add_argument("base", nargs="?", help="default: the last full run's commit")
    run_changed.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="seconds")
    run_again = commands.add_parser("survivors", help="test the last run's survivors again")
    for command in (run_all, run_changed, run_again):
        command.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    commands.add_parser("report", help="the verdicts of the last run, again")
    args = parser.parse_args(argv)
    if args.command == "full":
        return full(args.max_children, resume=args.resume)
    if args.command == "changed":
        return changed(args.base, args.budget, args.max_children)
    if args.command == "survivors":
        return survivors(args.max_children)
    if not (ROOT / "mutants").exists():
        die("no mutants/ here: run ./scripts/mutate first")
    return 1 if judge(load_mutants(), read_equivalents()) else 0


def _stop(signum: int, frame: object) -> None:
    # SIGTERM (CI's timeout, kill): unwind, so that the temporary databases go too.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    sys.exit(main(sys.argv[1:]))
