"""The DRF API (hyperid_mfa.api): own requests and HyperID's status-get, against FakeHyperID."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from hyperid_mfa import services
from hyperid_mfa.api import polling
from hyperid_mfa.api.parsers import MAX_BODY_BYTES, FormFieldsParser
from hyperid_mfa.api.schema import HAVE_SPECTACULAR
from hyperid_mfa.api.throttling import DEFAULT_RATES
from hyperid_mfa.models import HyperIDToken, MFARequest, State
from hyperid_mfa.tokens.store import decrypt
from tests.factories import make_request

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent

DETAIL_FIELDS = {
    "id",
    "transaction_id",
    "action",
    "question",
    "code",
    "state",
    "created_at",
    "expires_at",
    "completed_at",
    "consumed",
    "poll_interval",
    "retry_after",
}
FINISHED_STATES = ["approved", "denied", "expired", "canceled", "failed", "consumed"]
MULTIPART = MULTIPART_CONTENT  # with Django's test BOUNDARY


def list_url(**query: str) -> str:
    url = reverse("hyperid_mfa:request-list")
    return f"{url}?{urlencode(query)}" if query else url


def detail_url(mfa_request: MFARequest | str) -> str:
    pk = mfa_request.pk if isinstance(mfa_request, MFARequest) else mfa_request
    return reverse("hyperid_mfa:request-detail", args=[pk])


def cancel_url(mfa_request: MFARequest | str) -> str:
    pk = mfa_request.pk if isinstance(mfa_request, MFARequest) else mfa_request
    return reverse("hyperid_mfa:request-cancel", args=[pk])


def status_get_url() -> str:
    return reverse("hyperid_mfa:status-get")


@pytest.fixture
def api(hyperid_user):
    """A signed-in browser session (session authentication)."""
    client = APIClient()
    client.force_login(hyperid_user)
    return client


@pytest.fixture
def fast_refresh(settings):
    """Every poll asks HyperID (no coalescing window), as if polls were far apart."""
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "MIN_REFRESH_INTERVAL": 0}


def pending_request(user, **kwargs):
    """A request HyperID knows, pending (a push really sent to the fake)."""
    kwargs.setdefault("question", "Withdraw 500 EUR?")
    return services.start_request(user, "payments.withdraw", **kwargs)


def status_get(client, body, **kwargs):
    if isinstance(body, (dict, list)) or body is None:
        kwargs.setdefault("content_type", "application/json")
        body = json.dumps(body)
    kwargs.setdefault("content_type", "application/json")
    return client.post(status_get_url(), body, **kwargs)


def seed_answer(response) -> tuple:
    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data) == {
        "result",
        "transaction_id",
        "transaction_status",
        "transaction_complete_result",
    }
    return (
        data["result"],
        data["transaction_id"],
        data["transaction_status"],
        data["transaction_complete_result"],
    )


# --- request-list -------------------------------------------------------------------------------


def test_list_shows_only_my_requests_newest_first(api, hyperid_user, other_user):
    now = timezone.now()
    old = make_request(hyperid_user, created_at=now - timedelta(minutes=5))
    new = make_request(hyperid_user, "approved", created_at=now)
    make_request(other_user)

    response = api.get(list_url())

    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2
    assert [row["id"] for row in data["results"]] == [str(new.pk), str(old.pk)]
    assert set(data["results"][0]) == DETAIL_FIELDS - {"poll_interval", "retry_after"}
    assert data["results"][0]["state"] == "approved"


def test_list_pages_twenty_at_a_time_and_takes_a_page_size(api, hyperid_user):
    for _ in range(25):
        make_request(hyperid_user)

    first = api.get(list_url()).json()
    assert first["count"] == 25
    assert len(first["results"]) == 20
    assert first["next"] is not None
    assert len(api.get(first["next"]).json()["results"]) == 5
    assert len(api.get(list_url(page_size="5")).json()["results"]) == 5
    assert len(api.get(list_url(page_size="1000")).json()["results"]) == 25


def test_list_keeps_its_own_pagination_whatever_the_project_sets(api, hyperid_user, settings):
    settings.REST_FRAMEWORK = {
        "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
        "PAGE_SIZE": 1,
    }
    for _ in range(3):
        make_request(hyperid_user)

    data = api.get(list_url()).json()

    assert data["count"] == 3
    assert len(data["results"]) == 3


@pytest.mark.parametrize("state", [*FINISHED_STATES, "pending"])
def test_list_filters_by_state(api, hyperid_user, state):
    wanted = make_request(hyperid_user, state)
    for other in {*FINISHED_STATES, "pending"} - {state}:
        make_request(hyperid_user, other)

    results = api.get(list_url(state=state)).json()["results"]

    assert [row["id"] for row in results] == [str(wanted.pk)]
    assert results[0]["state"] == state


def test_list_refuses_an_unknown_state_and_names_the_known_ones(api):
    response = api.get(list_url(state="approvedd"))

    assert response.status_code == 400
    [message] = response.json()["state"]
    for state in State.values:
        assert state in message


def test_list_with_an_empty_state_filter_lists_everything(api, hyperid_user):
    make_request(hyperid_user)
    assert api.get(list_url(state="")).json()["count"] == 1


@pytest.mark.parametrize("page", ["2", "0", "-1", "abc", "9" * 30])
def test_list_page_out_of_range_is_a_json_404(api, hyperid_user, page):
    make_request(hyperid_user)

    response = api.get(list_url(page=page))

    assert response.status_code == 404
    assert "detail" in response.json()


def test_listing_asks_hyperid_nothing(api, hyperid_user, fake_hyperid):
    pending_request(hyperid_user)
    calls = fake_hyperid.call_count()

    api.get(list_url())

    assert fake_hyperid.call_count() == calls


# --- request-detail -----------------------------------------------------------------------------


def test_detail_of_a_pending_request_shows_the_approval_once_the_user_approves(
    api, hyperid_user, fake_hyperid
):
    mfa_request = pending_request(hyperid_user)
    assert api.get(detail_url(mfa_request)).json()["state"] == "pending"
    fake_hyperid.approve(mfa_request.transaction_id)
    MFARequest.objects.filter(pk=mfa_request.pk).update(last_checked_at=None)

    data = api.get(detail_url(mfa_request)).json()

    assert set(data) == DETAIL_FIELDS
    assert data["state"] == "approved"
    assert data["consumed"] is False
    assert data["completed_at"] is not None
    assert data["poll_interval"] is None
    assert data["id"] == str(mfa_request.pk)
    assert data["transaction_id"] == mfa_request.transaction_id
    assert data["code"] == mfa_request.code
    assert data["question"] == "Withdraw 500 EUR?"
    assert data["action"] == "payments.withdraw"


def test_detail_never_shows_the_hyperid_token_or_the_binding(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user, fingerprint="secret-binding")
    token = decrypt(HyperIDToken.objects.get(user=hyperid_user).access_token_encrypted)

    response = api.get(detail_url(mfa_request))

    assert token.encode() not in response.content
    assert b"secret-binding" not in response.content


def test_a_pending_request_asks_to_be_polled_every_poll_interval(api, hyperid_user, settings):
    mfa_request = pending_request(hyperid_user)
    assert api.get(detail_url(mfa_request)).json()["poll_interval"] == 0.5
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "POLL_INTERVAL": 5}
    assert api.get(detail_url(mfa_request)).json()["poll_interval"] == 5


@pytest.mark.parametrize(
    "fault",
    [
        {"fault": "http_503"},
        {"fault": "connection_error"},
        {"fault": "html"},  # an answer outside the protocol
        {"fault": "result", "result": -1},
        {"fault": "result", "result": -3},
    ],
)
def test_detail_answers_pending_not_5xx_when_hyperid_fails(api, hyperid_user, fake_hyperid, fault):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.inject(call="status-get", times=None, **fault)

    response = api.get(detail_url(mfa_request))

    assert response.status_code == 200
    assert response.json()["state"] == "pending"
    assert response.json()["poll_interval"] == 1


def test_detail_answers_pending_when_the_users_token_is_revoked(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.revoke_tokens(hyperid_user.hyperid_subject)

    response = api.get(detail_url(mfa_request))

    assert response.status_code == 200
    assert response.json()["state"] == "pending"
    assert response.json()["poll_interval"] > 0.5


def test_poll_interval_doubles_per_failed_check_up_to_a_minute_and_resets_on_success(
    api, hyperid_user, fake_hyperid, fast_refresh
):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.inject("http_503", call="status-get", times=None)

    intervals = [api.get(detail_url(mfa_request)).json()["poll_interval"] for _ in range(6)]

    assert intervals == [1, 2, 4, 8, 16, 32]
    for _ in range(2):
        intervals.append(api.get(detail_url(mfa_request)).json()["poll_interval"])
    assert intervals[-2:] == [polling.MAX_POLL_INTERVAL, polling.MAX_POLL_INTERVAL]
    fake_hyperid.clear_faults()
    assert api.get(detail_url(mfa_request)).json()["poll_interval"] == 0.5


def test_poll_interval_honours_hyperids_retry_after(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.inject("http_503", call="status-get", times=None, retry_after=45)

    assert api.get(detail_url(mfa_request)).json()["poll_interval"] == 45


def test_poll_interval_caps_even_a_long_retry_after(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.inject("http_503", call="status-get", times=None, retry_after=3600)

    assert api.get(detail_url(mfa_request)).json()["poll_interval"] == polling.MAX_POLL_INTERVAL


def test_a_poll_coalesced_into_a_failed_check_is_also_asked_to_wait_longer(
    api, hyperid_user, fake_hyperid, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "WATCHED_REFRESH_INTERVAL": 60}
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.inject("http_503", call="status-get", times=None)
    api.get(detail_url(mfa_request))
    calls = fake_hyperid.call_count("status-get")

    data = api.get(detail_url(mfa_request)).json()

    assert fake_hyperid.call_count("status-get") == calls  # within the watched interval
    assert data["poll_interval"] == 1


def test_a_failure_the_background_poller_met_counts_too(api, hyperid_user, fake_hyperid, settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "WATCHED_REFRESH_INTERVAL": 60}
    mfa_request = pending_request(hyperid_user)
    MFARequest.objects.filter(pk=mfa_request.pk).update(
        last_checked_at=timezone.now(), last_result=-1, last_error="ServiceUnavailable: down"
    )

    assert api.get(detail_url(mfa_request)).json()["poll_interval"] == 1


def test_poll_interval_never_outlasts_the_request(api, hyperid_user, fake_hyperid, settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "POLL_INTERVAL": 2}
    mfa_request = pending_request(hyperid_user)
    MFARequest.objects.filter(pk=mfa_request.pk).update(
        expires_at=timezone.now() + timedelta(seconds=3)
    )
    fake_hyperid.inject("http_503", call="status-get", times=None)

    interval = api.get(detail_url(mfa_request)).json()["poll_interval"]

    assert 2 <= interval <= 3


def test_many_polls_of_a_pending_request_cost_one_hyperid_call(
    api, hyperid_user, fake_hyperid, settings
):
    # A watched interval longer than the test, however slow the machine.
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "MIN_REFRESH_INTERVAL": 60,
        "WATCHED_REFRESH_INTERVAL": 60,
    }
    mfa_request = pending_request(hyperid_user)

    for _ in range(10):
        assert api.get(detail_url(mfa_request)).status_code == 200

    assert fake_hyperid.call_count("status-get") == 1


def test_after_a_denial_the_detail_says_how_long_until_a_new_push_is_possible(
    api, hyperid_user, fake_hyperid, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "DENIAL_COOLDOWN": 30}
    mfa_request = pending_request(hyperid_user)
    assert api.get(detail_url(mfa_request)).json()["retry_after"] is None
    fake_hyperid.deny(mfa_request.transaction_id)
    MFARequest.objects.filter(pk=mfa_request.pk).update(last_checked_at=None)

    data = api.get(detail_url(mfa_request)).json()

    assert data["state"] == "denied"
    assert 28 <= data["retry_after"] <= 31
    # The cooldown over, a new push is possible now.
    MFARequest.objects.filter(pk=mfa_request.pk).update(
        completed_at=timezone.now() - timedelta(seconds=31)
    )
    assert api.get(detail_url(mfa_request)).json()["retry_after"] is None


def test_a_request_that_ended_within_the_push_limit_says_when_it_frees(
    api, hyperid_user, fake_hyperid, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": "1/1h"}
    mfa_request = pending_request(hyperid_user)
    api.post(cancel_url(mfa_request))

    data = api.get(detail_url(mfa_request)).json()

    assert data["state"] == "canceled"
    assert 3590 <= data["retry_after"] <= 3600


def test_twenty_reads_of_a_finished_request_cost_no_hyperid_call(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.deny(mfa_request.transaction_id)
    assert api.get(detail_url(mfa_request)).json()["state"] == "denied"
    calls = fake_hyperid.call_count()

    for _ in range(20):
        assert api.get(detail_url(mfa_request)).json()["state"] == "denied"
        assert status_get(api, {"transaction_id": mfa_request.transaction_id}).status_code == 200

    assert fake_hyperid.call_count() == calls


def test_detail_expires_a_request_past_its_time_and_withdraws_the_push(
    api, hyperid_user, fake_hyperid
):
    mfa_request = pending_request(hyperid_user)
    MFARequest.objects.filter(pk=mfa_request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    data = api.get(detail_url(mfa_request)).json()

    assert data["state"] == "expired"
    assert data["poll_interval"] is None
    assert fake_hyperid.transaction(mfa_request.transaction_id).state == "canceled"


@pytest.mark.parametrize(
    "pk",
    [
        "not-a-uuid",
        "1",
        "0" * 33,
        "7ed4d8ae-e6b1-45aa-bed6-56c507046a2",
        "7ed4d8ae-e6b1-45aa-bed6-56c507046a20x",
        "%00",
        "%E2%98%83",
    ],
)
def test_a_malformed_id_is_a_json_404(api, pk):
    for response in (api.get(detail_url(pk)), api.post(cancel_url(pk))):
        assert response.status_code == 404
        assert response.json() == {"detail": "No such MFA request."}


def test_an_unknown_id_is_a_json_404(api):
    unknown = str(uuid.uuid4())
    for response in (api.get(detail_url(unknown)), api.post(cancel_url(unknown))):
        assert response.status_code == 404
        assert response.json() == {"detail": "No such MFA request."}


# --- request-cancel -----------------------------------------------------------------------------


def test_cancel_withdraws_the_push_here_and_at_hyperid(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)

    response = api.post(cancel_url(mfa_request))

    assert response.status_code == 200
    assert response.json()["state"] == "canceled"
    assert response.json()["poll_interval"] is None
    assert MFARequest.objects.get(pk=mfa_request.pk).state == State.CANCELED
    assert fake_hyperid.transaction(mfa_request.transaction_id).state == "canceled"


def test_canceling_twice_succeeds_again_without_asking_hyperid(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)
    api.post(cancel_url(mfa_request))
    calls = fake_hyperid.call_count()

    response = api.post(cancel_url(mfa_request))

    assert response.status_code == 200
    assert response.json()["state"] == "canceled"
    assert fake_hyperid.call_count() == calls


@pytest.mark.parametrize("state", ["approved", "denied", "expired", "failed", "consumed"])
def test_canceling_a_finished_request_is_a_conflict_that_names_its_state(
    api, hyperid_user, fake_hyperid, state
):
    mfa_request = make_request(hyperid_user, state)

    response = api.post(cancel_url(mfa_request))

    assert response.status_code == 409
    assert response.json()["state"] == state
    assert state in response.json()["detail"]
    assert "retry_after" in response.json()
    assert MFARequest.objects.get(pk=mfa_request.pk).state == state
    assert fake_hyperid.call_count() == 0


def test_cancel_holds_locally_while_hyperid_is_down(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.inject("http_503", call="cancel", times=None)

    response = api.post(cancel_url(mfa_request))

    assert response.status_code == 200
    assert response.json()["state"] == "canceled"


def test_cancel_writes_an_audit_line_with_the_clients_address(api, hyperid_user, caplog):
    mfa_request = make_request(hyperid_user)
    caplog.set_level(logging.INFO, logger="hyperid_mfa")

    api.post(cancel_url(mfa_request), REMOTE_ADDR="203.0.113.7")

    [line] = [r for r in caplog.records if getattr(r, "mfa_event", "") == "pending -> canceled"]
    assert line.client_ip == "203.0.113.7"
    assert line.mfa_request_id == str(mfa_request.pk)


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def post_raw(client, url: str, body: bytes | str, content_type: str | None):
    """A POST with exactly this body and Content-Type (none at all for None)."""
    return client.generic("POST", url, body, content_type=content_type)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # Django's test client's default, and a browser's FormData.
        (encode_multipart(BOUNDARY, {}), MULTIPART),
        (encode_multipart(BOUNDARY, {"reason": "changed my mind"}), MULTIPART),
        (urlencode({"reason": "changed my mind"}), FORM),
        ("", FORM),
        (json.dumps({"reason": "changed my mind"}), JSON),
        ("", JSON),
        ("changed my mind", "text/plain"),
        (b"\x00\xff", "application/octet-stream"),
        ("changed my mind", None),
        ("", None),
    ],
    ids=[
        "empty-multipart",
        "multipart",
        "form",
        "empty-form",
        "json",
        "empty-json",
        "text",
        "binary",
        "no-content-type",
        "nothing",
    ],
)
def test_cancel_takes_any_media_type_and_ignores_the_body(api, hyperid_user, body, content_type):
    mfa_request = make_request(hyperid_user)

    response = post_raw(api, cancel_url(mfa_request), body, content_type)

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "canceled"


def test_cancel_with_the_django_test_clients_defaults(hyperid_user):
    # A bodyless post() of Django's own Client is an empty multipart form.
    client = Client()
    client.force_login(hyperid_user)
    mfa_request = make_request(hyperid_user)

    response = client.post(cancel_url(mfa_request))

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "canceled"


def test_cancel_reads_past_the_files_of_a_multipart_body_and_keeps_none(api, hyperid_user):
    mfa_request = make_request(hyperid_user)
    upload = SimpleUploadedFile("big.bin", b"x" * 100_000)

    response = api.post(
        cancel_url(mfa_request), {"reason": "oops", "upload": upload}, format="multipart"
    )

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "canceled"


def test_the_form_fields_parser_keeps_the_fields_and_drops_the_files():
    body = encode_multipart(
        BOUNDARY,
        {"csrfmiddlewaretoken": "t0ken", "upload": SimpleUploadedFile("a.txt", b"secret")},
    )
    request = RequestFactory().generic("POST", "/", body, content_type=MULTIPART)

    parsed = FormFieldsParser().parse(
        io.BytesIO(body), MULTIPART, {"request": request, "encoding": "utf-8"}
    )

    assert parsed.data.dict() == {"csrfmiddlewaretoken": "t0ken"}
    assert not parsed.files


@pytest.mark.parametrize(
    ("body", "content_type", "limits", "status"),
    [
        ("not json", JSON, {}, 400),
        ("[[[[" * 10_000, JSON, {}, 400),
        ('{"x": NaN}', JSON, {}, 400),
        (json.dumps({"x": "y" * MAX_BODY_BYTES}), JSON, {}, 400),
        # Django's own limits on forms: its answer would be an HTML 400.
        (urlencode({"x": "y" * 2000}), FORM, {"DATA_UPLOAD_MAX_MEMORY_SIZE": 1000}, 400),
        (urlencode(dict.fromkeys("abcde", "1")), FORM, {"DATA_UPLOAD_MAX_NUMBER_FIELDS": 2}, 400),
        (
            encode_multipart(BOUNDARY, dict.fromkeys("abcde", "1")),
            MULTIPART,
            {"DATA_UPLOAD_MAX_NUMBER_FIELDS": 2},
            400,
        ),
        ("not a multipart body", "multipart/form-data", {}, 400),  # no boundary
    ],
    ids=[
        "not-json",
        "deep",
        "nan",
        "oversized",
        "big-form",
        "many-fields",
        "many-multipart-fields",
        "bad-multipart",
    ],
)
def test_cancel_answers_bad_bodies_with_a_json_4xx_and_cancels_nothing(
    api, hyperid_user, settings, body, content_type, limits, status
):
    for name, value in limits.items():
        setattr(settings, name, value)
    mfa_request = make_request(hyperid_user)

    response = api.post(cancel_url(mfa_request), body, content_type=content_type)

    assert response.status_code == status
    assert "detail" in response.json()
    assert MFARequest.objects.get(pk=mfa_request.pk).is_pending


# --- status-get: HyperID's contract -------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "complete_result"),
    [
        ("approved", 1, 0),
        ("consumed", 1, 0),
        ("denied", 1, 1),
        ("expired", 2, 0),
        ("canceled", 4, 0),
    ],
)
def test_status_get_answers_a_finished_request_as_hyperid_would(
    api, hyperid_user, fake_hyperid, state, status, complete_result
):
    mfa_request = make_request(hyperid_user, state)

    answer = seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id}))

    assert answer == (0, mfa_request.transaction_id, status, complete_result)
    assert fake_hyperid.call_count() == 0


def test_status_get_of_a_pending_request_asks_hyperid_and_answers_its_status(
    api, hyperid_user, fake_hyperid
):
    mfa_request = pending_request(hyperid_user)

    assert seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id})) == (
        0,
        mfa_request.transaction_id,
        0,
        0,
    )
    assert fake_hyperid.call_count("status-get") == 1

    fake_hyperid.approve(mfa_request.transaction_id)
    MFARequest.objects.filter(pk=mfa_request.pk).update(last_checked_at=None)
    assert seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id})) == (
        0,
        mfa_request.transaction_id,
        1,
        0,
    )


@pytest.mark.parametrize("endpoint", ["request-detail", "status-get"])
def test_a_poll_sees_an_approval_at_the_watched_pace_not_the_background_one(
    api, hyperid_user, fake_hyperid, endpoint
):
    # Someone polls, so someone waits: asked about a second ago, within
    # MIN_REFRESH_INTERVAL (2 s) but past WATCHED_REFRESH_INTERVAL (0.5 s), the request
    # is asked about again and the approval seen at once.
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.approve(mfa_request.transaction_id)
    MFARequest.objects.filter(pk=mfa_request.pk).update(
        last_checked_at=timezone.now() - timedelta(seconds=1)
    )

    if endpoint == "request-detail":
        assert api.get(detail_url(mfa_request)).json()["state"] == "approved"
    else:
        answer = status_get(api, {"transaction_id": mfa_request.transaction_id})
        assert seed_answer(answer)[2] == 1  # completed
    assert fake_hyperid.call_count("status-get") == 1


def test_status_get_of_a_request_past_its_time_answers_expired(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)
    MFARequest.objects.filter(pk=mfa_request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    answer = seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id}))

    assert answer == (0, mfa_request.transaction_id, 2, 0)


@pytest.mark.parametrize(
    "fault",
    [
        {"fault": "http_503"},
        {"fault": "http_502"},
        {"fault": "connection_error"},
        {"fault": "result", "result": -1},
        {"fault": "html"},
        {"fault": "status", "value": 3},  # a status the protocol does not know
        {"fault": "wrong_transaction_id"},
    ],
)
def test_status_get_answers_minus_1_while_hyperid_is_unavailable(
    api, hyperid_user, fake_hyperid, fault
):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.inject(call="status-get", times=None, **fault)

    answer = seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id}))

    assert answer == (-1, mfa_request.transaction_id, None, None)
    assert MFARequest.objects.get(pk=mfa_request.pk).is_pending


def test_status_get_answers_minus_3_when_hyperid_denies_access(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.inject("result", call="status-get", result=-3)

    answer = seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id}))

    assert answer == (-3, mfa_request.transaction_id, None, None)


def test_status_get_answers_minus_4_when_even_a_refreshed_token_is_expired(
    api, hyperid_user, fake_hyperid
):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.inject("result", call="status-get", result=-4, times=2)

    answer = seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id}))

    assert answer == (-4, mfa_request.transaction_id, None, None)
    assert fake_hyperid.call_count("token") == 1  # it did try to refresh the token


def test_status_get_answers_minus_5_when_the_users_tokens_are_revoked(
    api, hyperid_user, fake_hyperid
):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.revoke_tokens(hyperid_user.hyperid_subject)

    answer = seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id}))

    assert answer == (-5, mfa_request.transaction_id, None, None)


def test_status_get_answers_minus_5_when_the_user_has_no_hyperid_token(user, fake_hyperid):
    mfa_request = make_request(user)
    client = APIClient()
    client.force_login(user)

    answer = seed_answer(status_get(client, {"transaction_id": mfa_request.transaction_id}))

    assert answer == (-5, mfa_request.transaction_id, None, None)
    assert fake_hyperid.call_count("status-get") == 0


def test_status_get_answers_minus_6_for_an_unknown_transaction(api, fake_hyperid):
    assert seed_answer(status_get(api, {"transaction_id": 987654})) == (-6, 987654, None, None)
    assert seed_answer(status_get(api, {"transaction_id": 2**63 - 1})) == (
        -6,
        2**63 - 1,
        None,
        None,
    )
    assert fake_hyperid.call_count() == 0


def test_status_get_answers_minus_6_once_hyperid_forgot_the_transaction(
    api, hyperid_user, fake_hyperid
):
    mfa_request = pending_request(hyperid_user)
    fake_hyperid.forget(mfa_request.transaction_id)

    answer = seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id}))

    assert answer == (-6, mfa_request.transaction_id, None, None)
    assert MFARequest.objects.get(pk=mfa_request.pk).state == State.FAILED
    # Finished: later polls do not ask HyperID again.
    calls = fake_hyperid.call_count()
    seed_answer(status_get(api, {"transaction_id": mfa_request.transaction_id}))
    assert fake_hyperid.call_count() == calls


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"transaction_id": None},
        {"transaction_id": "3"},
        {"transaction_id": "three"},
        {"transaction_id": 3.0},
        {"transaction_id": 3.5},
        {"transaction_id": True},
        {"transaction_id": False},
        {"transaction_id": 0},
        {"transaction_id": -1},
        {"transaction_id": 2**63},
        {"transaction_id": 10**400},
        {"transaction_id": [3]},
        {"transaction_id": {"id": 3}},
        {"id": 3},
        [],
        [{"transaction_id": 3}],
        None,
    ],
    ids=repr,
)
def test_status_get_answers_minus_2_for_invalid_parameters(api, fake_hyperid, body):
    assert seed_answer(status_get(api, body)) == (-2, None, None, None)
    assert fake_hyperid.call_count() == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("", "application/json"),
        ("not json", "application/json"),
        ('{"transaction_id": 3', "application/json"),
        ('{"transaction_id": NaN}', "application/json"),
        ('{"transaction_id": Infinity}', "application/json"),
        ("3", "application/json"),
        ('"3"', "application/json"),
        ("[" * 100_000, "application/json"),
        ("9" * 5000, "application/json"),
        (b"\xff\xfe{}", "application/json"),
        ('{"transaction_id": 3, "x": "' + "y" * MAX_BODY_BYTES + '"}', "application/json"),
        ("transaction_id=3", "application/x-www-form-urlencoded"),
        ('{"transaction_id": 3}', "text/plain"),
        ('{"transaction_id": 3}', "application/xml"),
    ],
    # Printable ids without backslashes: a test id is also a command-line argument
    # (scripts/mutate selects tests by id).
    ids=lambda value: repr(value)[:40].replace("\\", "/"),
)
def test_status_get_answers_minus_2_for_a_body_that_is_not_a_json_object(
    api, hyperid_user, fake_hyperid, body, content_type
):
    make_request(hyperid_user, "approved", transaction_id=3)

    assert seed_answer(status_get(api, body, content_type=content_type)) == (-2, None, None, None)
    assert fake_hyperid.call_count() == 0


def test_status_get_ignores_extra_fields(api, hyperid_user):
    mfa_request = make_request(hyperid_user, "denied")
    body = {"transaction_id": mfa_request.transaction_id, "extra": [1, {"x": None}]}

    assert seed_answer(status_get(api, body)) == (0, mfa_request.transaction_id, 1, 1)


def test_status_get_never_shows_the_hyperid_token(api, hyperid_user, fake_hyperid):
    mfa_request = pending_request(hyperid_user)
    token = decrypt(HyperIDToken.objects.get(user=hyperid_user).access_token_encrypted)
    fake_hyperid.inject("result", call="status-get", result=-3)

    for _ in range(2):
        response = status_get(api, {"transaction_id": mfa_request.transaction_id})
        assert token.encode() not in response.content


# --- another user's rows -------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["pending", "approved"])
def test_another_users_request_does_not_exist_for_me(
    api, hyperid_user, other_user, fake_hyperid, state
):
    theirs = make_request(other_user, state)
    unknown = str(uuid.uuid4())

    assert api.get(list_url()).json()["count"] == 0
    assert api.get(detail_url(theirs)).json() == api.get(detail_url(unknown)).json()
    assert api.get(detail_url(theirs)).status_code == 404
    response = api.post(cancel_url(theirs))
    assert response.status_code == 404
    assert response.json() == api.post(cancel_url(unknown)).json()
    assert MFARequest.objects.get(pk=theirs.pk).state == state
    assert seed_answer(status_get(api, {"transaction_id": theirs.transaction_id})) == (
        -6,
        theirs.transaction_id,
        None,
        None,
    )
    assert fake_hyperid.call_count() == 0


# --- authentication, CSRF, methods -------------------------------------------------------------


def test_anonymous_clients_are_refused_everywhere_and_nothing_reaches_hyperid(
    hyperid_user, fake_hyperid
):
    mfa_request = pending_request(hyperid_user)
    calls = fake_hyperid.call_count()
    client = APIClient()

    responses = [
        client.get(list_url()),
        client.get(detail_url(mfa_request)),
        client.post(cancel_url(mfa_request)),
        status_get(client, {"transaction_id": mfa_request.transaction_id}),
        status_get(client, "not json"),
    ]

    for response in responses:
        assert response.status_code in (401, 403)
        assert "detail" in response.json()
    assert fake_hyperid.call_count() == calls
    assert MFARequest.objects.get(pk=mfa_request.pk).is_pending


@pytest.fixture
def browser(hyperid_user):
    """A signed-in session whose POSTs go through DRF's CSRF check."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(hyperid_user)
    token_request = HttpRequest()
    client.csrf_token = get_token(token_request)
    client.cookies["csrftoken"] = token_request.META["CSRF_COOKIE"]
    return client


