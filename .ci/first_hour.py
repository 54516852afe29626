"""The README's first hour against the installed wheel: `python .ci/first_hour.py VENV_PYTHON`.

VENV_PYTHON is the interpreter of a fresh virtualenv holding only the wheel with its
`testing` extra, as a newcomer installs it. In a scratch directory, this builds the
project the README and docs/testing.md describe (tests/docs_examples.py, the same
builder tests/test_docs.py uses with the development environment), then runs
`manage.py check` and the project's own tests with that interpreter: the example
fails here if it needs anything the wheel and its extra do not bring. Exits 1 with
the reason.
"""

# mypy: disallow-untyped-defs

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import docs_examples  # noqa: E402 - after the path is set


def main(python: str) -> int:
    run = docs_examples.runner()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "first-hour"
        directory.mkdir()
        try:
            docs_examples.build_project(directory, python, run)
            imported = run(
                [python, "-c", "import hyperid_mfa; print(hyperid_mfa.__file__)"], directory
            )
            venv = Path(python).parent.parent.resolve()
            if not Path(imported.strip()).resolve().is_relative_to(venv):
                print(f"  the project imports hyperid_mfa from {imported.strip()}, not from {venv}")
                return 1
            run([python, "manage.py", "check", "--fail-level", "WARNING"], directory)
            output = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], directory)
        except docs_examples.CommandFailed as failure:
            print(f"  {failure}")
            return 1
    print(f"  the README's project on the wheel: {output.strip().splitlines()[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
