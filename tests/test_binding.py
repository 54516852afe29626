"""An approval covers exactly what was approved, however the next request is spelled.

Each attack approves one request, then sends another that carries other values in a
way the gate once missed: the Content-Type in another case, a body the gate did not
parse, a method Django does not parse forms for. The view must not run with values
nobody approved, and the approved request must still go through, once.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from tests import gate_views
from tests.conftest import approve_pending
from tests.gate_views import runs

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"
JSON_ACCEPT = {"HTTP_ACCEPT": "application/json"}

#: Spellings that Django reads as a form (it lowercases the type and strips spaces).
FORM_SPELLINGS = [
    "Application/x-www-form-urlencoded",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/X-WWW-Form-Urlencoded; charset=utf-8",
    "  application/x-www-form-urlencoded",
]
#: Views bound to the amount and payee fields only.
BOUND_KINDS = ["function", "class", "mixin", "async", "async-mixin"]


@pytest.fixture(autouse=True)
def _forget_runs():
    gate_views.RUNS.clear()


# --- 1. the Content-Type in another spelling ---------------------------------------------


@pytest.mark.parametrize("content_type", FORM_SPELLINGS)
@pytest.mark.parametrize("kind", [*BOUND_KINDS, "default"])
def test_a_form_content_type_spelled_another_way_cannot_carry_unapproved_values(
    fake_hyperid, browser, kind, content_type
):
    url = f"/gate/{kind}/?amount=250&payee=Bob"
    approved = "amount=250&payee=Bob"
    assert browser.post(url, approved, content_type=FORM, **JSON_ACCEPT).status_code == 403
    approve_pending(fake_hyperid)

    attack = browser.post(
        url, "amount=9999&payee=Mallory", content_type=content_type, **JSON_ACCEPT
    )

    assert attack.status_code == 403
    assert runs(kind) == []
    done = browser.post(url, approved, content_type=FORM, **JSON_ACCEPT)
    assert done.status_code == 200, done.content
    assert runs(kind) == ["250"]


@pytest.mark.parametrize(
    # Django parses the first two; the third it refuses to read (so does the gate).
    "content_type",
    ["multipart/Form-Data", "multipart/FORM-DATA", "Multipart/Form-Data"],
)
def test_a_multipart_body_spelled_another_way_cannot_carry_unapproved_values(
    fake_hyperid, browser, content_type
):
    url = "/gate/function/?amount=250&payee=Bob"
    browser.post(url, {"amount": "250", "payee": "Bob"}, **JSON_ACCEPT)
    approve_pending(fake_hyperid)

    body = encode_multipart(BOUNDARY, {"amount": "9999", "payee": "Mallory"})
    attack = browser.post(
        url, body, content_type=f"{content_type}; boundary={BOUNDARY}", **JSON_ACCEPT
    )

    assert attack.status_code in (400, 403)
    assert runs("function") == []
    assert browser.post(url, {"amount": "250", "payee": "Bob"}, **JSON_ACCEPT).status_code == 200
    assert runs("function") == ["250"]


def test_the_attack_fails_with_csrf_checks_on_too(fake_hyperid, hyperid_user):
    """The spelling passes Django's CSRF check (it reads the token from the parsed
    form), so only the gate stands in the way."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(hyperid_user)
    client.get("/gate/transfer-form/")
    token = client.cookies["csrftoken"].value
    url = "/gate/transfer/?amount=250&payee=Bob"
    approved = f"amount=250&payee=Bob&csrfmiddlewaretoken={token}"
    assert client.post(url, approved, content_type=FORM).status_code == 403
    approve_pending(fake_hyperid)

    attack = client.post(
        url,
        f"amount=9999&payee=Mallory&csrfmiddlewaretoken={token}",
        content_type="Application/X-WWW-Form-Urlencoded",
    )

    assert attack.status_code == 403
    assert "Transferred" not in attack.content.decode()
    assert runs("transfer") == []
    done = client.post(url, approved, content_type=FORM)
    assert b"Transferred 250 EUR to Bob" in done.content
    assert runs("transfer") == ["250"]