def test_session_posts_without_a_csrf_token_are_refused(browser, hyperid_user):
    mfa_request = make_request(hyperid_user, "approved")
    pending = make_request(hyperid_user)

    for response in (
        browser.post(cancel_url(pending)),
        status_get(browser, {"transaction_id": mfa_request.transaction_id}),
    ):
        assert response.status_code == 403
        assert "CSRF" in response.json()["detail"]
    assert MFARequest.objects.get(pk=pending.pk).is_pending


def test_session_posts_with_the_csrf_header_go_through(browser, hyperid_user):
    mfa_request = make_request(hyperid_user, "approved")
    pending = make_request(hyperid_user)
    header = {"HTTP_X_CSRFTOKEN": browser.csrf_token}

    assert browser.post(cancel_url(pending), **header).status_code == 200
    answer = seed_answer(
        status_get(browser, {"transaction_id": mfa_request.transaction_id}, **header)
    )
    assert answer == (0, mfa_request.transaction_id, 1, 0)


def test_status_get_with_bad_json_still_needs_the_csrf_token(browser, hyperid_user):
    response = status_get(browser, "not json")

    assert response.status_code == 403
    answer = seed_answer(status_get(browser, "not json", HTTP_X_CSRFTOKEN=browser.csrf_token))
    assert answer == (-2, None, None, None)


