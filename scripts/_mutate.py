"""Mutation testing of the security core with mutmut: the body of scripts/mutate.

    python scripts/_mutate.py full [--resume] [--again] [--max-children N]
    python scripts/_mutate.py changed [BASE] [--budget SECONDS] [--max-children N]
    python scripts/_mutate.py survivors [--max-children N]
    python scripts/_mutate.py report

What is mutated, and which tests each module's mutants may need, is in
scripts/mutate.toml (``[tests]``: module -> test modules); mutmut's own settings are
pyproject.toml's ``[tool.mutmut]``, which lists the same modules and tests. mutmut
runs each mutant against the tests that reach the mutated function (it records which
tests call which function in a first run of the module's tests).

A surviving mutant fails the run unless it is listed: in tests/mutants_equivalent.toml
(the function, the line as written and as mutated, and why no test can tell them
apart) or in tests/mutants_open.toml (survivors found and not yet triaged: the
known backlog, reported as "open (known)"; each is debt, to be killed by a test or
moved to the equivalents with a reason). In ``changed``, an unlisted survivor on a
line untouched since scripts/mutate.toml's ``triaged`` is backlog the lists have not
caught up with: reported, not a failure. A listed entry that matches no mutant any
more, or an open one a test now kills, fails the run too: the lists stay true.
The full run is recorded module by module in tests/mutants_full_run.toml, each module
with a hash of its code when its last mutant was tested: a full run may span
several sittings and clones (``mutants/`` is not committed), and it skips a module
recorded at its current code unless ``--again`` (a move to another package keeps it).
Mutants whose line a pattern of ``do_not_mutate_patterns`` matches (log and
audit lines, translated text, message strings) are never made.

Uses mutmut's internals (its data files and diffs), so pyproject.toml pins mutmut
to one minor version.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "scripts" / "mutate.toml"
EQUIVALENT = ROOT / "tests" / "mutants_equivalent.toml"
OPEN = ROOT / "tests" / "mutants_open.toml"
RECORD = ROOT / "tests" / "mutants_full_run.toml"
DRIVER = ROOT / "scripts" / "_mutate_driver.py"
#: What a run of --changed may take, in wall-clock seconds from its start (the
#: step's: scripts/mutate passes HYPERID_MFA_MUTATE_STARTED), setup included.
DEFAULT_BUDGET = 420
#: Seconds kept back from the budget for what follows the mutants: the verdicts, the
#: removal of the temporary databases.
RESERVE = 20
#: When the run began (Unix time): scripts/mutate's start, before it checked the
#: virtualenv, or this process's.
STARTED = float(os.environ.get("HYPERID_MFA_MUTATE_STARTED") or time.time())


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
    triaged: str  # the commit whose changed-line survivors the lists were brought up to


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
    return Settings(tests, str(data.get("baseline", "")), str(data.get("triaged", "")))


@dataclass(frozen=True)
class Listed:
    """An entry of tests/mutants_equivalent.toml or tests/mutants_open.toml."""

    kind: str  # "equivalent" or "open"
    function: str
    before: str
    after: str | None  # None: any mutation of the line
    note: str  # the equivalent's reason; the commit an open one was found at

    def describe(self) -> str:
        after = "" if self.after is None else f" -> {self.after}"
        return f"{self.function}: {self.before}{after}"


def read_equivalents() -> list[Listed]:
    return _read_listed(EQUIVALENT, "equivalent", "reason")


def read_open() -> list[Listed]:
    return _read_listed(OPEN, "open", "found")


def _read_listed(path: Path, kind: str, note: str) -> list[Listed]:
    if not path.exists():
        return []
    found = []
    for entry in tomllib.loads(path.read_text()).get(kind, []):
        if not str(entry.get(note, "")).strip():
            die(f"{path.name}: an entry without {note!r}: {entry}")
        after = entry.get("after")
        found.append(
            Listed(
                kind,
                entry["function"],
                _squash(entry["before"]),
                None if after is None else _squash(after),
                str(entry[note]),
            )
        )
    return found


def _squash(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())


# --- mutants ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    name: str  # mutmut's: hyperid_mfa.services.consuming.x_consume_approval__mutmut_3
    path: str  # hyperid_mfa/services/consuming.py
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

    def matches(self, entry: Listed) -> bool:
        return (
            entry.function == self.function
            and entry.before == self.before
            and (entry.after is None or entry.after == self.after)
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


def load_mutants(
    paths: Iterable[str] | None = None, functions: Iterable[str] | None = None
) -> list[Mutant]:
    """Every mutant mutmut made (of ``paths``; of ``functions``, as mutmut names them),
    with its status and what it changes."""
    os.chdir(ROOT)
    from mutmut.mutation.data import MutantLineSpans, SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    wanted = None if paths is None else set(paths)
    only = None if functions is None else set(functions)
    mutants = []
    for path in walk_mutatable_files():
        if wanted is not None and str(path) not in wanted:
            continue
        data = SourceFileMutationData(path=path)
        data.load()
        names = [
            name
            for name in data.exit_code_by_key
            if only is None or name.rsplit("__mutmut_", 1)[0] in only
        ]
        if not names:
            continue
        defs = _function_lines(ROOT / path)
        spans = MutantLineSpans.load(path)
        text = (ROOT / "mutants" / path).read_text().splitlines() if spans else []
        for name in names:
            function = name.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
            change = _read_change(spans, text, name, defs.get(function, 1)) if spans else None
            if change is None:  # no index of the mutated file: mutmut's own, slower, diff
                change = _changed_lines(get_diff_for_mutant(name, path=path), defs.get(function, 1))
            status = status_by_exit_code[data.exit_code_by_key[name]]
            mutants.append(Mutant(name, str(path), status, *change))
    return mutants


_DEF = re.compile(r"\s*(async\s+)?def\s")


def _read_change(
    spans: Any, text: list[str], name: str, def_line: int
) -> tuple[str, str, tuple[int, ...]] | None:
    """What mutant ``name`` changes, read from the mutated file's text (``text``) by
    mutmut's index of where each function is (``spans``), without parsing: mutmut
    writes the untouched copy and the mutant of a function from one syntax tree, so
    their lines differ only where the mutation is (and in the names they carry)."""
    from mutmut.mutation.diff_apply import generated_function_names

    orig_name, mutant_name = generated_function_names(name)
    try:
        orig_span = spans.span_by_function_name[orig_name]
        mutant_span = spans.span_by_function_name[mutant_name]
    except KeyError:
        return None
    orig = text[orig_span.start - 1 : orig_span.end]
    mutant = [
        line.replace(mutant_name, orig_name)
        for line in text[mutant_span.start - 1 : mutant_span.end]
    ]
    start = next((i for i, line in enumerate(orig) if _DEF.match(line)), None)
    if start is None:
        return None
    removed: list[str] = []
    added: list[str] = []
    lines: list[int] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
        None, orig, mutant, autojunk=False
    ).get_opcodes():
        if tag == "equal":
            continue
        removed += orig[i1:i2]
        added += mutant[j1:j2]
        lines += [def_line + i - start for i in range(i1, i2)]
    return _squash("\n".join(removed)), _squash("\n".join(added)), tuple(lines)


def statuses() -> dict[str, str]:
    """Each mutant's status as mutmut last recorded it (cheap: no diffs)."""
    os.chdir(ROOT)
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    found = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, exit_code in data.exit_code_by_key.items():
            found[name] = status_by_exit_code[exit_code]
    return found


