"""``pip install "django-hyperid-mfa[metrics]"``: an approved transfer moves the metrics,
and a scraper holding ``METRICS_TOKEN`` reads them back from ``metrics_view``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings

from steps import checks_report
from wallet.models import Transfer

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
TRANSFER = {"amount": "250.00", "payee": "Bob"}


def scrape(client: Any) -> str:
    token = settings.HYPERID_MFA["METRICS_TOKEN"]
    answer = client.get("/metrics/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 200, answer.content
    return answer.content.decode()


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels}`` (0 where there is none yet)."""
    for line in exposition.splitlines():
        found = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if found and all(f'{key}="{value}"' in found.group(1) for key, value in labels.items()):
            return float(found.group(2))
    return 0.0


def test_an_approved_transfer_is_counted_and_read_back_by_the_scraper(client, alice, simulator):
    action = {"action": "wallet.transfer"}
    before = scrape(client)
    client.force_login(alice)

    waiting = client.post("/transfer/", TRANSFER, **JSON)
    simulator.approve(waiting.json()["mfa_request"]["transaction_id"])
    assert client.post("/transfer/", TRANSFER).status_code == 200
    after = scrape(client)

    assert Transfer.objects.count() == 1
    pushes = "hyperid_mfa_pushes_total"
    sent = {**action, "outcome": "sent"}
    assert sample(after, pushes, **sent) - sample(before, pushes, **sent) == 1
    consumed = "hyperid_mfa_approvals_consumed_total"
    assert sample(after, consumed, **action) - sample(before, consumed, **action) == 1
    calls = "hyperid_mfa_hyperid_calls_total"
    start = {"call": "start", "result": "success"}
    assert sample(after, calls, **start) - sample(before, calls, **start) == 1


def test_without_the_token_or_staff_the_metrics_are_refused(client):
    assert client.get("/metrics/").status_code == 401
    assert client.get("/metrics/", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_the_project_passes_djangos_checks():
    assert "System check identified no issues" in checks_report()