# --- 2. a body the gate does not parse ----------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/octet-stream"])
def test_a_body_that_is_not_parsed_is_bound_by_its_bytes(fake_hyperid, browser, content_type):
    url = "/gate/json-body/?amount=250&payee=Bob"
    approved = json.dumps({"amount": 250, "payee": "Bob"})
    assert browser.post(url, approved, content_type=content_type, **JSON_ACCEPT).status_code == 403
    approve_pending(fake_hyperid)

    attack = browser.post(
        url,
        json.dumps({"amount": 9999, "payee": "Mallory"}),
        content_type=content_type,
        **JSON_ACCEPT,
    )

    assert attack.status_code == 403
    assert runs("json-body") == []
    done = browser.post(url, approved, content_type=content_type, **JSON_ACCEPT)
    assert done.status_code == 200
    assert runs("json-body") == ["250"]


def test_json_with_a_repeated_key_is_refused_without_a_push(fake_hyperid, browser):
    # Parsers disagree on which "amount" wins; the gate does not guess.
    response = browser.post(
        "/gate/json-body/",
        '{"amount": 250, "payee": "Bob", "amount": 9999}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "mfa_bad_request"
    assert fake_hyperid.call_count() == 0


def test_json_numbers_are_bound_as_sent(fake_hyperid, browser):
    """``100`` and ``100.0`` read differently in a view that parses into Decimal."""
    browser.post("/gate/json-body/", '{"amount": 100, "payee": "Bob"}', "application/json")
    approve_pending(fake_hyperid)
    other = browser.post(
        "/gate/json-body/", '{"amount": 100.000000000000000001, "payee": "Bob"}', "application/json"
    )
    assert other.status_code == 403
    assert runs("json-body") == []
    done = browser.post("/gate/json-body/", '{"amount": 100, "payee": "Bob"}', "application/json")
    assert done.status_code == 200
    assert runs("json-body") == ["100"]


def test_json_in_another_charset_is_refused(fake_hyperid, browser):
    response = browser.post(
        "/gate/json-body/",
        '{"amount": 250, "payee": "Bob"}',  # the test client encodes it in UTF-16
        content_type="application/json; charset=utf-16",
    )
    assert response.status_code == 400
    assert fake_hyperid.call_count() == 0


# --- 3. form bodies of PUT, PATCH and DELETE ----------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_form_body_of_put_patch_or_delete_is_bound(fake_hyperid, browser, method):
    send = getattr(browser, method)
    assert send("/gate/limit/", "limit=100", content_type=FORM, **JSON_ACCEPT).status_code == 403
    approve_pending(fake_hyperid)

    attack = send("/gate/limit/", "limit=1000000", content_type=FORM, **JSON_ACCEPT)

    assert attack.status_code == 403
    assert runs("limit") == []
    done = send("/gate/limit/", "limit=100", content_type=FORM, **JSON_ACCEPT)
    assert done.status_code == 200
    assert runs("limit") == ["100"]


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_multipart_body_of_put_or_patch_is_bound(fake_hyperid, browser, method):
    send = getattr(browser, method)
    approved = encode_multipart(BOUNDARY, {"limit": "100"})
    send("/gate/limit/", approved, content_type=MULTIPART_CONTENT, **JSON_ACCEPT)
    approve_pending(fake_hyperid)
    attack = encode_multipart(BOUNDARY, {"limit": "1000000"})
    assert (
        send("/gate/limit/", attack, content_type=MULTIPART_CONTENT, **JSON_ACCEPT).status_code
        == 403
    )
    assert runs("limit") == []
    done = send("/gate/limit/", approved, content_type=MULTIPART_CONTENT, **JSON_ACCEPT)
    assert done.status_code == 200
    assert len(runs("limit")) == 1


# --- what is always bound -----------------------------------------------------------------


def test_the_query_string_is_bound_even_when_bind_names_fields(fake_hyperid, browser):
    browser.post("/gate/function/?account=1", {"amount": "250", "payee": "Bob"}, **JSON_ACCEPT)
    approve_pending(fake_hyperid)
    moved = browser.post(
        "/gate/function/?account=2", {"amount": "250", "payee": "Bob"}, **JSON_ACCEPT
    )
    assert moved.status_code == 403
    assert runs("function") == []
    done = browser.post(
        "/gate/function/?account=1", {"amount": "250", "payee": "Bob"}, **JSON_ACCEPT
    )
    assert done.status_code == 200
    assert runs("function") == ["250"]


def test_values_moved_from_the_body_to_the_query_need_a_new_approval(fake_hyperid, browser):
    browser.post("/gate/default/", {"amount": "250", "payee": "Bob"}, **JSON_ACCEPT)
    approve_pending(fake_hyperid)
    moved = browser.post("/gate/default/?amount=250&payee=Bob", {}, **JSON_ACCEPT)
    assert moved.status_code == 403
    assert moved.json()["code"] == "mfa_pending"
    assert runs("default") == []
    done = browser.post("/gate/default/", {"amount": "250", "payee": "Bob"}, **JSON_ACCEPT)
    assert done.status_code == 200
    assert runs("default") == ["250"]


def test_one_action_gated_at_two_paths_needs_an_approval_at_each(fake_hyperid, browser):
    """The same view, the same action and the same values under a second URL: the
    path is bound, so the approval given at one runs nothing at the other."""
    data = {"amount": "250", "payee": "Bob"}
    assert browser.post("/gate/function/", data, **JSON_ACCEPT).status_code == 403
    approve_pending(fake_hyperid)

    elsewhere = browser.post("/gate/function-again/", data, **JSON_ACCEPT)

    assert elsewhere.status_code == 403
    assert elsewhere.json()["code"] == "mfa_pending"
    assert runs("function") == []
    done = browser.post("/gate/function/", data, **JSON_ACCEPT)
    assert done.status_code == 200
    assert runs("function") == ["250"]


def test_an_unreadable_form_is_a_400_without_a_push(fake_hyperid, browser):
    response = browser.post(
        "/gate/function/", b"--nope", content_type="multipart/form-data", **JSON_ACCEPT
    )
    assert response.status_code == 400
    assert response.json()["code"] == "mfa_bad_request"
    assert fake_hyperid.call_count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_attack_fails_over_real_http(live_server, user, settings):
    """Through a real server and Django's CSRF check, as the review reproduced it."""
    import requests

    from hyperid_mfa.testing import FakeHyperID
    from tests.conftest import link

    fake = FakeHyperID(base_url=None)
    with fake.serve(), requests.Session() as http:
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, **fake.settings()}
        link(fake, user)
        signed_in = Client()
        signed_in.force_login(user)
        http.cookies["sessionid"] = signed_in.cookies["sessionid"].value
        http.get(f"{live_server.url}/gate/transfer-form/", timeout=10)
        token = http.cookies["csrftoken"]
        url = f"{live_server.url}/gate/transfer/?amount=250&payee=Bob"

        def post(body, content_type):
            return http.post(
                url,
                data=f"{body}&csrfmiddlewaretoken={token}",
                headers={"Content-Type": content_type},
                timeout=10,
            )

        assert post("amount=250&payee=Bob", FORM).status_code == 403
        approve_pending(fake)
        attack = post("amount=9999&payee=Mallory", "Application/X-WWW-Form-Urlencoded")
        done = post("amount=250&payee=Bob", FORM)

    assert attack.status_code == 403
    assert "Transferred" not in attack.text
    assert "Transferred 250 EUR to Bob" in done.text
    assert runs("transfer") == ["250"]