def test_a_plain_html_form_can_cancel_with_its_csrf_field(browser, hyperid_user):
    pending = make_request(hyperid_user)

    response = browser.post(
        cancel_url(pending),
        urlencode({"csrfmiddlewaretoken": browser.csrf_token}),
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert response.json()["state"] == "canceled"


def test_a_form_data_can_cancel_with_its_csrf_field_and_not_without(browser, hyperid_user):
    # What fetch(url, {method: "POST", body: new FormData(form)}) sends.
    pending = make_request(hyperid_user)
    url = cancel_url(pending)

    refused = browser.post(url, {"reason": "oops"}, format="multipart")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert MFARequest.objects.get(pk=pending.pk).is_pending

    fields = {"csrfmiddlewaretoken": browser.csrf_token, "reason": "oops"}
    response = browser.post(url, fields, format="multipart")
    assert response.status_code == 200
    assert response.json()["state"] == "canceled"


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("list", ["post", "put", "patch", "delete"]),
        ("detail", ["post", "put", "patch", "delete"]),
        ("cancel", ["get", "put", "patch", "delete"]),
        ("status-get", ["get", "put", "patch", "delete"]),
    ],
)
def test_wrong_methods_are_a_json_405(api, hyperid_user, url, refused):
    mfa_request = make_request(hyperid_user)
    target = {
        "list": list_url(),
        "detail": detail_url(mfa_request),
        "cancel": cancel_url(mfa_request),
        "status-get": status_get_url(),
    }[url]

    for method in refused:
        response = getattr(api, method)(target)
        assert response.status_code == 405, method
        assert "detail" in response.json()
        assert response["Allow"]
    assert MFARequest.objects.get(pk=mfa_request.pk).is_pending


