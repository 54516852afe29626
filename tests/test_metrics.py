"""Prometheus metrics: the flows a team watches, read back from the exposition.

Approved, denied, expired and canceled requests, pushes refused by the limit and the
cooldown, a start and a status-get that fail at HyperID: each moves exactly the
counters and histograms docs/operations.md lists, as ``metrics_view`` shows them.
The registry is prometheus-client's default one, shared by the whole test run, so
every test compares the exposition before and after what it does.
"""

from __future__ import annotations

import pytest

# Without the metrics extra these tests have nothing to read (test_metrics_absent.py
# covers that case).
pytest.importorskip("prometheus_client")

from django.test import Client
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hyperid_mfa import metrics, services
from hyperid_mfa.exceptions import HyperIDError
from hyperid_mfa.models import MFARequest
from tests import gate_views
from tests.conftest import link
from tests.test_gate import submit

pytestmark = pytest.mark.django_db

ACTION = gate_views.ACTION
TOKEN = "metrics-token-" + "x" * 32
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def staff(django_user_model) -> Client:
    client = Client()
    client.force_login(
        django_user_model.objects.create_user("ops", "ops@example.com", "pw", is_staff=True)
    )
    return client


def scrape(client: Client) -> Samples:
    response = client.get("/metrics/")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


class Delta:
    """What one sample moved between two scrapes."""

    def __init__(self, before: Samples, after: Samples) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The moves of every sample of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        keys = {
            key for key in {*self.before, *self.after} if key[0] == name and wanted <= set(key[1])
        }
        return sum(self.after.get(key, 0.0) - self.before.get(key, 0.0) for key in keys)


def fake_calls(fake, name: str) -> int:
    return sum(1 for call in fake.calls if call.name == name)


@pytest.fixture(autouse=True)
def _forget_runs():
    gate_views.RUNS.clear()


def test_each_flow_moves_its_metrics_and_nothing_else(
    fake_hyperid, hyperid_user, browser, staff, settings, django_user_model
):
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "START_RATE_LIMIT": "4/10m",
        "MIN_REFRESH_INTERVAL": 0,
        "MAX_RETRIES": 1,
    }
    before = scrape(staff)
    start_calls, status_calls = (
        fake_calls(fake_hyperid, "start"),
        fake_calls(fake_hyperid, "status-get"),
    )

    # Approved: a push, the phone's approval, the view runs on it once.
    assert submit(browser, "function", amount="1").status_code == 403
    [approved] = fake_hyperid.pending()
    fake_hyperid.approve(approved.transaction_id)
    assert submit(browser, "function", amount="1").status_code == 200

    # Expired at HyperID, learnt by a refresh.
    assert submit(browser, "function", amount="2").status_code == 403
    [expiring] = fake_hyperid.pending()
    fake_hyperid.expire(expiring.transaction_id)
    services.refresh_request(MFARequest.objects.get(transaction_id=expiring.transaction_id))

    # Denied on the phone; the next push within DENIAL_COOLDOWN is refused.
    assert submit(browser, "function", amount="3").status_code == 403
    [denied] = fake_hyperid.pending()
    fake_hyperid.deny(denied.transaction_id)
    services.refresh_request(MFARequest.objects.get(transaction_id=denied.transaction_id))
    assert submit(browser, "function", amount="4").status_code == 429

    # Without the cooldown, the fourth push goes out (and is canceled), the fifth is
    # refused by START_RATE_LIMIT (4 per 10 minutes).
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "DENIAL_COOLDOWN": 0}
    assert submit(browser, "function", amount="4").status_code == 403
    services.cancel_request(
        MFARequest.objects.get(transaction_id=fake_hyperid.pending()[0].transaction_id)
    )
    assert submit(browser, "function", amount="5").status_code == 429

    # HyperID failing: another user's start answered 503, then a status-get that times
    # out twice (MAX_RETRIES 1).
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    link(fake_hyperid, bob)
    fake_hyperid.inject("http_503", call="start")
    with pytest.raises(HyperIDError):
        services.start_request(bob, ACTION)
    pending = services.start_request(bob, ACTION)
    fake_hyperid.inject("timeout", call="status-get", times=2)
    with pytest.raises(HyperIDError):
        services.refresh_request(pending, force=True)

    delta = Delta(before, scrape(staff))
    assert delta("hyperid_mfa_pushes_total", action=ACTION, outcome="sent") == 5
    assert delta("hyperid_mfa_pushes_total", action=ACTION, outcome="limited") == 1
    assert delta("hyperid_mfa_pushes_total", action=ACTION, outcome="cooldown") == 1
    assert delta("hyperid_mfa_pushes_total", action=ACTION, outcome="failed") == 1
    for result in ("approved", "denied", "expired", "canceled"):
        assert delta("hyperid_mfa_decisions_total", action=ACTION, result=result) == 1, result
        assert (
            delta("hyperid_mfa_time_to_decision_seconds_count", action=ACTION, result=result) == 1
        )
        assert delta("hyperid_mfa_time_to_decision_seconds_sum", action=ACTION, result=result) >= 0
    assert delta("hyperid_mfa_approvals_consumed_total", action=ACTION) == 1

    # Every exchange HyperID received is counted once, by its call and result.
    assert delta("hyperid_mfa_hyperid_calls_total", call="start", result="success") == 5
    assert delta("hyperid_mfa_hyperid_calls_total", call="start", result="http_5xx") == 1
    assert delta("hyperid_mfa_hyperid_calls_total", call="status-get", result="timeout") == 2
    assert delta.total("hyperid_mfa_hyperid_calls_total", call="start") == (
        fake_calls(fake_hyperid, "start") - start_calls
    )
    assert delta.total("hyperid_mfa_hyperid_calls_total", call="status-get") == (
        fake_calls(fake_hyperid, "status-get") - status_calls
    )
    assert delta("hyperid_mfa_hyperid_call_seconds_count", call="start") == 6
    assert delta("hyperid_mfa_hyperid_call_seconds_count", call="status-get") == (
        fake_calls(fake_hyperid, "status-get") - status_calls
    )


