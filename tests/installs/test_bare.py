"""``pip install django-hyperid-mfa``, no extra: the decorator, the DRF permission and
the admin gate actions against the simulator, and every public module either imports
or names the extra it needs; a missing extra stops the project at start-up."""

from __future__ import annotations

import importlib
import io
import pkgutil
import subprocess
import sys
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

import hyperid_mfa
from hyperid_mfa.exceptions import MissingExtra

from steps import checks_report
from wallet.models import Transfer

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
TRANSFER = {"amount": "250.00", "payee": "Bob"}
#: The modules that need an extra, and the extra their error names.
NEED_AN_EXTRA = {"hyperid_mfa.contrib.mozilla_oidc": "oidc", "hyperid_mfa.tasks": "celery"}


def test_every_module_imports_or_names_the_extra_it_needs():
    modules = [info.name for info in pkgutil.walk_packages(hyperid_mfa.__path__, "hyperid_mfa.")]
    needing = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except MissingExtra as missing:
            needing[name] = (missing.extra, isinstance(missing, ImproperlyConfigured))

    assert needing == {name: (extra, True) for name, extra in NEED_AN_EXTRA.items()}
    assert len(modules) > 60  # the walk found the package's modules at all


def test_the_project_passes_djangos_checks():
    assert "System check identified no issues" in checks_report()


def approve(simulator: Any, answer: Any) -> None:
    """The user approves the push ``answer`` (the gate's JSON) sent, on the phone."""
    assert answer.status_code == 403, answer.content
    assert answer.json()["code"] == "mfa_pending"
    simulator.approve(answer.json()["mfa_request"]["transaction_id"])


def test_the_decorator_runs_an_approved_transfer_once(client, alice, simulator):
    client.force_login(alice)
    assert client.get("/transfer/").status_code == 200  # the form: no approval needed

    approve(simulator, client.post("/transfer/", TRANSFER, **JSON))
    done = client.post("/transfer/", TRANSFER)
    again = client.post("/transfer/", TRANSFER, **JSON)

    assert done.status_code == 200
    assert b"Transferred 250.00 EUR to Bob." in done.content
    assert again.json()["code"] == "mfa_pending"  # a second run needs a second approval
    assert Transfer.objects.count() == 1


def test_the_drf_permission_runs_an_approved_transfer_once(client, alice, simulator):
    client.force_login(alice)

    approve(simulator, client.post("/api/transfers/", TRANSFER))
    made = client.post("/api/transfers/", TRANSFER)
    again = client.post("/api/transfers/", TRANSFER)

    assert made.status_code == 201, made.content
    assert made.json()["channel"] == "api"
    assert again.status_code == 403
    assert Transfer.objects.count() == 1


def test_the_admin_saves_a_protected_change_once_it_is_approved(client, alice, simulator):
    transfer = Transfer.objects.create(user=alice, amount="10.00", payee="Bob")
    client.force_login(alice)
    url = f"/admin/wallet/transfer/{transfer.pk}/change/"
    form = {"user": alice.pk, "amount": "10.00", "payee": "Mallory", "channel": "web"}

    waiting = client.post(url, form)
    transfer.refresh_from_db()
    assert waiting.status_code == 403
    assert b"hyperid-mfa-code" in waiting.content  # the approval page, in the admin
    assert transfer.payee == "Bob"  # nothing saved yet

    [push] = simulator.pending("alice")
    assert "Mallory" in push.question
    simulator.approve(push.transaction_id)
    saved = client.post(url, form)
    transfer.refresh_from_db()
    assert saved.status_code == 302
    assert transfer.payee == "Mallory"


# --- a missing extra: an error naming it, at start-up where it can be -----------------------


def test_the_oidc_backend_without_its_extra_stops_the_project_at_start_up(settings):
    settings.AUTHENTICATION_BACKENDS = ["hyperid_mfa.contrib.mozilla_oidc.HyperIDOIDCBackend"]

    with pytest.raises(SystemCheckError) as raised:
        call_command("check")

    assert "hyperid_mfa.E027" in str(raised.value)
    assert 'pip install "django-hyperid-mfa[oidc]"' in str(raised.value)


def test_the_allauth_integration_without_allauth_stops_django_from_starting():
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; from django.conf import settings; settings.configure("
            "INSTALLED_APPS=['django.contrib.auth', 'django.contrib.contenttypes',"
            " 'hyperid_mfa', 'hyperid_mfa.contrib.allauth']); django.setup()",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert started.returncode == 1
    last_line = started.stderr.strip().splitlines()[-1]
    assert last_line == (
        "hyperid_mfa.exceptions.MissingExtra: hyperid_mfa.contrib.allauth needs the [allauth] "
        'extra (allauth is not installed): pip install "django-hyperid-mfa[allauth]"'
    )


def test_refresh_after_start_without_celery_is_a_warning(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REFRESH_AFTER_START": 5}
    output = io.StringIO()

    call_command("check", stdout=output, stderr=output)

    assert "hyperid_mfa.W012" in output.getvalue()
    assert "pip install 'django-hyperid-mfa[celery]'" in output.getvalue()


def test_the_schema_view_without_drf_spectacular_names_the_openapi_extra():
    from hyperid_mfa.api.schema import schema_view

    with pytest.raises(MissingExtra, match=r'pip install "django-hyperid-mfa\[openapi\]"'):
        schema_view()


def test_mocking_the_simulator_without_responses_names_the_testing_extra():
    from hyperid_mfa.testing import FakeHyperID

    with (
        pytest.raises(MissingExtra, match=r'pip install "django-hyperid-mfa\[testing\]"'),
        FakeHyperID().mock(),
    ):
        pass
