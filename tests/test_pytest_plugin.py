"""The pytest plugin a project's tests get with the app (``hyperid_fake``, ``hyperid_user``).

Its fixtures at work, in a project built from the docs, are in tests/test_docs.py
(the first-hour project, whose tests would exhaust the push limit without the
plugin's reset). Here: how it is found, and that it costs nothing until used.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from tests.docs_examples import ROOT


def test_pytest_finds_the_plugin_by_its_entry_point_name():
    [plugin] = [entry for entry in entry_points(group="pytest11") if entry.name == "hyperid_mfa"]

    assert plugin.value == "hyperid_mfa.pytest_plugin"
    module = plugin.load()
    assert callable(module.hyperid_fake)
    assert callable(module.hyperid_user)


def test_loading_the_plugin_needs_no_django_settings_and_imports_none_of_the_app():
    # pytest imports the plugin in every project with the app installed, before
    # pytest-django configures Django, and in projects that never use it.
    probe = (
        "import sys, hyperid_mfa.pytest_plugin\n"
        "from django.conf import settings\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('hyperid_mfa.'))\n"
        "print(settings.configured, loaded)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}

    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False ['hyperid_mfa.pytest_plugin']"
