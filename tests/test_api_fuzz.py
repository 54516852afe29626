"""schemathesis against the API's own OpenAPI schema, with a signed-in session.

Every operation of the schema served at /schema/ (tests/urls.py) gets schema-valid
and schema-invalid requests (bodies, path and query parameters) generated from the
schema; each answer must be no server error and must match the schema: a documented
status code, content type, headers and body. Requests reach the WSGI application
in-process and HyperID is the FakeHyperID, so a pending request is really refreshed.

Derandomized: CI sees the same cases every run, so a failure reproduces.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.test import Client

from hyperid_mfa import services
from hyperid_mfa.api.schema import HAVE_SPECTACULAR
from hyperid_mfa.api.throttling import DEFAULT_RATES
from tests.conftest import import_or_skip
from tests.factories import make_request

schemathesis = import_or_skip("schemathesis")
hypothesis = import_or_skip("hypothesis")

from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_SPECTACULAR, reason="needs drf-spectacular (the openapi extra)"),
]

#: No 5xx, and nothing the schema does not describe.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Cases per operation and generation mode: enough to reach every branch of the
#: input handling, few enough that the whole run takes seconds.
EXAMPLES = 60
#: Cases for a strategy pinned to one existing id or transaction (little left to vary).
PINNED_EXAMPLES = 10


@pytest.fixture
def wsgi_app(settings) -> Iterator[Any]:
    # The throttles are tested in test_api.py; here they would only turn cases into 429s.
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": dict.fromkeys(DEFAULT_RATES)}
    # As Django's test client does: the test's transaction must survive each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def session(hyperid_user) -> dict[str, Any]:
    """The cookies and CSRF header of a signed-in browser session, as call() takes them."""
    client = Client()
    client.force_login(hyperid_user)
    token_request = HttpRequest()
    csrf_token = get_token(token_request)
    return {
        # The WSGI transport sets cookies on its own client; a Cookie header would be lost.
        "cookies": {
            "sessionid": client.cookies["sessionid"].value,
            "csrftoken": token_request.META["CSRF_COOKIE"],
        },
        "headers": {"X-CSRFToken": csrf_token},
    }


def _runner(
    strategy: Any, examples: int, name: str, session: dict[str, Any], answers: Counter
) -> Any:
    """A Hypothesis test that sends ``examples`` cases of ``strategy`` and checks them."""
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case: Any) -> None:
        response = case.call_and_validate(checks=CHECKS, **session)
        answers[name, response.status_code] += 1

    return exercise


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    wsgi_app, session, fake_hyperid, hyperid_user, other_user
):
    # Rows in every state, so that valid ids and transaction ids hit real requests.
    pending = services.start_request(hyperid_user, "payments.withdraw", question="Pay 5 EUR?")
    others = [make_request(hyperid_user, state) for state in ("approved", "denied", "consumed")]
    foreign = make_request(other_user)
    pinned_ids = [str(row.pk) for row in (pending, *others, foreign)]
    pinned_transactions = [row.transaction_id for row in (pending, *others, foreign)]

    schema = schemathesis.openapi.from_wsgi("/schema/?format=json", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.definition.raw["operationId"] for op in operations} == {
        "hyperid_mfa_request_list",
        "hyperid_mfa_request_retrieve",
        "hyperid_mfa_request_cancel",
        "hyperid_mfa_status_get",
    }

    answers: Counter[tuple[str, int]] = Counter()
    started = time.monotonic()
    for operation in operations:
        name = operation.definition.raw["operationId"]
        strategies = [
            (operation.as_strategy(generation_mode=mode), EXAMPLES)
            for mode in (
                schemathesis.GenerationMode.POSITIVE,
                schemathesis.GenerationMode.NEGATIVE,
            )
        ]
        if any(parameter.name == "id" for parameter in operation.path_parameters):
            strategies += [
                (operation.as_strategy(path_parameters={"id": pk}), PINNED_EXAMPLES)
                for pk in pinned_ids
            ]
        if operation.body:
            strategies += [
                (operation.as_strategy(body={"transaction_id": tid}), PINNED_EXAMPLES)
                for tid in pinned_transactions
            ]
        for strategy, examples in strategies:
            _runner(strategy, examples, name, session, answers)()
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {sum(answers.values())} cases in {elapsed:.1f}s: {dict(answers)}")
    # The session must really be signed in: every operation answered 200 at least once.
    assert {name for name, status in answers if status == 200} == {
        op.definition.raw["operationId"] for op in operations
    }
