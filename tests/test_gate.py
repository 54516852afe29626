"""The gate on every kind of view: docs/design.md's table of answers, binding, and attacks."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from hyperid_mfa import services, signals
from hyperid_mfa.decorators import require_mfa_approval
from hyperid_mfa.exceptions import QuestionNotShowable, SiteMisconfigured
from hyperid_mfa.gate import Gate
from hyperid_mfa.models import HyperIDToken, MFARequest, State
from tests import gate_views
from tests.conftest import approve_pending, link
from tests.gate_views import runs

pytestmark = pytest.mark.django_db

PLAIN_KINDS = ["function", "class", "mixin", "async", "async-mixin"]
DRF_KINDS = ["drf-method", "drf-permission", "drf-function", "drf-action", "drf-permission-action"]
KINDS = PLAIN_KINDS + DRF_KINDS
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def _forget_runs():
    gate_views.RUNS.clear()


def submit(client, kind, amount="500", payee="Bob", *, html=False, **extra):
    """Send the withdrawal to the view of ``kind``, as that kind's clients do."""
    url = f"/gate/{kind}/"
    data = {"amount": amount, "payee": payee}
    if kind.startswith("drf"):
        return client.post(url, json.dumps(data), content_type="application/json", **extra)
    if html:
        return client.post(url, data, **extra)
    return client.post(url, data, HTTP_ACCEPT="application/json", **extra)


# --- the table of answers, on every kind of view -----------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_first_call_sends_a_push_and_answers_pending(fake_hyperid, browser, kind):
    response = submit(browser, kind)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "mfa_pending"
    assert body["detail"]
    pushed = body["mfa_request"]
    assert set(pushed) == {
        "id",
        "transaction_id",
        "state",
        "code",
        "question",
        "status_url",
        "expires_at",
        "poll_interval",
    }
    assert pushed["state"] == "pending"
    # The client is told when to ask again: the default watched pace.
    assert pushed["poll_interval"] == 0.5
    assert pushed["status_url"].endswith(f"/mfa/requests/{pushed['id']}/")
    [push] = fake_hyperid.pending()
    assert push.transaction_id == pushed["transaction_id"]
    assert push.code == pushed["code"]
    assert runs(kind) == []


@pytest.mark.parametrize("kind", KINDS)
def test_after_approval_the_view_runs_exactly_once(fake_hyperid, browser, kind):
    submit(browser, kind)
    approve_pending(fake_hyperid)
    response = submit(browser, kind)
    assert response.status_code == 200, response.content
    assert response.json()["ran"] == kind
    assert runs(kind) == ["500"]
    again = submit(browser, kind)
    assert again.status_code == 403
    assert again.json()["code"] == "mfa_pending"
    assert runs(kind) == ["500"]


@pytest.mark.parametrize("kind", KINDS)
def test_calling_again_while_pending_sends_no_new_push(fake_hyperid, browser, kind, settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "MIN_REFRESH_INTERVAL": 0}
    first = submit(browser, kind).json()["mfa_request"]["id"]
    for _ in range(5):
        response = submit(browser, kind)
        assert response.json()["mfa_request"]["id"] == first
    assert fake_hyperid.call_count("start") == 1


@pytest.mark.parametrize("kind", ["function", "drf-method"])
def test_the_request_sent_again_while_pending_asks_hyperid_at_the_watched_pace(
    fake_hyperid, browser, kind
):
    pending = submit(browser, kind).json()["mfa_request"]
    fake_hyperid.approve(pending["transaction_id"])
    # Asked a second ago: within MIN_REFRESH_INTERVAL (2 s), past the watched 0.5 s.
    MFARequest.objects.filter(pk=pending["id"]).update(
        last_checked_at=timezone.now() - timedelta(seconds=1)
    )
    response = submit(browser, kind)
    assert response.status_code == 200, response.content
    assert runs(kind) == ["500"]


