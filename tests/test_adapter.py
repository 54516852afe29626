"""What a project may swap through its adapter, and the package's public facade."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import requests
from django.core.checks import run_checks

from hyperid_mfa.adapter import MFAAdapter, get_adapter
from hyperid_mfa.client.calls import HyperIDClient
from hyperid_mfa.exceptions import HyperIDConfigurationError

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
SESSIONS: list[requests.Session] = []


class CompanyAdapter(MFAAdapter):
    """Proxies and a private CA for HyperID, and the company's wording."""

    def get_requests_session(self) -> requests.Session:
        session = super().get_requests_session()
        session.headers["X-Company"] = "yes"
        session.verify = "/etc/ssl/certs/ca-certificates.crt"
        SESSIONS.append(session)
        return session

    def format_question(self, request, action, values):
        return f"Company asks: {action} {values}?"


@pytest.fixture
def company_adapter(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "ADAPTER": "tests.test_adapter.CompanyAdapter"}
    SESSIONS.clear()


def test_the_default_adapter_is_the_base_class():
    assert type(get_adapter()) is MFAAdapter


def test_the_client_sends_through_the_adapters_session(company_adapter, fake_hyperid, user):
    from tests.conftest import link

    token = fake_hyperid.issue_tokens(link(fake_hyperid, user)).access_token
    client = HyperIDClient()
    assert client.check_availability(token)
    [session] = SESSIONS
    assert client.session is session
    assert session.headers["X-Company"] == "yes"
    # The client's transport still carries its own retries and deadline.
    assert type(session.get_adapter("https://api.hyperid.test/")).__name__ == "DeadlineAdapter"


def test_a_gate_without_a_question_asks_the_adapter(company_adapter, fake_hyperid, browser):
    browser.post("/gate/default/", {"amount": "1"}, **JSON)
    [push] = fake_hyperid.pending()
    assert push.question == "Company asks: payments.withdraw {'amount': '1'}?"


def test_an_adapter_that_cannot_be_imported_is_a_check_error_and_a_clear_failure(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "ADAPTER": "nowhere.Adapter"}
    [error] = [m for m in run_checks() if m.id == "hyperid_mfa.E011"]
    assert "nowhere.Adapter" in error.msg
    with pytest.raises(HyperIDConfigurationError, match="ADAPTER"):
        get_adapter()


def test_the_audit_lines_have_a_logger_of_their_own(fake_hyperid, hyperid_user, caplog):
    from hyperid_mfa import services

    with caplog.at_level(logging.INFO, logger="hyperid_mfa"):
        services.start_request(hyperid_user, "payments.withdraw")
    audit = [r for r in caplog.records if hasattr(r, "mfa_event")]
    assert audit
    assert {r.name for r in audit} == {"hyperid_mfa.audit"}


def test_the_facade_imports_without_django_and_loads_on_first_use():
    code = (
        "import sys, hyperid_mfa\n"
        "assert 'django' not in sys.modules, 'the facade imported Django'\n"
        "assert 'require_mfa_approval' in dir(hyperid_mfa)\n"
        "print(hyperid_mfa.__version__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_facade_names_the_public_api():
    import hyperid_mfa
    from hyperid_mfa.decorators import require_mfa_approval
    from hyperid_mfa.permissions import MFAApproved

    assert hyperid_mfa.require_mfa_approval is require_mfa_approval
    assert hyperid_mfa.MFAApproved is MFAApproved
    assert set(hyperid_mfa.__all__) >= {"require_mfa_approval", "MFAAdapter", "store_tokens"}
    with pytest.raises(AttributeError):
        hyperid_mfa.no_such_name  # noqa: B018