def with_status(mutants: Iterable[Mutant], status: dict[str, str]) -> list[Mutant]:
    return [replace(m, status=status.get(m.name, m.status)) for m in mutants]


def listed_functions() -> set[str]:
    return {entry.function for entry in [*read_equivalents(), *read_open()]}


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


def run_mutmut(names: Sequence[str], max_children: int, log_path: Path) -> None:
    """``mutmut run`` (of ``names``, or all), its chatter in ``log_path``."""
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
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


def run_until(
    names: Sequence[str], tests: Sequence[str], max_children: int, deadline: float, log_path: Path
) -> None:
    """mutmut's run of ``names`` in this order, with only ``tests``, ended at
    ``deadline`` (a Unix time) whatever it is doing then: what it has not tested by
    then stays "not checked". Its chatter in ``log_path``."""
    command = [
        sys.executable,
        str(DRIVER),
        str(deadline - 5),  # stop starting mutants a little before the kill
        json.dumps(list(tests)),
        str(max_children),
        *names,
    ]
    with log_path.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 (this interpreter, our driver, mutants' names)
            command, cwd=ROOT, stdout=out, stderr=out, start_new_session=True
        )
        try:
            shown = ""
            while process.poll() is None and time.time() < deadline:
                time.sleep(min(5.0, max(0.1, deadline - time.time())))
                last = _last_driver_line(log_path)
                if last != shown:
                    log(f"{last} ({int(time.time() - STARTED)} s since the start)")
                    shown = last
        finally:
            if process.poll() is None:
                log("the time budget is consumed: stopping mutmut and the mutants it is testing")
                _kill_group(process)
    if process.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL):
        print(log_path.read_text()[-4000:])
        die(f"mutmut exited with {process.returncode}; its output: {log_path}")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    for signum, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _last_driver_line(log_path: Path) -> str:
    tail = log_path.read_bytes()[-4000:].decode("utf-8", "replace")
    lines = [line[len("mutate: ") :] for line in tail.splitlines() if line.startswith("mutate: ")]
    return lines[-1] if lines else "recording which test reaches which function"