# --- throttling -----------------------------------------------------------------------------------


def test_polls_beyond_the_projects_rate_are_throttled_with_retry_after(api, hyperid_user, settings):
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"hyperid_mfa_poll": "3/min"}}
    mfa_request = make_request(hyperid_user, "approved")

    assert api.get(detail_url(mfa_request)).status_code == 200
    assert status_get(api, {"transaction_id": mfa_request.transaction_id}).status_code == 200
    assert api.get(detail_url(mfa_request)).status_code == 200
    response = status_get(api, {"transaction_id": mfa_request.transaction_id})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "detail" in response.json()
    # Another scope, another budget.
    assert api.get(list_url()).status_code == 200


def test_throttles_are_per_user(api, hyperid_user, other_user, settings):
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"hyperid_mfa_list": "1/min"}}
    other = APIClient()
    other.force_login(other_user)

    assert api.get(list_url()).status_code == 200
    assert api.get(list_url()).status_code == 429
    assert other.get(list_url()).status_code == 200


def test_throttles_work_with_default_rates_when_the_project_sets_none(api, hyperid_user, settings):
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"some_other_scope": "1/min"}}
    mfa_request = make_request(hyperid_user, "canceled")
    allowed = int(DEFAULT_RATES["hyperid_mfa_cancel"].split("/")[0])

    statuses = [api.post(cancel_url(mfa_request)).status_code for _ in range(allowed + 1)]

    assert statuses == [200] * allowed + [429]