@pytest.mark.parametrize("kind", KINDS)
def test_too_many_pushes_is_429_with_retry_after(fake_hyperid, browser, kind):
    for amount in range(5):  # five different amounts: five pushes
        submit(browser, kind, amount=str(amount))
    response = submit(browser, kind, amount="999")
    assert response.status_code == 429
    assert response.json()["code"] == "mfa_rate_limited"
    assert int(response["Retry-After"]) > 0
    assert fake_hyperid.call_count("start") == 5


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("http_503", {}),
        ("malformed_json", {}),
        ("result", {"result": -1}),
        ("status", {"value": 3}),
    ],
)
def test_hyperid_down_or_garbage_is_503_and_the_pending_request_is_kept(
    fake_hyperid, browser, kind, fault, params
):
    pending = submit(browser, kind).json()["mfa_request"]
    approve_pending(fake_hyperid)  # an approval behind the fault must not get through
    fake_hyperid.inject(fault, call="status-get", times=None, **params)
    response = submit(browser, kind)
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "mfa_unavailable"
    assert body["mfa_request"]["id"] == pending["id"]
    assert int(response["Retry-After"]) >= 1
    assert runs(kind) == []
    stored = MFARequest.objects.get(pk=pending["id"])
    assert stored.is_pending
    assert stored.last_error
    fake_hyperid.clear_faults()
    MFARequest.objects.filter(pk=pending["id"]).update(last_checked_at=None)
    assert submit(browser, kind).status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_starting_while_hyperid_is_down_is_503(fake_hyperid, browser, kind):
    fake_hyperid.inject("http_503", call="start", retry_after=7)
    response = submit(browser, kind)
    assert response.status_code == 503
    assert response.json()["code"] == "mfa_unavailable"
    assert response["Retry-After"] == "7"


@pytest.mark.parametrize("kind", KINDS)
def test_no_usable_hyperid_token_asks_to_sign_in_again(fake_hyperid, browser, hyperid_user, kind):
    HyperIDToken.objects.filter(user=hyperid_user).delete()
    response = submit(browser, kind)
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_reauthenticate"
    assert fake_hyperid.call_count("start") == 0


@pytest.mark.parametrize("kind", KINDS)
def test_revoked_token_while_pending_asks_to_sign_in_again(
    fake_hyperid, browser, hyperid_user, kind
):
    submit(browser, kind)
    fake_hyperid.revoke_tokens(hyperid_user.hyperid_subject)
    MFARequest.objects.update(last_checked_at=None)
    response = submit(browser, kind)
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_reauthenticate"
    assert MFARequest.objects.get().is_pending


@pytest.mark.parametrize("kind", KINDS)
def test_anonymous_users_are_refused_and_no_push_is_sent(fake_hyperid, kind):
    response = submit(Client(), kind)
    assert response.status_code in (401, 403)
    if response.status_code == 403 and not kind.startswith("drf"):
        assert response.json()["code"] == "not_authenticated"
    assert fake_hyperid.call_count() == 0
    assert runs(kind) == []


def test_anonymous_browser_is_sent_to_login_like_login_required(fake_hyperid):
    response = submit(Client(), "function", html=True)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/gate/function/"


def test_user_without_authenticator_is_told_so(fake_hyperid, user):
    link(fake_hyperid, user, has_device=False)
    client = Client()
    client.force_login(user)
    response = submit(client, "function")
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_no_authenticator"


# --- what is bound -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["function", "drf-permission", "async"])
def test_approval_for_one_amount_does_not_pay_another(fake_hyperid, browser, kind):
    submit(browser, kind, amount="500")
    approve_pending(fake_hyperid)
    response = submit(browser, kind, amount="5000")
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_pending"
    assert runs(kind) == []
    assert submit(browser, kind, amount="500").status_code == 200


def test_approval_for_one_payee_does_not_pay_another(fake_hyperid, browser):
    submit(browser, "function", payee="Bob")
    approve_pending(fake_hyperid)
    assert submit(browser, "function", payee="Mallory").status_code == 403
    assert runs("function") == []


