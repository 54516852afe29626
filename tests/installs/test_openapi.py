"""``pip install "django-hyperid-mfa[openapi]"``: the project's schema and the app's
own (docs/api.md) document the app's endpoints, and drf-spectacular validates them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from drf_spectacular.validation import validate_schema

from steps import checks_report

pytestmark = pytest.mark.django_db

OPERATIONS = {
    "hyperid_mfa_request_list",
    "hyperid_mfa_request_retrieve",
    "hyperid_mfa_request_cancel",
    "hyperid_mfa_status_get",
}


def operation_ids(schema: dict[str, Any]) -> set[str]:
    return {
        operation["operationId"]
        for path in schema["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


@pytest.mark.parametrize("url", ["/mfa/schema/?format=json", "/api/schema/?format=json"])
def test_the_schema_view_answers_a_valid_schema_with_the_apps_endpoints(client, url):
    answer = client.get(url)

    assert answer.status_code == 200, answer.content
    schema = answer.json()
    validate_schema(schema)  # raises on an answer that is not valid OpenAPI 3
    assert operation_ids(schema) >= OPERATIONS
    assert "/mfa/requests/{id}/" in schema["paths"]


def test_the_project_schema_generates_without_a_warning(tmp_path):
    output = io.StringIO()

    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yaml"),
        stdout=output,
        stderr=output,
    )

    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def test_the_project_passes_djangos_checks():
    assert "System check identified no issues" in checks_report()