def test_a_scope_set_to_none_is_not_throttled(api, settings):
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"hyperid_mfa_list": None}}

    assert {api.get(list_url()).status_code for _ in range(70)} == {200}


# --- OpenAPI schema, and life without drf-spectacular ------------------------------------------


@pytest.mark.skipif(not HAVE_SPECTACULAR, reason="needs drf-spectacular (the openapi extra)")
def test_the_schema_documents_every_endpoint_and_its_answers_without_warnings(client):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    response = client.get("/schema/?format=json")

    assert response.status_code == 200
    assert not GENERATOR_STATS, "drf-spectacular reported warnings or errors"
    schema = json.loads(response.content)
    validate_schema(schema)
    operations = {
        operation["operationId"]: (path, method, set(operation["responses"]))
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert operations == {
        "hyperid_mfa_request_list": (
            "/mfa/requests/",
            "get",
            {"200", "400", "401", "403", "404", "429", "503"},
        ),
        "hyperid_mfa_request_retrieve": (
            "/mfa/requests/{id}/",
            "get",
            {"200", "401", "403", "404", "429", "503"},
        ),
        "hyperid_mfa_request_cancel": (
            "/mfa/requests/{id}/cancel/",
            "post",
            {"200", "400", "401", "403", "404", "409", "429", "503"},
        ),
        "hyperid_mfa_status_get": (
            "/mfa/transaction/status-get",
            "post",
            {"200", "401", "403", "429", "503"},
        ),
    }
    answer = schema["components"]["schemas"]["MFAStatusGetAnswer"]
    assert set(answer["required"]) == {
        "result",
        "transaction_id",
        "transaction_status",
        "transaction_complete_result",
    }


NO_SPECTACULAR = """
import sys
sys.modules["drf_spectacular"] = None  # as if the openapi extra were not installed
import django
django.setup()
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from hyperid_mfa.api import schema

assert not schema.HAVE_SPECTACULAR
call_command("migrate", verbosity=0)
client = APIClient()
client.force_authenticate(get_user_model().objects.create_user("u"))
response = client.get("/mfa/requests/")
assert response.status_code == 200, response.content
response = client.post("/mfa/transaction/status-get", {"transaction_id": 1}, format="json")
assert response.json()["result"] == -6, response.content
try:
    schema.schema_view()
except ImproperlyConfigured as err:
    assert "openapi" in str(err)
else:
    raise AssertionError("schema_view() worked without drf-spectacular")
print("ok")
"""


def test_the_api_works_without_drf_spectacular():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"HYPERID_MFA_TEST_DATABASE", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", PYTHONPATH=str(ROOT))

    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", NO_SPECTACULAR],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
