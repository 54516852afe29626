"""Print the install stamp of a virtualenv made by scripts/_common.sh.

    python scripts/_install_stamp.py ROOT DJANGO_SPEC [PIP_ARG...]

A digest of what decides an install: pyproject.toml and setup.cfg, the Django
requirement, the interpreter's version and, when given, the pip arguments and the
requirement files they name (``-r FILE``, relative to ROOT). The venv is reinstalled
when it changes. Run by the base interpreter: no sha256sum on macOS, no shasum on
some Linux.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys


def stamp(root: str, spec: str, pip_args: list[str]) -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "setup.cfg"):
        path = os.path.join(root, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                digest.update(f.read())
    digest.update(b"\0" + spec.encode() + b"\0" + sys.version.encode())
    # Nothing more without pip arguments: the stamps of ./scripts/test's venvs stay
    # what they were before the demo got a venv of its own.
    for previous, arg in itertools.pairwise(["", *pip_args]):
        digest.update(b"\0" + arg.encode())
        if previous == "-r":
            with open(os.path.join(root, arg), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(f"usage: {sys.argv[0]} ROOT DJANGO_SPEC [PIP_ARG...]", file=sys.stderr)
        return 2
    print(stamp(argv[0], argv[1], argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