def test_approval_for_one_action_does_not_unlock_another(fake_hyperid, browser):
    submit(browser, "function")
    approve_pending(fake_hyperid)
    response = browser.get("/gate/export/?month=5", HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert MFARequest.objects.filter(action="reports.export").exists()


def test_another_users_approval_is_not_theirs_to_consume(fake_hyperid, browser, other_user):
    link(fake_hyperid, other_user)
    submit(browser, "function")
    approve_pending(fake_hyperid)
    bob = Client()
    bob.force_login(other_user)
    response = submit(bob, "function")
    assert response.status_code == 403
    assert runs("function") == []


def basic_auth(user):
    """HTTP Basic credentials: signed in on every request, no session at all."""
    credentials = base64.b64encode(f"{user.username}:pw".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {credentials}"}


@pytest.mark.parametrize("bob_asks", ["before Alice approves", "after Alice approves"])
def test_sessionless_users_sending_identical_requests_never_touch_each_others(
    fake_hyperid, hyperid_user, other_user, bob_asks
):
    """Without a session nothing but the user tells two identical API calls apart:
    Bob's never claims, refreshes, fails or consumes the request Alice is approving."""
    link(fake_hyperid, other_user)
    alice, bob = Client(), Client()

    first = submit(alice, "drf-permission", **basic_auth(hyperid_user))
    assert first.json()["code"] == "mfa_pending"
    [alices] = MFARequest.objects.all()
    if bob_asks == "after Alice approves":
        approve_pending(fake_hyperid)

    bobs_answer = submit(bob, "drf-permission", **basic_auth(other_user))

    assert bobs_answer.status_code == 403
    assert bobs_answer.json()["code"] == "mfa_pending"
    assert bobs_answer.json()["mfa_request"]["id"] != str(alices.pk)
    assert MFARequest.objects.get(pk=alices.pk).user == hyperid_user
    assert MFARequest.objects.filter(user=other_user).count() == 1
    alices.refresh_from_db()
    assert alices.state in (State.PENDING, State.APPROVED)
    assert runs("drf-permission") == []
    if bob_asks == "before Alice approves":
        [push] = fake_hyperid.pending(hyperid_user.hyperid_subject)
        fake_hyperid.approve(push.transaction_id)
    done = submit(alice, "drf-permission", **basic_auth(hyperid_user))
    assert done.status_code == 200, done.content
    assert runs("drf-permission") == ["500"]
    assert MFARequest.objects.get(pk=alices.pk).state == State.CONSUMED
    assert submit(bob, "drf-permission", **basic_auth(other_user)).status_code == 403
    assert runs("drf-permission") == ["500"]


def test_approval_won_in_one_browser_cannot_be_consumed_from_another(
    fake_hyperid, browser, hyperid_user
):
    submit(browser, "function")
    approve_pending(fake_hyperid)
    second_browser = Client()
    second_browser.force_login(hyperid_user)
    assert submit(second_browser, "function").status_code == 403
    assert runs("function") == []
    assert submit(browser, "function").status_code == 200


def test_consumed_approval_cannot_be_replayed(fake_hyperid, browser):
    submit(browser, "function")
    approve_pending(fake_hyperid)
    assert submit(browser, "function").status_code == 200
    assert submit(browser, "function").status_code == 403
    assert runs("function") == ["500"]


def test_approval_older_than_max_age_is_refused(fake_hyperid, browser):
    submit(browser, "function")
    approve_pending(fake_hyperid)
    services.refresh_pending(concurrency=1)
    MFARequest.objects.update(completed_at=timezone.now() - timedelta(seconds=301))
    assert submit(browser, "function").status_code == 403
    assert runs("function") == []


def test_default_binding_covers_every_field_but_not_the_csrf_token(fake_hyperid, browser):
    data = {"amount": "500", "memo": "rent", "csrfmiddlewaretoken": "one"}
    browser.post("/gate/default/?account=1", data, HTTP_ACCEPT="application/json")
    approve_pending(fake_hyperid)
    changed_memo = {**data, "memo": "other"}
    response = browser.post(
        "/gate/default/?account=1", changed_memo, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 403
    assert (
        browser.post("/gate/default/?account=2", data, HTTP_ACCEPT="application/json").status_code
        == 403
    )
    new_token = {**data, "csrfmiddlewaretoken": "two"}
    response = browser.post("/gate/default/?account=1", new_token, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert runs("default") == ["500"]


def test_default_binding_ignores_key_order_but_not_repeated_values(fake_hyperid, browser):
    def send(body):
        return browser.post(
            "/gate/default/",
            body,
            content_type="application/x-www-form-urlencoded",
            HTTP_ACCEPT="application/json",
        )

    send("b=2&a=1&a=3")
    approve_pending(fake_hyperid)

    # A view reading getlist("a") or the last "a" sees something else in each of these.
    for other in ("b=2&a=3&a=1", "b=2&a=1", "b=2&a=1&a=3&a=3"):
        assert send(other).json()["code"] == "mfa_pending", other
    assert runs("default") == []
    reordered = send("a=1&a=3&b=2")
    assert reordered.status_code == 200
    assert len(runs("default")) == 1


def test_default_binding_of_json_bodies_ignores_key_order(fake_hyperid, browser):
    browser.post("/gate/default/", '{"amount": 500, "to": "Bob"}', content_type="application/json")
    approve_pending(fake_hyperid)
    response = browser.post(
        "/gate/default/", '{"to": "Bob", "amount": 500}', content_type="application/json"
    )
    assert response.status_code == 200


def test_malformed_json_body_is_a_400_and_no_push(fake_hyperid, browser):
    response = browser.post("/gate/default/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "mfa_bad_request"
    assert fake_hyperid.call_count() == 0


def test_missing_field_for_the_question_is_a_400_not_a_500(fake_hyperid, browser):
    response = browser.post("/gate/function/", {"payee": "Bob"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "mfa_bad_request"
    assert fake_hyperid.call_count() == 0


def test_question_on_the_phone_says_what_is_approved(fake_hyperid, browser):
    submit(browser, "function", amount="750", payee="Carol")
    [push] = fake_hyperid.pending()
    assert push.question == "Withdraw 750 EUR to Carol?"


def test_bare_decorator_names_the_action_after_the_view(fake_hyperid, browser):
    browser.post("/gate/bare/", {"x": "1"}, HTTP_ACCEPT="application/json")
    assert MFARequest.objects.get().action == "tests.gate_views.bare_view"


def test_mixin_leaves_safe_methods_alone(fake_hyperid, browser):
    assert browser.get("/gate/mixin/").content == b"the form"
    assert browser.get("/gate/drf-permission/").json() == {"balance": 1000}
    assert fake_hyperid.call_count() == 0


# --- outcomes other than approval ---------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["deny", "decline", "expire", "forget"])
@pytest.mark.parametrize("kind", ["function", "drf-permission", "async"])
def test_denied_expired_canceled_or_failed_never_run_the_view(
    fake_hyperid, browser, kind, outcome, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "DENIAL_COOLDOWN": 0}
    first = submit(browser, kind).json()["mfa_request"]
    getattr(fake_hyperid, outcome)(first["transaction_id"])
    response = submit(browser, kind)
    assert response.status_code == 403
    assert response.json()["mfa_request"]["id"] != first["id"]  # a new push
    assert MFARequest.objects.get(pk=first["id"]).state in {
        State.DENIED,
        State.CANCELED,
        State.EXPIRED,
        State.FAILED,
    }
    assert runs(kind) == []


def test_after_a_denial_the_next_push_waits(fake_hyperid, browser):
    first = submit(browser, "function").json()["mfa_request"]
    fake_hyperid.deny(first["transaction_id"])
    response = submit(browser, "function")
    assert response.status_code == 429
    assert response.json()["code"] == "mfa_rate_limited"
    assert int(response["Retry-After"]) <= 31


def test_request_expired_locally_is_not_approved_later(fake_hyperid, browser):
    submit(browser, "function")
    MFARequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    approve_pending(fake_hyperid)
    response = submit(browser, "function")
    assert response.status_code == 403
    assert runs("function") == []
    assert MFARequest.objects.order_by("created_at").first().state == State.EXPIRED


# --- the HTML page -------------------------------------------------------------------------------


def test_browser_gets_the_approval_page_with_the_code_and_question(fake_hyperid, browser):
    response = submit(browser, "function", html=True)
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "no-store"
    request = MFARequest.objects.get()
    page = response.content.decode()
    assert 'class="hyperid-mfa-code"' in page
    assert f">{request.code}</p>" in page
    assert "Withdraw 500 EUR to Bob?" in page
    assert '<script src="/static/hyperid_mfa/approval.js" defer></script>' in page
    assert "<script>" not in page  # nothing inline: strict CSP works
    config = json.loads(
        page.split('id="hyperid-mfa-config" type="application/json">')[1].split("</script>")[0]
    )
    assert config["statusUrl"].endswith(f"/mfa/requests/{request.pk}/")
    assert config["cancelUrl"].endswith(f"/mfa/requests/{request.pk}/cancel/")
    assert config["resubmit"] == {
        "method": "POST",
        "url": "/gate/function/",
        "fields": [["amount", "500"], ["payee", "Bob"]],
        "has_files": False,
    }


@pytest.mark.parametrize(
    ("setup", "status", "title"),
    [
        ("rate_limit", 429, "Wait before asking again"),
        ("down", 503, "Approval is unavailable right now"),
        ("no_token", 403, "Sign in with HyperID</h1>"),
        ("expired_token", 403, "Sign in with HyperID again</h1>"),
    ],
)
def test_html_answers_have_the_same_status_codes_as_json(
    fake_hyperid, browser, hyperid_user, setup, status, title
):
    if setup == "rate_limit":
        for amount in range(5):
            submit(browser, "function", amount=str(amount))
    elif setup == "down":
        fake_hyperid.inject("http_503", call="start")
    elif setup == "no_token":  # a first use
        HyperIDToken.objects.filter(user=hyperid_user).delete()
    else:
        fake_hyperid.revoke_tokens(hyperid_user.hyperid_subject)
    response = submit(browser, "function", html=True)
    assert response.status_code == status
    assert title in response.content.decode()


# --- what the page says (issue 20) ---------------------------------------------------------


@pytest.mark.parametrize("fault", [{"kind": "http_503"}, {"kind": "timeout", "seconds": 0.5}])
def test_a_start_whose_outcome_is_unknown_tells_the_user_to_deny_a_push_that_arrives(
    fake_hyperid, browser, settings, fault
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "TIMEOUT": (0.2, 0.2)}
    # The parameter's dict is shared by every run of the test (mutmut runs it twice in
    # one process): read it, never change it.
    options = {name: value for name, value in fault.items() if name != "kind"}
    fake_hyperid.inject(fault["kind"], call="start", times=None, **options)

    page = submit(browser, "function", html=True)
    answer = submit(browser, "function")

    assert page.status_code == 503
    assert 'id="hyperid-mfa-stray"' in page.content.decode()
    assert "a push may still arrive on your phone: if it does, deny it" in answer.json()["detail"]


def test_a_start_hyperid_refused_says_nothing_of_a_push(fake_hyperid, browser):
    # HyperID's own answer -1: it sent nothing.
    fake_hyperid.inject("result", call="start", times=None, result=-1)

    page = submit(browser, "function", html=True)
    answer = submit(browser, "function")

    assert page.status_code == 503
    assert 'id="hyperid-mfa-stray"' not in page.content.decode()
    assert answer.json()["detail"] == "HyperID cannot be reached right now. Try again in a moment."


def test_the_code_is_shown_as_the_phone_shows_it_and_read_out_digit_by_digit(fake_hyperid, browser):
    page = submit(browser, "function", html=True).content.decode()
    code = MFARequest.objects.get().code

    assert f'<p class="hyperid-mfa-code" aria-hidden="true">{code}</p>' in page
    assert f"Code to match: {code[0]} {code[1]}</p>" in page


def test_while_waiting_the_only_continue_button_is_for_a_browser_without_script(
    fake_hyperid, browser
):
    page = submit(browser, "function", html=True).content.decode()

    noscript = page.split("<noscript>")[1].split("</noscript>")[0]
    assert 'id="hyperid-mfa-continue"' in noscript
    assert page.count('id="hyperid-mfa-continue"') == 1


def test_a_refusal_worth_retrying_counts_down_to_its_retry_after_and_offers_back(
    fake_hyperid, browser
):
    fake_hyperid.inject("http_503", call="start", retry_after=65)

    page = submit(browser, "function", html=True, HTTP_REFERER="http://testserver/form/")
    html = page.content.decode()

    assert page["Retry-After"] == "65"
    assert "You can try again in 1:05." in html
    assert 'id="hyperid-mfa-retry"' in html
    back = html.split('id="hyperid-mfa-back"')[1].split(">")[0]
    assert 'href="http://testserver/form/"' in back


def test_a_gated_get_is_resubmitted_with_its_query_as_fields(fake_hyperid, browser):
    response = browser.get("/gate/export/?month=5&next=https://evil.example/")
    page = response.content.decode()
    assert 'action="/gate/export/"' in page
    assert "https://evil.example/" not in page.split("<form")[1].split(">")[0]


def test_next_parameters_are_never_followed_off_site(fake_hyperid, browser):
    response = browser.post(
        "/gate/function/?next=https://evil.example/", {"amount": "5", "payee": "B"}
    )
    page = response.content.decode()
    form_tag = page.split('<form id="hyperid-mfa-resubmit"')[1].split(">")[0]
    assert 'action="/gate/function/?next=https://evil.example/"' in form_tag
    approve_pending(fake_hyperid)
    done = browser.post("/gate/function/?next=https://evil.example/", {"amount": "5", "payee": "B"})
    assert done.status_code == 200
    assert "Location" not in done


def test_a_path_starting_with_two_slashes_stays_on_this_site(fake_hyperid, browser):
    from django.test import RequestFactory

    from hyperid_mfa.gate.rendering import resubmission

    request = RequestFactory().post("/gate/function/", {"amount": "1"})
    request.path = "//evil.example/gate/function/"  # as a server may pass it through
    assert resubmission(request)["url"] == "/%2Fevil.example/gate/function/"


# --- cost -----------------------------------------------------------------------------------


def test_an_approved_pass_costs_at_most_three_queries_more_than_the_bare_view(
    fake_hyperid, browser
):
    submit(browser, "function")
    approve_pending(fake_hyperid)
    services.refresh_pending(concurrency=1)
    data = {"amount": "500", "payee": "Bob"}
    with CaptureQueriesContext(connection) as bare:
        browser.post("/gate/plain/", data, HTTP_ACCEPT="application/json")
    with CaptureQueriesContext(connection) as gated:
        response = browser.post("/gate/function/", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert len(gated) - len(bare) <= 3, [q["sql"] for q in gated.captured_queries]


# --- DRF's browsable API and OPTIONS --------------------------------------------------------


def test_the_browsable_api_shows_its_form_without_sending_a_push(fake_hyperid, browser):
    # DRF asks the permission about POST on a copy of this GET to decide on its form.
    response = browser.get("/gate/drf-permission/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b'method="POST"' in response.content
    assert fake_hyperid.call_count() == 0
    assert not MFARequest.objects.exists()


def test_options_describes_the_actions_without_sending_a_push(fake_hyperid, browser):
    response = browser.options("/gate/drf-generic/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "POST" in response.json()["actions"]
    assert fake_hyperid.call_count() == 0


# --- answers outside the protocol ------------------------------------------------------------


def test_a_result_code_too_large_for_the_column_is_recorded_not_a_500(fake_hyperid, browser):
    pending = submit(browser, "function").json()["mfa_request"]
    fake_hyperid.inject("result", call="status-get", times=None, result=40000)
    MFARequest.objects.update(last_checked_at=None)

    response = submit(browser, "function")

    assert response.status_code == 503
    stored = MFARequest.objects.get(pk=pending["id"])
    assert stored.is_pending
    assert "40000" in stored.last_error
    assert stored.last_result is None


# --- databases without UPDATE ... RETURNING ---------------------------------------------------


@pytest.fixture
def no_update_returning(monkeypatch):
    """As on a database without UPDATE ... RETURNING: the two-step paths."""
    from hyperid_mfa.services import consuming, lifecycle

    monkeypatch.setattr(lifecycle, "can_update_returning", lambda using: False)
    monkeypatch.setattr(consuming, "_statement", lambda using: None)


@pytest.mark.parametrize("kind", ["function", "drf-permission"])
def test_without_update_returning_an_approval_runs_the_view_once(
    fake_hyperid, browser, kind, no_update_returning
):
    submit(browser, kind)
    approve_pending(fake_hyperid)
    assert submit(browser, kind).status_code == 200  # learnt from HyperID inline
    assert submit(browser, kind).status_code == 403
    submit(browser, kind, amount="600")
    approve_pending(fake_hyperid)
    services.refresh_pending(concurrency=1)  # learnt by the poller: waiting locally
    assert submit(browser, kind, amount="600").status_code == 200
    assert runs(kind) == ["500", "600"]


# --- signing in again ---------------------------------------------------------------------


def test_sign_in_again_offers_the_configured_url_and_a_way_back(
    fake_hyperid, browser, hyperid_user, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REAUTHENTICATE_URL": "/sso/hyperid/"}
    HyperIDToken.objects.filter(user=hyperid_user).delete()

    as_json = browser.get("/gate/export/?month=5", HTTP_ACCEPT="application/json")
    page = browser.get("/gate/export/?month=5")

    assert as_json.json()["code"] == "mfa_reauthenticate"
    assert (
        as_json.json()["reauthenticate_url"] == "/sso/hyperid/?next=%2Fgate%2Fexport%2F%3Fmonth%3D5"
    )
    assert 'href="/sso/hyperid/?next=%2Fgate%2Fexport%2F%3Fmonth%3D5"' in page.content.decode()


def test_after_a_post_the_way_back_is_the_page_the_form_was_on(
    fake_hyperid, browser, hyperid_user, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REAUTHENTICATE_URL": "/sso/hyperid/"}
    HyperIDToken.objects.filter(user=hyperid_user).delete()
    on_site = submit(browser, "function", HTTP_REFERER="http://testserver/gate/transfer-form/")
    # The browser says the request is this site's; the Referer names another page.
    off_site = submit(
        browser,
        "function",
        HTTP_REFERER="https://evil.example/phish",
        HTTP_SEC_FETCH_SITE="same-origin",
    )
    assert on_site.json()["reauthenticate_url"] == (
        "/sso/hyperid/?next=http%3A%2F%2Ftestserver%2Fgate%2Ftransfer-form%2F"
    )
    assert off_site.json()["reauthenticate_url"] == "/sso/hyperid/"


def test_without_a_sign_in_url_the_answer_has_none(
    fake_hyperid, browser, hyperid_user, monkeypatch
):
    from hyperid_mfa.gate import rendering

    # As in a project without hyperid_mfa.contrib.allauth.
    monkeypatch.setattr(rendering, "ALLAUTH_LOGIN", ("no-such-url-name", {}))
    HyperIDToken.objects.filter(user=hyperid_user).delete()
    body = submit(browser, "function").json()
    assert body["code"] == "mfa_reauthenticate"
    assert "reauthenticate_url" not in body


@pytest.mark.skipif(not settings.HAVE_ALLAUTH, reason="needs the [allauth] extra")
def test_with_allauth_signing_in_again_goes_to_its_hyperid_login(
    fake_hyperid, browser, hyperid_user
):
    HyperIDToken.objects.filter(user=hyperid_user).delete()
    body = browser.get("/gate/export/?month=5", HTTP_ACCEPT="application/json").json()
    assert body["reauthenticate_url"] == (
        "/accounts/oidc/hyperid/login/?next=%2Fgate%2Fexport%2F%3Fmonth%3D5"
    )


# --- methods=, the default question, bound fields ----------------------------------------------


def test_methods_leaves_the_form_ungated_and_gates_its_submission(fake_hyperid, browser):
    assert (
        browser.get("/gate/form-view/").content == b"<form method='post'>the withdrawal form</form>"
    )
    assert fake_hyperid.call_count() == 0
    response = browser.post("/gate/form-view/", {"amount": "5", "payee": "Bob"}, **JSON)
    assert response.json()["code"] == "mfa_pending"
    approve_pending(fake_hyperid)
    assert (
        browser.post("/gate/form-view/", {"amount": "5", "payee": "Bob"}, **JSON).status_code == 200
    )
    assert runs("form-view") == ["5"]


def test_methods_must_be_a_sequence_not_a_string():
    from hyperid_mfa.decorators import require_mfa_approval

    with pytest.raises(TypeError, match="methods"):
        require_mfa_approval("x", methods="POST")(lambda request: None)


def test_without_a_question_the_push_names_the_bound_values(fake_hyperid, browser):
    submit(browser, "drf-method", amount="250", payee="Bob")
    [push] = fake_hyperid.pending()
    assert push.question == "Approve payments.withdraw: amount 250, payee Bob?"


@pytest.mark.parametrize("kind", ["drf-method", "drf-permission", "mixin"])
def test_a_request_missing_a_bound_field_is_a_400_without_a_push(fake_hyperid, browser, kind):
    url = f"/gate/{kind}/"
    if kind.startswith("drf"):
        response = browser.post(url, '{"amount": 250}', content_type="application/json")
    else:
        response = browser.post(url, {"amount": "250"}, **JSON)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "mfa_bad_request"
    assert "payee" in body["detail"]
    assert fake_hyperid.call_count() == 0


def test_the_same_action_from_another_session_withdraws_the_abandoned_push(
    fake_hyperid, browser, hyperid_user
):
    abandoned = submit(browser, "function").json()["mfa_request"]
    second_browser = Client()
    second_browser.force_login(hyperid_user)
    fresh = submit(second_browser, "function").json()["mfa_request"]

    assert [push.transaction_id for push in fake_hyperid.pending()] == [fresh["transaction_id"]]
    assert MFARequest.objects.get(pk=abandoned["id"]).state == State.CANCELED


# An answer of HyperID's that asks for an absurd wait, or spells its seconds in other
# digits, is HyperID being down: a 503 with a wait the client can read, never a 500.
@pytest.mark.parametrize(
    "retry_after",
    ["9" * 400, "\xb2", "99999999999", "-5"],
    ids=["huge", "superscript-two", "years", "negative"],
)
@pytest.mark.parametrize("kind", ["function", "drf-method"])
def test_a_retry_after_hyperid_cannot_mean_is_a_503_with_a_bounded_wait(
    fake_hyperid, browser, kind, retry_after
):
    fake_hyperid.inject("http_503", call="start", retry_after=retry_after, times=None)
    response = submit(browser, kind)
    assert response.status_code == 503
    assert response.json()["code"] == "mfa_unavailable"
    assert 1 <= int(response["Retry-After"]) <= 24 * 60 * 60
    assert runs(kind) == []
    page = submit(browser, kind, html=True)
    assert page.status_code == 503
    assert 1 <= int(page["Retry-After"]) <= 24 * 60 * 60


def test_every_way_of_waiting_on_one_request_together_asks_hyperid_once_per_watched_interval(
    fake_hyperid, browser, other_user
):
    # The page's poll, HyperID's own status-get, the gated form sent again, and another
    # user polling the same id: together one status-get per watched interval (0.5 s),
    # whichever of them comes first, and none for the other user.
    pending = submit(browser, "function").json()["mfa_request"]
    stranger = Client()
    stranger.force_login(other_user)
    detail = reverse("hyperid_mfa:request-detail", args=[pending["id"]])
    status_get = reverse("hyperid_mfa:status-get")
    body = {"transaction_id": pending["transaction_id"]}

    def everyone_polls() -> None:
        assert browser.get(detail).status_code == 200
        assert browser.post(status_get, body, content_type="application/json").json()["result"] == 0
        assert submit(browser, "function").status_code == 403
        assert stranger.get(detail).status_code == 404
        stranger_answer = stranger.post(status_get, body, content_type="application/json")
        assert stranger_answer.json()["result"] == -6

    before = fake_hyperid.call_count("status-get")
    MFARequest.objects.filter(pk=pending["id"]).update(last_checked_at=timezone.now())
    everyone_polls()
    assert fake_hyperid.call_count("status-get") == before
    for _ in range(3):
        MFARequest.objects.filter(pk=pending["id"]).update(
            last_checked_at=timezone.now() - timedelta(seconds=0.6)
        )
        everyone_polls()
        everyone_polls()
    assert fake_hyperid.call_count("status-get") == before + 3
    assert runs("function") == []


def test_the_error_line_of_an_outage_names_the_gated_action(fake_hyperid, browser, caplog):
    """Operators read which action failed from the one ERROR line."""
    fake_hyperid.inject("http_503", call="start")
    with caplog.at_level(logging.ERROR, logger="hyperid_mfa"):
        assert submit(browser, "function").status_code == 503
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("MFA gate ")]
    assert line.startswith(f"MFA gate {gate_views.ACTION}: ")


def test_the_error_line_of_what_only_the_site_can_fix_is_the_refusal_and_its_hint(caplog):
    gate = Gate(gate_views.ACTION)
    with caplog.at_level(logging.ERROR, logger="hyperid_mfa"):
        gate._refused(SiteMisconfigured("the gate runs inside a transaction"))
        gate._refused(QuestionNotShowable("too long", hint="Shorten the question."))

    assert [r.getMessage() for r in caplog.records] == [
        f"MFA gate {gate_views.ACTION}: the gate runs inside a transaction",
        f"MFA gate {gate_views.ACTION}: too long Shorten the question.",
    ]


def test_a_views_own_max_age_refuses_an_approval_the_default_would_take(
    fake_hyperid, hyperid_user, rf
):
    """``max_age=60`` on the view: an approval learnt 61 s ago is too old there, though
    APPROVAL_MAX_AGE (300) would take it; one learnt 30 s ago runs the view."""
    ran = []

    @require_mfa_approval(gate_views.ACTION, bind=("amount",), max_age=60)
    def view(request):
        ran.append(request.POST["amount"])
        return HttpResponse("done")

    session = SessionStore()
    session.create()

    def call():
        request = rf.post("/short/", {"amount": "5"}, HTTP_ACCEPT="application/json")
        request.user = hyperid_user
        request.session = session
        return view(request)

    assert call().status_code == 403
    approve_pending(fake_hyperid)
    services.refresh_pending(concurrency=1)
    approval = MFARequest.objects.get()
    MFARequest.objects.update(completed_at=timezone.now() - timedelta(seconds=61))

    assert call().status_code == 403
    assert ran == []
    MFARequest.objects.filter(pk=approval.pk).update(
        completed_at=timezone.now() - timedelta(seconds=30)
    )
    assert call().status_code == 200
    assert ran == ["5"]


def test_an_approval_the_gated_request_learns_itself_is_announced_approved_then_consumed(
    fake_hyperid, browser
):
    """The gate learns the approval and consumes it in one UPDATE; receivers still see
    the request become approved, then consumed, as when the poller learns it."""
    seen = []

    def changed(sender, mfa_request, old_state, new_state, **kwargs):
        seen.append(("changed", old_state, new_state))

    def approved(sender, mfa_request, **kwargs):
        seen.append(("approved",))

    def consumed(sender, mfa_request, **kwargs):
        seen.append(("consumed",))

    submit(browser, "function")
    approve_pending(fake_hyperid)
    connected = [
        (signals.mfa_request_status_changed, changed),
        (signals.mfa_request_approved, approved),
        (signals.mfa_request_consumed, consumed),
    ]
    for signal, receiver in connected:
        signal.connect(receiver)
    try:
        assert submit(browser, "function").status_code == 200
    finally:
        for signal, receiver in connected:
            signal.disconnect(receiver)

    assert seen == [("changed", "pending", "approved"), ("approved",), ("consumed",)]
    assert runs("function") == ["500"]
