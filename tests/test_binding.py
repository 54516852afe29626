"""An approval covers exactly what was approved, however the next request is spelled.

Each attack approves one request, then sends another that carries other values in a
way the gate once missed: the Content-Type in another case, a body the gate did not
parse, a method Django does not parse forms for. The view must not run with values
nobody approved, and the approved request must still go through, once.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
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


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("callable", {"amount": "5"}),  # a bind callable reads a field the request lacks
        ("callable", {}),
        ("decimal", {}),
        ("decimal", {"amount": "five"}),  # Decimal("five"): InvalidOperation
        ("window-callable", {}),
        ("bind-values-mixin", {"amount": "5"}),
        ("drf-bind-values", {"payee": "Bob"}),
    ],
)
def test_a_request_the_binding_cannot_read_is_a_400_not_a_500(
    fake_hyperid, hyperid_user, kind, data
):
    browser = Client(raise_request_exception=False)
    browser.force_login(hyperid_user)

    if kind.startswith("drf"):
        response = browser.post(f"/gate/{kind}/", data, content_type="application/json")
    else:
        response = browser.post(f"/gate/{kind}/", data, **JSON_ACCEPT)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "mfa_bad_request"
    assert fake_hyperid.call_count() == 0


@pytest.mark.parametrize("kind", ["callable", "decimal", "bind-values-mixin", "drf-bind-values"])
def test_a_complete_request_to_a_bind_callable_still_runs_once_approved(
    fake_hyperid, browser, kind
):
    def send():
        data = {"amount": "5", "payee": "Bob"}
        if kind.startswith("drf"):
            return browser.post(f"/gate/{kind}/", data, content_type="application/json")
        return browser.post(f"/gate/{kind}/", data, **JSON_ACCEPT)

    assert send().json()["code"] == "mfa_pending"
    approve_pending(fake_hyperid)

    assert send().status_code == 200
    assert send().status_code == 403


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


# --- uploads named in bind= ---------------------------------------------------------------

CONTRACT = b"%PDF-1.7 the contract, signed by Bob"
FORGED = b"%PDF-1.7 the contract, signed by Mal"  # the same size


def upload(name="contract.pdf", content=CONTRACT):
    return {"document": SimpleUploadedFile(name, content, content_type="application/pdf")}


def sha256(content):
    return hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    ("url", "kind"), [("/gate/sign/", "sign"), ("/gate/drf-sign/", "drf-sign")]
)
def test_bind_may_name_an_upload_field_and_the_approved_file_is_signed_once(
    fake_hyperid, browser, url, kind
):
    pending = browser.post(url, upload(), **JSON_ACCEPT)

    assert pending.status_code == 403, pending.content
    assert pending.json()["code"] == "mfa_pending"
    [push] = fake_hyperid.pending()
    assert (
        push.question == f"Approve documents.sign: document contract.pdf ({len(CONTRACT)} bytes)?"
    )
    approve_pending(fake_hyperid)
    done = browser.post(url, upload(), **JSON_ACCEPT)
    assert done.status_code == 200, done.content
    assert runs(kind) == [sha256(CONTRACT)]
    assert browser.post(url, upload(), **JSON_ACCEPT).status_code == 403
    assert runs(kind) == [sha256(CONTRACT)]


@pytest.mark.parametrize(
    "forged",
    [
        {"content": FORGED},  # another file under the approved name and size
        {"name": "contract-v2.pdf"},  # the approved content under another name
    ],
)
def test_another_file_in_the_bound_field_is_not_signed(fake_hyperid, browser, forged):
    browser.post("/gate/sign/", upload(), **JSON_ACCEPT)
    approve_pending(fake_hyperid)

    attack = browser.post("/gate/sign/", upload(**forged), **JSON_ACCEPT)

    assert attack.status_code == 403
    assert attack.json()["code"] == "mfa_pending"
    assert runs("sign") == []
    # The approval is still the approved file's.
    assert browser.post("/gate/sign/", upload(), **JSON_ACCEPT).status_code == 200
    assert runs("sign") == [sha256(CONTRACT)]


def test_a_request_without_the_bound_upload_is_refused(fake_hyperid, browser):
    response = browser.post("/gate/sign/", {"note": "no file"}, **JSON_ACCEPT)

    assert response.status_code == 400
    assert response.json()["code"] == "mfa_bad_request"
    assert "document" in response.json()["detail"]
    assert fake_hyperid.call_count("start") == 0
