"""The code examples of README.md and docs/*.md, read so that tests can run them.

Every fenced ``python`` block says how it is checked, in an HTML comment on the line
before its fence (invisible once rendered)::

    <!-- example: project proj/settings.py -->   a file of the first-hour project
    <!-- example: settings -->                   settings that pass the app's checks
    <!-- example: run -->                        code that runs as it is
    <!-- example: skip <why> -->                 shown only; the reason is required

Blocks in other languages (``html``, ``ini``) may be ``project`` files too.

``project`` blocks build one Django project, as a newcomer would: ``startproject
proj``, ``startapp payments`` (added to ``INSTALLED_APPS``), then each block in the
order of the documents (README.md first, then docs/ by name). A block's first lines
go to the file its marker names; a later block for the same file is appended to it,
and so are blocks for the two files ``startproject`` wrote (``proj/settings.py``,
``proj/urls.py``).

The usual shorthand for "what is already there" works in settings and URLconfs:
``NAME = [..., x]`` appends to the list ``NAME`` and ``NAME = {..., "K": v}`` adds
to the dict ``NAME``.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import CodeType

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

HOW = ("project", "settings", "run", "skip")
MARKER = re.compile(r"^<!--\s*example:\s*(?P<how>\S+)\s*(?P<arg>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>[\w+-]*)")

#: ``NAME = [...,`` / ``NAME = {...,``: the list or dict of that name so far, extended.
EXTEND_LIST = re.compile(r"^(?P<name>\w+) = \[\s*\.\.\.,", re.MULTILINE)
EXTEND_DICT = re.compile(r"^(?P<name>\w+) = \{\s*\.\.\.,", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    """One fenced block of a document."""

    document: Path
    line: int  # of the opening fence, counted from 1
    language: str
    how: str | None  # None: the block has no marker
    arg: str
    source: str

    @property
    def name(self) -> str:
        """The document's path, from the repository's root where it is inside it."""
        if self.document.is_relative_to(ROOT):
            return str(self.document.relative_to(ROOT))
        return str(self.document)

    @property
    def where(self) -> str:
        return f"{self.name}:{self.line}"

    def code(self) -> str:
        """The source with the "what is already there" shorthand spelled out."""
        source = EXTEND_DICT.sub(lambda m: f"{m['name']} = {{**{m['name']},", self.source)
        return EXTEND_LIST.sub(lambda m: f"{m['name']} = [*{m['name']},", source)

    def compile(self) -> CodeType:
        """The block compiled, its errors naming the document and line."""
        return compile(self.code(), self.where, "exec", dont_inherit=True)


def examples(documents: list[Path] = DOCUMENTS) -> list[Example]:
    """Every fenced block of ``documents``, in order."""
    found = []
    for document in documents:
        lines = document.read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            opening = FENCE.match(lines[index])
            if not opening:
                index += 1
                continue
            end = index + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            previous = lines[index - 1].strip() if index else ""
            marker = MARKER.match(previous)
            indent = len(opening["indent"])
            found.append(
                Example(
                    document=document,
                    line=index + 1,
                    language=opening["language"],
                    how=marker["how"] if marker else None,
                    arg=marker["arg"] if marker else "",
                    source="\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n",
                )
            )
            index = end + 1
    return found


def python_examples() -> list[Example]:
    return [example for example in examples() if example.language == "python"]


def problems(example: Example) -> list[str]:
    """What is wrong with how ``example`` says it is checked."""
    if example.language == "python" and example.how is None:
        return [f"{example.where}: a Python example without '<!-- example: ... -->' before it"]
    if example.how is None:
        return []
    if example.how not in HOW:
        return [f"{example.where}: 'example: {example.how}' is not one of {', '.join(HOW)}"]
    if example.how in ("project", "skip") and not example.arg:
        what = "a file name" if example.how == "project" else "a reason"
        return [f"{example.where}: 'example: {example.how}' needs {what}"]
    if example.language == "python":
        try:
            ast.parse(example.code(), example.where)
        except SyntaxError as err:
            return [f"{example.where}: not Python: {err}"]
    return []


class CommandFailed(AssertionError):
    """A command in the first-hour project failed; the message holds its output."""


Runner = Callable[[list[str], Path], str]


def runner() -> Runner:
    """``run(args, cwd)``: a command as the project's developer runs it, in a clean
    environment with the two secrets the README's settings read; its output, or
    :class:`CommandFailed`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "PYTEST_", "HYPERID_MFA_", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    from cryptography.fernet import Fernet

    env["HYPERID_CLIENT_SECRET"] = "a-client-secret"
    env["HYPERID_TOKEN_KEY"] = Fernet.generate_key().decode()

    def run(args: list[str], cwd: Path) -> str:
        result = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise CommandFailed(f"{' '.join(args)} failed in {cwd}:\n{output}")
        return output

    return run


def build_project(directory: Path, python: str, run: Runner) -> list[Example]:
    """Make the first-hour project in ``directory`` with the interpreter ``python``
    (which has the app installed); return the blocks it is made of."""
    run([python, "-m", "django", "startproject", "proj", str(directory)], ROOT)
    run([python, "manage.py", "startapp", "payments"], directory)
    settings = directory / "proj" / "settings.py"
    settings.write_text(settings.read_text() + '\nINSTALLED_APPS += ["payments"]\n')
    started = {"proj/settings.py", "proj/urls.py"}
    written: set[str] = set()
    used = [example for example in examples() if example.how == "project"]
    for example in used:
        path = directory / example.arg
        path.parent.mkdir(parents=True, exist_ok=True)
        code = example.code() if example.language == "python" else example.source
        header = f"\n# ---- {example.where}\n" if example.language == "python" else ""
        if example.arg in started or example.arg in written:
            path.write_text(path.read_text() + header + code)
        else:
            path.write_text(code)
        written.add(example.arg)
    return used