def _forget(names: Iterable[str]) -> None:
    """Mark ``names`` untested, so that only this run's verdicts count."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.utils.file_utils import walk_mutatable_files

    wanted = set(names)
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        keys = wanted & set(data.exit_code_by_key)
        if keys:
            for key in keys:
                data.exit_code_by_key[key] = None
            data.save()


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


def judge(
    tested: Sequence[Mutant],
    generated: Sequence[Mutant],
    untested: int = 0,
    fresh: set[str] | None = None,
) -> int:
    """Print the figures of the ``tested`` mutants and every survivor no list explains;
    the number of failures: those survivors, and the entries of tests/mutants_open.toml
    and tests/mutants_equivalent.toml that are no longer true (matching none of the
    ``generated`` mutants, or a mutant a test kills). Where ``fresh`` names the mutants
    on lines changed since the lists were triaged, an unlisted survivor elsewhere is
    backlog the lists have not caught up with: printed and counted, not a failure."""
    listed = [*read_equivalents(), *read_open()]
    statuses = Counter(m.status for m in tested)
    verdicts: dict[str, list[Mutant]] = {"equivalent": [], "open": [], "new": [], "backlog": []}
    for mutant in tested:
        if mutant.status in KILLED:
            continue
        entry = next((e for e in listed if mutant.matches(e)), None)
        if entry is not None:
            verdicts[entry.kind].append(mutant)
        else:
            verdicts["new" if fresh is None or mutant.name in fresh else "backlog"].append(mutant)
    log(
        f"{len(tested)} mutants tested"
        + (f", {untested} left untested (the time budget)" if untested else "")
        + ": "
        + ", ".join(f"{count} {status}" for status, count in statuses.most_common())
    )
    log(
        f"not killed: {len(verdicts['equivalent'])} equivalent "
        f"({EQUIVALENT.relative_to(ROOT)}), {len(verdicts['open'])} open (known, "
        f"{OPEN.relative_to(ROOT)}), {len(verdicts['backlog'])} backlog not yet listed, "
        f"{len(verdicts['new'])} new"
    )
    by_module = Counter(m.path for m in tested)
    survived_by_module = Counter(m.path for m in tested if m.status not in KILLED)
    for module in sorted(by_module):
        log(f"  {module}: {by_module[module]} tested, {survived_by_module[module]} not killed")
    for mutant in verdicts["open"]:
        log(f"  open (known): {mutant.where} {mutant.name}: {_one_line(mutant)}")
    failures = 0
    for entry in listed:
        if not any(m.matches(entry) for m in generated):
            failures += 1
            log(
                f"LISTED BUT NOT FOUND ({entry.kind}): {entry.describe()}: no mutant of the "
                "code matches it any more; remove the entry (or correct it)"
            )
            continue
        killers = [m for m in tested if m.status == "killed" and m.matches(entry)]
        if killers:
            failures += 1
            why = "a test kills it now" if entry.kind == "open" else "so it is not equivalent"
            log(f"LISTED AS {entry.kind.upper()} BUT KILLED: {entry.describe()}: {why}; remove it")
    for mutant in verdicts["backlog"]:
        print(
            f"\nBACKLOG, NOT YET LISTED ({mutant.status}) {mutant.where} {mutant.name}\n"
            f"  - {mutant.before.replace(chr(10), chr(10) + '  - ')}\n"
            f"  + {mutant.after.replace(chr(10), chr(10) + '  + ')}"
        )
    if verdicts["backlog"]:
        log(
            f"{len(verdicts['backlog'])} survivor(s) on lines no change has touched since the "
            "lists were triaged: backlog, not a new gap. Kill them, or record them with "
            "./scripts/mutate --record-open"
        )
    for mutant in verdicts["new"]:
        print(
            f"\nNEW SURVIVOR ({mutant.status}) {mutant.where} {mutant.name}\n"
            f"  - {mutant.before.replace(chr(10), chr(10) + '  - ')}\n"
            f"  + {mutant.after.replace(chr(10), chr(10) + '  + ')}"
        )
    if verdicts["new"]:
        log(
            f"{len(verdicts['new'])} mutant(s) not killed and not listed: add a test that tells "
            f"each apart, or list it in {EQUIVALENT.relative_to(ROOT)} with why no test can "
            f"(`mutmut show NAME` prints one, `mutmut apply NAME` writes it into the tree)"
        )
    return failures + len(verdicts["new"])


def _one_line(mutant: Mutant) -> str:
    return f"{mutant.before} -> {mutant.after}".replace("\n", " / ")


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
    """Lines of ``modules`` added or changed since ``base`` (the working tree's). A
    module moved since ``base`` is compared with where it was (git's rename
    detection), so a move changes only the lines it edits, its imports."""
    wanted = set(modules)
    # The whole tree, not just ``modules``: a move is found only with both its ends.
    diff = _git("diff", "-U0", "--no-color", "--find-renames", base)
    changed: dict[str, set[int]] = {}
    current = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            current = line[6:] if line.startswith("+++ b/") and line[6:] in wanted else None
            continue
        hunk = re.match(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", line)
        if hunk and current is not None:
            start, count = int(hunk.group(1)), int(hunk.group(2) or 1)
            # A deletion (count 0) changes the lines around it.
            lines = range(start, start + count) if count else range(max(1, start), start + 2)
            changed.setdefault(current, set()).update(lines)
    return changed


def hash_order(mutants: Iterable[Mutant]) -> list[Mutant]:
    """``mutants`` in an order that is the same for the same code on every machine."""

    def key(mutant: Mutant) -> str:
        text = f"{mutant.function}\n{mutant.before}\n{mutant.after}"
        return hashlib.sha256(text.encode()).hexdigest()

    return sorted(mutants, key=key)


# --- commands -------------------------------------------------------------------------------


def full(max_children: int, *, resume: bool = False, again: bool = False) -> int:
    """Every mutant, module by module in scripts/mutate.toml's order (the consumption and
    the binding first): a run stopped early has tested what matters most. ``resume``
    goes on with the mutants a stopped run left untested. A module
    tests/mutants_full_run.toml records at its current code is skipped unless
    ``again``; each module is recorded there once its last mutant is tested."""
    settings = read_settings()
    if not resume:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    elif not (ROOT / "mutants").exists():
        die("no mutants/ here to resume: run ./scripts/mutate first")
    started = time.monotonic()
    _generate_mutants()
    template = _database_template()
    _mutation_environment(template)
    recorded = read_record()
    try:
        for module in settings.tests:
            entry = recorded.get(module)
            if not again and entry is not None and entry["code"] == code_hash(module):
                log(f"{module}: recorded at {entry['commit'][:12]}, unchanged since: skipped")
                continue
            untested = [m.name for m in load_mutants([module]) if m.status == "not checked"]
            log(f"{module}: {len(untested)} mutants to test")
            if untested:
                log_path = ROOT / "mutants" / f"run-{Path(module).stem}.log"
                run_mutmut(untested, max_children, log_path)
            record_module(module, load_mutants([module]))
    finally:
        os.remove(template)
        _remove_leftovers()
    took = int(time.monotonic() - started)
    log(f"took {took // 60} min {took % 60} s at commit {_git('rev-parse', 'HEAD').strip()}")
    return 1 if report() else 0


# --- the full run's record -------------------------------------------------------------------

_RECORD_HEADER = """\
# The full mutation run of the security core, module by module (./scripts/mutate;
# docs/testing.md). Written by scripts/_mutate.py, not by hand.
#
# Each module is recorded when the last of its mutants has been tested: the commit
# and day of that, a hash of the module's code then (`code`: of its syntax tree
# without imports, comments and line numbers, which is what mutmut mutates, so that a
# module moved to another package keeps it), and what became of its mutants as
# mutmut recorded them, before any triage (`not_killed`: survived, reached by no
# test, or suspicious). Survivors are triaged in tests/mutants_open.toml and
# tests/mutants_equivalent.toml. A module whose code still has this hash needs no new
# full run: ./scripts/mutate skips it (unless
# --again); the lines changed since are CI's (./scripts/mutate --changed).
"""


class _WithoutImports(ast.NodeTransformer):
    def visit_Import(self, node: ast.Import) -> None:
        return None

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return None


def code_hash(module: str) -> str:
    """SHA-256 of ``module``'s syntax tree without its imports: the same for the same
    code wherever the module lives and however its comments and blank lines read."""
    tree = _WithoutImports().visit(ast.parse((ROOT / module).read_text()))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def read_record() -> dict[str, dict[str, Any]]:
    if not RECORD.exists():
        return {}
    return {entry["path"]: entry for entry in tomllib.loads(RECORD.read_text())["module"]}


def record_module(module: str, mutants: Sequence[Mutant]) -> None:
    """Record ``module``'s full run in tests/mutants_full_run.toml, once every one of
    its ``mutants`` is tested."""
    if any(m.status == "not checked" for m in mutants):
        return
    killed = sum(m.status in KILLED for m in mutants)
    recorded = read_record()
    recorded[module] = {
        "path": module,
        "code": code_hash(module),
        "commit": _git("rev-parse", "HEAD").strip(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "mutants": len(mutants),
        "killed": killed,
        "not_killed": len(mutants) - killed,
    }
    order = list(read_settings().tests)
    text = _RECORD_HEADER
    for path in sorted(recorded, key=lambda p: order.index(p) if p in order else len(order)):
        entry = recorded[path]
        text += "\n[[module]]\n" + "".join(
            f"{key} = {_toml(value) if isinstance(value, str) else value}\n"
            for key, value in entry.items()
        )
    RECORD.write_text(text)
    log(f"{module}: recorded in {RECORD.name}: {killed} of {len(mutants)} killed")


def report() -> int:
    """The verdicts of every mutant mutmut has made here; the number of failures."""
    every = load_mutants()
    tested = [m for m in every if m.status != "not checked"]
    return judge(tested, every, untested=len(every) - len(tested))


def survivors(max_children: int) -> int:
    """Test again the mutants the last run did not kill (after tests were added)."""
    read_settings()
    if not (ROOT / "mutants").exists():
        die("no mutants/ here: run ./scripts/mutate first")
    again = [m.name for m in load_mutants() if m.status not in KILLED | {"not checked"}]
    log(f"testing again the {len(again)} mutants the last run did not kill")
    if again:
        template = _database_template()
        _mutation_environment(template)
        try:
            run_mutmut(again, max_children, ROOT / "mutants" / "survivors.log")
        finally:
            os.remove(template)
    return 1 if report() else 0


def changed(base: str | None, budget: int, max_children: int) -> int:
    """The mutants on the lines changed since ``base``, within ``budget`` seconds of
    wall-clock time from STARTED, setup included: those on lines changed since the
    lists were last triaged first, then the rest, then those the lists name, each in
    hash order; judged as far as the time allowed, saying how many were left
    untested."""
    deadline = STARTED + budget
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
        f"changed since {base[:12]}: "
        + ", ".join(f"{path} ({len(found)} lines)" for path, found in sorted(lines.items()))
    )
    _generate_mutants()
    candidates = load_mutants(lines)
    on_changed = [m for m in candidates if any(line in lines[m.path] for line in m.lines)]
    if not on_changed:
        log("no mutant on the changed lines (only lines mutmut leaves alone changed)")
        return 0
    # Without a triaged commit here, every line counts as a change's own.
    triaged = bool(settings.triaged) and _commit_exists(settings.triaged)
    fresh = changed_lines(settings.triaged, lines) if triaged else lines

    def is_fresh(mutant: Mutant) -> bool:
        return any(line in fresh.get(mutant.path, ()) for line in mutant.lines)

    # Listed survivors go last: they are the slowest to test (every test that reaches
    # them runs), and testing them again only asks whether a test kills them now.
    entries = [*read_equivalents(), *read_open()]

    def is_listed(mutant: Mutant) -> bool:
        return any(mutant.matches(entry) for entry in entries)

    unlisted = [m for m in on_changed if not is_listed(m)]
    first = hash_order(m for m in unlisted if is_fresh(m))
    order = [
        *first,
        *hash_order(m for m in unlisted if not is_fresh(m)),
        *hash_order(m for m in on_changed if is_listed(m)),
    ]
    log(
        f"{len(order)} mutants on the changed lines, {len(first)} of them on lines changed "
        f"since the lists were triaged ({settings.triaged[:12] or 'never'}), which go first; "
        f"then the rest; the {len(order) - len(unlisted)} listed as equivalent or open last; "
        "each in an order the same on every run of the same code. Budget: "
        f"{budget} s from the start, {int(deadline - time.time())} s left"
    )
    _forget(m.name for m in order)
    tests = sorted({name for path in lines for name in settings.tests[path]})
    template = _database_template()
    _mutation_environment(template)
    try:
        run_until(
            [m.name for m in order],
            tests,
            max_children,
            deadline - RESERVE,
            ROOT / "mutants" / "changed.log",
        )
    finally:
        os.remove(template)
        _remove_leftovers()
    results = with_status(order, statuses())
    tested = [m for m in results if m.status != "not checked"]
    listed = listed_functions()  # as the lists are now: what a stale entry is judged by
    generated = [m for m in candidates if m.function in listed] + load_mutants(
        [path for path in settings.tests if path not in lines], listed
    )
    failures = judge(tested, generated, len(order) - len(tested), {m.name for m in first})
    untested_first = [m for m in results[: len(first)] if m.status == "not checked"]
    if untested_first:
        log(
            f"{len(untested_first)} of the {len(first)} mutants on lines changed since the "
            "lists were triaged were left untested: a larger HYPERID_MFA_MUTATE_BUDGET "
            "tests them"
        )
    if not tested:
        log(
            "no mutant could be tested within the budget, so nothing was shown: give the "
            "step more time (HYPERID_MFA_MUTATE_BUDGET) or a less loaded machine"
        )
        failures += 1
    log(f"took {int(time.time() - STARTED)} s from the start (budget {budget} s)")
    return 1 if failures else 0


def record_open() -> int:
    """Add the last run's survivors that no list explains to tests/mutants_open.toml
    (the known backlog, each with the commit it was found at)."""
    if not (ROOT / "mutants").exists():
        die("no mutants/ here: run ./scripts/mutate first")
    listed = [*read_equivalents(), *read_open()]
    commit = _git("rev-parse", "--short=12", "HEAD").strip()
    text = OPEN.read_text() if OPEN.exists() else ""
    seen: set[tuple[str, str, str]] = set()
    for mutant in load_mutants():
        if mutant.status in KILLED | {"not checked"} or any(mutant.matches(e) for e in listed):
            continue
        if (mutant.function, mutant.before, mutant.after) in seen:
            continue
        seen.add((mutant.function, mutant.before, mutant.after))
        text += (
            f"\n[[open]]\nfunction = {_toml(mutant.function)}\n"
            f"before = {_toml(mutant.before)}\nafter = {_toml(mutant.after)}\n"
            f'found = "{commit}"  # {mutant.where}, {mutant.status}\n'
        )
    OPEN.write_text(text)
    log(f"{len(seen)} survivors added to {OPEN.relative_to(ROOT)}")
    return 0


def _toml(text: str) -> str:
    if "'" not in text and "\n" not in text:
        return f"'{text}'"  # a literal string: the line as written
    return json.dumps(text, ensure_ascii=False)  # JSON's escapes are TOML's


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_all = commands.add_parser("full", help="mutate every module of scripts/mutate.toml")
    run_all.add_argument("--resume", action="store_true", help="go on with a stopped run")
    run_all.add_argument(
        "--again", action="store_true", help="also the modules recorded at their current code"
    )
    run_changed = commands.add_parser("changed", help="only the lines changed since BASE")
    run_changed.add_argument("base", nargs="?", help="default: the last full run's commit")
    run_changed.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="seconds")
    run_again = commands.add_parser("survivors", help="test the last run's survivors again")
    for command in (run_all, run_changed, run_again):
        command.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    commands.add_parser("report", help="the verdicts of the last run, again")
    commands.add_parser("record-open", help="list the last run's new survivors as open")
    args = parser.parse_args(argv)
    if args.command == "full":
        return full(args.max_children, resume=args.resume, again=args.again)
    if args.command == "changed":
        return changed(args.base, args.budget, args.max_children)
    if args.command == "survivors":
        return survivors(args.max_children)
    if args.command == "record-open":
        return record_open()
    if not (ROOT / "mutants").exists():
        die("no mutants/ here: run ./scripts/mutate first")
    return 1 if report() else 0


def _stop(signum: int, frame: object) -> None:
    # SIGTERM (CI's timeout, kill): unwind, so that the temporary databases go too.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    sys.exit(main(sys.argv[1:]))