# --- who may read them ----------------------------------------------------------------------


@pytest.fixture
def with_token(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "METRICS_TOKEN": TOKEN}


def test_a_scraper_with_the_token_reads_them(with_token):
    response = Client().get("/metrics/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert b"# TYPE hyperid_mfa_pushes_total counter" in response.content
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"bearer  {TOKEN}-", "Bearer x"],
)
def test_a_wrong_token_is_refused_even_for_staff(with_token, staff, authorization, caplog):
    caplog.set_level("DEBUG")

    response = staff.get("/metrics/", HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"hyperid_mfa" not in response.content
    assert TOKEN[:20] not in caplog.text


def test_the_token_scheme_is_read_in_any_case(with_token):
    response = Client().get("/metrics/", HTTP_AUTHORIZATION=f"BEARER {TOKEN}")

    assert response.status_code == 200


def test_without_a_token_setting_no_token_opens_them(settings):
    assert settings.HYPERID_MFA.get("METRICS_TOKEN") is None
    assert Client().get("/metrics/", HTTP_AUTHORIZATION="Bearer None").status_code == 401


def test_anonymous_users_are_asked_to_authenticate_and_users_are_refused(django_user_model):
    anonymous = Client().get("/metrics/")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="metrics"'

    member = Client()
    member.force_login(django_user_model.objects.create_user("m", "m@example.com", "pw"))
    assert member.get("/metrics/").status_code == 403
    inactive_staff = django_user_model.objects.create_user(
        "s", "s@example.com", "pw", is_staff=True, is_active=False
    )
    member.force_login(inactive_staff)
    assert member.get("/metrics/").status_code in (401, 403)


def test_only_get_and_head(staff):
    assert staff.head("/metrics/").status_code == 200
    assert staff.post("/metrics/").status_code == 405


def test_openmetrics_when_the_scraper_asks(staff):
    response = staff.get("/metrics/", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_the_metrics_are_in_prometheus_clients_default_registry():
    """What django-prometheus's view, or any exposition of REGISTRY, shows."""
    exposed = generate_latest(REGISTRY).decode()

    for name in (
        "hyperid_mfa_pushes_total",
        "hyperid_mfa_decisions_total",
        "hyperid_mfa_approvals_consumed_total",
        "hyperid_mfa_hyperid_calls_total",
        "hyperid_mfa_hyperid_call_seconds",
        "hyperid_mfa_time_to_decision_seconds",
    ):
        assert f"# TYPE {name} " in exposed, name


@pytest.mark.parametrize("token", ["short", "x" * 31, "with space " + "x" * 32, "é" * 40, 42])
def test_a_weak_or_unusable_token_setting_is_refused_without_showing_it(settings, token):
    from hyperid_mfa.checks.settings import value_errors

    [error] = value_errors({"METRICS_TOKEN": token})

    assert error.id == "hyperid_mfa.E002"
    assert "METRICS_TOKEN" in error.msg
    assert str(token) not in error.msg + (error.hint or "")


# --- bounded labels -------------------------------------------------------------------------


def test_action_names_past_the_limit_are_counted_as_other(monkeypatch, caplog):
    monkeypatch.setattr(metrics, "MAX_ACTIONS", 3)
    monkeypatch.setattr(metrics, "_actions", set())
    monkeypatch.setattr(metrics, "_overflow_reported", False)

    labels = [metrics.action_label(f"action-{n}") for n in range(6)]

    assert labels == ["action-0", "action-1", "action-2", "_other", "_other", "_other"]
    assert metrics.action_label("action-1") == "action-1"
    assert caplog.text.count("gated action names") == 1


# --- several processes ----------------------------------------------------------------------

_WORKER = """
import django
django.setup()
from types import SimpleNamespace
from hyperid_mfa import metrics
metrics.count_sent(None, mfa_request=SimpleNamespace(action="payments.withdraw"))
metrics.count_call(None, call="start", result="timeout", seconds=0.2)
"""

_SCRAPE = """
import django
django.setup()
from types import SimpleNamespace
from django.test import RequestFactory
from hyperid_mfa.metrics import metrics_view
request = RequestFactory().get("/metrics/")
request.user = SimpleNamespace(is_active=True, is_staff=True, is_authenticated=True)
print(metrics_view(request).content.decode())
"""


@pytest.mark.slow
def test_in_multi_process_mode_the_view_adds_up_every_process(tmp_path):
    """gunicorn's workers, as docs/operations.md configures them: each process
    writes its values into PROMETHEUS_MULTIPROC_DIR, the view sums them."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }

    def python(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    for _worker in range(3):
        python(_WORKER)
    samples = parse(python(_SCRAPE))

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("hyperid_mfa_pushes_total", action=ACTION, outcome="sent") == 3
    assert value("hyperid_mfa_hyperid_calls_total", call="start", result="timeout") == 3
    assert value("hyperid_mfa_hyperid_call_seconds_count", call="start") == 3
