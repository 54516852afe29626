"""Every documented install path, from the built wheel: `python .ci/installs.py [PATH...]`.

Builds the sdist and the wheel once (in a virtualenv of its own holding `build` and
`twine`), checks what they hold (.ci/check_dist.py) and their metadata
(`twine check --strict`), then for each path makes a fresh virtualenv holding only
`pip install "<wheel>[extra]"` and the test runner, and runs that path's tests from
tests/installs/ (see its conftest.py) with the repository off `sys.path`:

    bare     no extra: the decorator, the DRF permission, the admin; every module
             imports or names its extra; a missing extra stops the project at start-up
    allauth  sign in through django-allauth against the simulator in Chromium, approve
    oidc     the same through mozilla-django-oidc
    celery   a real worker on Redis refreshes pending requests
    openapi  the schema views answer and validate
    testing  the README's project and its tests with the plugin (.ci/first_hour.py)

A package that an extra's documented use needs and the extra lacks fails its path.
Prints each path's time and verdict; exits 1 if any path (or the dist checks) failed.

Options: `--python PY` makes the virtualenvs with PY (default: this interpreter);
`--keep DIR` builds in DIR and keeps it (default: a temporary directory, removed).
Needs pip's index (or its cache); Redis for `celery` (HYPERID_MFA_TEST_CELERY_BROKER,
default redis://127.0.0.1:6379/14); Debian's /usr/bin/chromium for `allauth`/`oidc`.
"""

# mypy: disallow-untyped-defs

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests" / "installs"
RUNNER = ["pytest", "pytest-django"]
BROWSER = ["playwright"]  # drives Debian's Chromium; never `playwright install`
#: One path's tests may take this long (a browser sign-in takes seconds).
PATH_TIMEOUT = 600


@dataclass(frozen=True)
class InstallPath:
    name: str
    extra: str | None
    runner: tuple[str, ...]


PATHS = {
    path.name: path
    for path in [
        InstallPath("bare", None, (*RUNNER,)),
        InstallPath("allauth", "allauth", (*RUNNER, *BROWSER)),
        InstallPath("oidc", "oidc", (*RUNNER, *BROWSER)),
        InstallPath("celery", "celery", (*RUNNER,)),
        InstallPath("openapi", "openapi", (*RUNNER,)),
        # pytest-django comes with the extra itself: nothing else is added.
        InstallPath("testing", "testing", ()),
    ]
}


class Failed(Exception):
    """A command failed; the message holds its output."""


def run(args: Sequence[str | Path], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - our own commands
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PATH_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise Failed(f"$ {' '.join(map(str, args))}\n{output}")
    return output


def pip_install(pip: Path, python: Path, *requirements: str) -> None:
    """Install into ``python``'s environment with the pip of the interpreter ``pip``."""
    # -qq: errors only (this machine's pip configuration warns about every local index).
    # No bytecode compiled ahead: a third of the time, for files most tests never load.
    quiet = ["-qq", "--progress-bar", "off", "--no-compile"]
    run([pip, "-m", "pip", "--python", python, "install", *quiet, *requirements])


def venv(base: str, directory: Path, *, with_pip: bool = False) -> Path:
    """A new virtualenv; without pip of its own unless asked (the tools' pip installs)."""
    run([base, "-m", "venv", *([] if with_pip else ["--without-pip"]), directory])
    return directory / "bin" / "python"


def build(base: str, work: Path) -> tuple[Path, Path]:
    """Build the sdist and the wheel, check both; the tools' interpreter and the wheel."""
    tools = venv(base, work / "tools", with_pip=True)
    pip_install(tools, tools, "build", "twine")
    dist = work / "dist"
    run([tools, "-m", "build", "--outdir", dist, ROOT])
    print(run([tools, ROOT / ".ci" / "check_dist.py", dist]).rstrip())
    print(run([tools, "-m", "twine", "--no-color", "check", "--strict", *dist.iterdir()]).rstrip())
    [wheel] = dist.glob("*.whl")
    return tools, wheel


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without what would put other code on sys.path."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE", "PYTHONHOME"}
    }
    env.update(PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def test_path(path: InstallPath, base: str, tools: Path, wheel: Path, work: Path) -> str:
    """Install ``path`` alone and run its tests; their closing line."""
    python = venv(base, work / f"venv-{path.name}")
    requirement = f"{wheel}[{path.extra}]" if path.extra else str(wheel)
    pip_install(tools, python, requirement, *path.runner)
    if path.name == "testing":
        # first_hour.py reads the README with this interpreter; the project it builds
        # runs in a scratch directory, so it imports the app from the wheel.
        output = run([python, ROOT / ".ci" / "first_hour.py", python], env=clean_environment())
    else:
        output = run(
            [python, "-m", "pytest", f"test_{path.name}.py", "-q", "--tb=short"],
            cwd=TESTS,
            env=clean_environment(DJANGO_SETTINGS_MODULE=f"settings_{path.name}"),
        )
    return output.strip().splitlines()[-1]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("paths", nargs="*", metavar="PATH", help=", ".join(PATHS))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--keep", type=Path, metavar="DIR")
    options = parser.parse_args(argv)
    unknown = sorted(set(options.paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}; paths: {', '.join(PATHS)}")
    chosen = [PATHS[name] for name in options.paths or PATHS]
    work = options.keep or Path(tempfile.mkdtemp(prefix="hyperid-mfa-installs-"))
    work.mkdir(parents=True, exist_ok=True)
    begun = time.monotonic()
    results: list[tuple[str, float, str]] = []
    failed = False
    try:
        started = time.monotonic()
        try:
            tools, wheel = build(options.python, work)
        except Failed as failure:
            print(f"the distributions failed their checks:\n{failure}")
            return 1
        results.append(("build", time.monotonic() - started, f"{wheel.name}, twine check passed"))
        for path in chosen:
            started = time.monotonic()
            print(f"--- {path.name}: the wheel {f'with [{path.extra}]' if path.extra else 'alone'}")
            try:
                verdict = test_path(path, options.python, tools, wheel, work)
            except (Failed, subprocess.TimeoutExpired) as failure:
                failed = True
                verdict = "FAILED"
                print(failure)
            results.append((path.name, time.monotonic() - started, verdict))
            print(f"    {verdict} ({time.monotonic() - started:.0f} s)")
    finally:
        started = time.monotonic()
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
            results.append(("clean-up", time.monotonic() - started, f"{work} removed"))
    print("\ninstall paths:")
    for name, seconds, verdict in results:
        print(f"  {name:<8} {seconds:5.0f} s  {verdict}")
    print(f"  {'total':<8} {time.monotonic() - begun:5.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
