"""Without prometheus-client (the metrics extra not installed): nothing is collected,
nothing fails, and the view says what to install.

In this process the module is hidden (``sys.modules``) and ``hyperid_mfa.metrics``
imported anew; then the gate's flows, the dashboard and these tests run again in a
child process in which ``import prometheus_client`` fails from the start, as where
the package is not installed.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import RequestFactory

import hyperid_mfa

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def without_prometheus(monkeypatch):
    """``hyperid_mfa.metrics`` as imported where prometheus-client is missing."""
    for name in list(sys.modules):
        if name == "prometheus_client" or name.startswith("prometheus_client."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    monkeypatch.delitem(sys.modules, "hyperid_mfa.metrics", raising=False)
    if hasattr(hyperid_mfa, "metrics"):
        monkeypatch.setattr(hyperid_mfa, "metrics", hyperid_mfa.metrics)
    return importlib.import_module("hyperid_mfa.metrics")


def test_nothing_is_collected_and_no_receiver_fails(without_prometheus):
    metrics = without_prometheus
    request = SimpleNamespace(action="payments.withdraw", created_at=None, completed_at=None)

    assert metrics.enabled() is False
    metrics.connect()
    metrics.count_sent(None, mfa_request=request)
    metrics.count_not_sent(None, action="payments.withdraw", outcome="limited")
    metrics.count_decision(None, mfa_request=request, new_state="approved")
    metrics.count_consumed(None, mfa_request=request)
    metrics.count_call(None, call="start", result="timeout", seconds=0.1)


@pytest.mark.django_db
def test_the_view_says_what_to_install(without_prometheus, django_user_model):
    staff = django_user_model.objects.create_user("ops", "o@example.com", "pw", is_staff=True)
    request = RequestFactory().get("/metrics/")
    request.user = staff

    response = without_prometheus.metrics_view(request)

    assert response.status_code == 501
    assert b"pip install 'django-hyperid-mfa[metrics]'" in response.content
    request.user = SimpleNamespace(is_active=False, is_staff=False, is_authenticated=False)
    assert without_prometheus.metrics_view(request).status_code == 401


@pytest.mark.slow
def test_the_app_and_its_tests_run_where_prometheus_client_is_not_installed(tmp_path):
    """The gate's flows (pushes sent, refused, failed), the dashboard and the admin,
    in a process where prometheus-client cannot be imported at all."""
    blocked = (
        "import sys; sys.modules['prometheus_client'] = None; import pytest; "
        "raise SystemExit(pytest.main(sys.argv[1:]))"
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    # A test database of its own: this run's would be dropped under it on PostgreSQL.
    name = os.environ.get("HYPERID_MFA_TEST_DB_NAME", "test_hyperid_mfa")
    env["HYPERID_MFA_TEST_DB_NAME"] = f"{name}_without_metrics"
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            blocked,
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow and not browser",
            "tests/test_metrics.py",
            "tests/test_metrics_absent.py",
            "tests/test_dashboard.py",
            "tests/test_push_limit.py",
            "tests/test_gate.py",
            "tests/test_admin.py",
            "tests/test_client.py",
            "-k",
            "not redis",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in summary
    assert "1 skipped" in summary or "skipped" in summary  # test_metrics.py: nothing to read
    assert "failed" not in summary
    assert "error" not in summary
