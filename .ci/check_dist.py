"""Check a built sdist and wheel: `.ci/check_dist.py DIST_DIR`.

Every tracked file of the app (and of tests/, README.md and CHANGELOG.md, for the
sdist) is inside, no test leaked into the wheel, and the metadata carries the
package's name and the version in hyperid_mfa/__init__.py. Exits 1 listing what is
wrong. Runs with any Python 3.10+ and the standard library only; `git` must be on
PATH.
"""

# mypy: disallow-untyped-defs

from __future__ import annotations

import ast
import email.parser
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
DIST_NAME = "django-hyperid-mfa"
# What the sdist must hold; of these, the wheel must hold what is under hyperid_mfa/.
TRACKED_PATHS = ["hyperid_mfa", "tests", "README.md", "CHANGELOG.md"]
# Printed as counts, so that a log shows at a glance that the data files came along.
DATA_KINDS = ["py.typed", "migrations/", "templates/", "static/", "locale/"]

T = TypeVar("T")


def tracked_files() -> list[str]:
    # A fixed command on fixed paths: nothing here comes from outside.
    listing = subprocess.run(  # noqa: S603
        ["git", "ls-files", "-z", "--", *TRACKED_PATHS],  # noqa: S607
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [name for name in listing.split("\0") if name]


def source_version() -> str:
    """``__version__`` in hyperid_mfa/__init__.py, read without importing the app."""
    tree = ast.parse((ROOT / "hyperid_mfa" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise SystemExit("no __version__ = '...' in hyperid_mfa/__init__.py")


def only(items: list[T], what: str) -> T:
    if len(items) != 1:
        raise SystemExit(f"expected one {what}, found {len(items)}: {items}")
    return items[0]


def check(dist: Path) -> list[str]:
    """Print what the distributions hold; return the problems found."""
    wheel = only(sorted(dist.glob("*.whl")), "wheel")
    sdist = only(sorted(dist.glob("*.tar.gz")), "sdist")
    tracked = tracked_files()
    app = [name for name in tracked if name.startswith("hyperid_mfa/")]

    with zipfile.ZipFile(wheel) as zf:
        in_wheel = set(zf.namelist())
        metadata_name = only(
            [name for name in in_wheel if name.endswith(".dist-info/METADATA")], "METADATA"
        )
        metadata = email.parser.Parser().parsestr(zf.read(metadata_name).decode())
    with tarfile.open(sdist) as tf:
        # Names inside the sdist start with "django_hyperid_mfa-X.Y/".
        in_sdist = {name.split("/", 1)[1] for name in tf.getnames() if "/" in name}

    problems = []
    version = source_version()
    if metadata["Version"] != version:
        problems.append(f"wheel version {metadata['Version']} != hyperid_mfa.__version__ {version}")
    if metadata["Name"] != DIST_NAME:
        problems.append(f"distribution name is {metadata['Name']}, not {DIST_NAME}")
    problems += [f"missing from the wheel: {name}" for name in app if name not in in_wheel]
    problems += [f"missing from the sdist: {name}" for name in tracked if name not in in_sdist]
    problems += [
        f"tests leaked into the wheel: {name}"
        for name in sorted(in_wheel)
        if name.startswith("tests/")
    ]

    for kind in DATA_KINDS:
        count = sum(1 for name in in_wheel if name.startswith("hyperid_mfa/" + kind))
        print(f"  wheel: {count:3d} file(s) under hyperid_mfa/{kind}")
    print(f"  {wheel.name}: {len(in_wheel)} files; {sdist.name}: {len(in_sdist)} files")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: {Path(__file__).name} DIST_DIR", file=sys.stderr)
        return 2
    problems = check(Path(argv[0]))
    for problem in problems:
        print(f"  {problem}")
    if not problems:
        print("  every tracked file of the app is packaged")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
