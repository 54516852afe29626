"""Import the installed wheel and migrate a scratch database: `python .ci/smoke_install.py`.

Run with the interpreter of a fresh virtualenv that holds only the wheel and its
dependencies, from a directory outside the repository, so that the installed copy
is the one imported: a module, template or migration that the wheel lacks fails
here. (Python puts this file's directory, .ci/, first on sys.path, not the
repository root.) Exits 1 with the reason.
"""

# mypy: disallow-untyped-defs

from __future__ import annotations

import importlib.resources
import sys

import django
from django.conf import settings
from django.core.management import call_command


def main() -> int:
    settings.configure(
        SECRET_KEY="ci-smoke",  # noqa: S106  a throwaway settings object
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "hyperid_mfa",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
    )
    django.setup()
    import hyperid_mfa  # after django.setup(): the app may touch its models

    if "site-packages" not in (hyperid_mfa.__file__ or ""):
        print(f"  imported hyperid_mfa from {hyperid_mfa.__file__}, not the wheel")
        return 1
    if not importlib.resources.files("hyperid_mfa").joinpath("py.typed").is_file():
        print("  the installed hyperid_mfa has no py.typed")
        return 1
    call_command("migrate", verbosity=0)
    print(
        f"  installed hyperid_mfa {hyperid_mfa.__version__}"
        f" (Django {django.get_version()}) and migrated"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
