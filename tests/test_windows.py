"""Approval windows: one approval lets a run of a scope's actions go without a push,
for one user, in one browser session, until its time, a sign-out, a password change
or a revocation; and never for anything else (docs/gate.md, "Windows")."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.db import DatabaseError, connection
from django.db.models import F
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.views import View

from hyperid_mfa import services
from hyperid_mfa.adapter import MFAAdapter, format_duration
from hyperid_mfa.decorators import require_mfa_approval
from hyperid_mfa.gate.decide import MAX_WINDOW, Gate
from hyperid_mfa.mixins import MFAApprovalRequiredMixin
from hyperid_mfa.models import (
    ApprovalWindow,
    ApprovalWindowQuerySet,
    MFARequest,
    WindowEnd,
    WindowState,
    database_now,
)
from hyperid_mfa.services import windows
from tests import gate_views, window_views
from tests.conftest import approve_pending, link, race
from tests.factories import make_request
from tests.window_views import runs

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
KINDS = ["send", "mixin", "drf", "async"]
CHANGELIST = "admin:hyperid_mfa_approvalwindow_changelist"


@pytest.fixture(autouse=True)
def _forget_runs():
    window_views.RUNS.clear()
    gate_views.RUNS.clear()


def post(client, view, *, query="", extra=None, **data):
    """Send ``data`` (default: amount 500) to the window view named ``view``."""
    url = f"/windows/{view}/{query}"
    data = data or {"amount": "500"}
    if view == "drf":
        return client.post(url, json.dumps(data), content_type="application/json", **(extra or {}))
    return client.post(url, data, **JSON, **(extra or {}))


def assert_push_needed(response):
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "mfa_pending"


def open_window(client, fake, view="send", **data):
    """Send the action, approve the push on the phone, send it again: it runs, and its
    approval opens a window, which is returned."""
    assert_push_needed(post(client, view, **data))
    approve_pending(fake)
    opened = post(client, view, **data)
    assert opened.status_code == 200, opened.content
    return ApprovalWindow.objects.latest("opened_at")


def approved_push(client, fake, *, learnt=True):
    """Send the action and approve its push on the phone; with ``learnt``, the app
    learns of the approval before the next call (as the poller would). The request."""
    assert_push_needed(post(client, "send"))
    approve_pending(fake)
    [approval] = MFARequest.objects.all()
    if learnt:
        services.refresh_request(approval, force=True)
    return approval


def second_browser(user):
    other = Client()
    other.force_login(user)
    return other


# --- what a window lets run --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_one_approval_runs_the_scopes_actions_without_another_push(fake_hyperid, browser, kind):
    open_window(browser, fake_hyperid, kind)

    assert post(browser, kind, amount="900").status_code == 200
    assert post(browser, "limit", amount="50").status_code == 200

    assert fake_hyperid.call_count("start") == 1
    assert runs(kind) == ["500", "900"]
    assert runs("limit") == ["50"]


def test_the_opening_approval_is_consumed_as_any_other(fake_hyperid, browser):
    window = open_window(browser, fake_hyperid)

    assert window.opened_by.is_consumed
    assert window.runs == 0
    assert window.state == WindowState.ACTIVE


def test_the_push_asks_to_allow_the_scope_for_the_windows_duration(fake_hyperid, browser):
    pushed = post(browser, "send").json()["mfa_request"]
    assert pushed["question"] == "Allow payouts for 5 minutes?"
    bound = post(browser, "account", account="42", amount="1").json()["mfa_request"]
    assert bound["question"] == "Allow payouts for 5 minutes: account 42?"
    assert [p.question for p in fake_hyperid.pending()] == [
        "Allow payouts for 5 minutes?",
        "Allow payouts for 5 minutes: account 42?",
    ]


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(1, "1 second"), (90, "90 seconds"), (300, "5 minutes"), (3600, "1 hour"), (7200, "2 hours")],
)
def test_the_window_question_says_its_duration_in_whole_units(seconds, said):
    assert format_duration(seconds) == said


class TerseAdapter(MFAAdapter):
    def format_window_question(self, request, action, values, *, scope, seconds):
        return f"{scope.upper()} for {seconds}s?"


def test_question_and_the_adapter_reword_the_window_question(fake_hyperid, browser, settings):
    assert post(browser, "async").json()["mfa_request"]["question"] == "Allow payout changes?"
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "ADAPTER": "tests.test_windows.TerseAdapter",
    }
    assert post(browser, "send").json()["mfa_request"]["question"] == "PAYOUTS for 300s?"


def test_each_run_inside_a_window_is_audited_with_the_window_and_counted_on_it(
    fake_hyperid, browser, caplog
):
    caplog.set_level(logging.INFO, logger="hyperid_mfa.audit")
    window = open_window(browser, fake_hyperid)
    post(browser, "send", amount="1", extra={"REMOTE_ADDR": "203.0.113.7"})
    post(browser, "limit", amount="2")

    window.refresh_from_db()
    assert window.runs == 2
    assert window.last_run_at is not None
    lines = [r for r in caplog.records if getattr(r, "window_id", None) == str(window.pk)]
    assert [(r.mfa_event, r.action, r.runs) for r in lines] == [
        ("window opened", "payouts.send", 0),
        ("ran in window", "payouts.send", 1),
        ("ran in window", "payouts.change_limit", 2),
    ]
    assert {r.scope for r in lines} == {"payouts"}
    assert {r.user_id for r in lines} == {window.user_id}
    assert {r.mfa_request_id for r in lines} == {str(window.opened_by_id)}


def test_a_window_without_scope_serves_only_its_own_action(fake_hyperid, browser):
    window = open_window(browser, fake_hyperid, "refund")

    assert window.scope == "payouts.refund"
    assert post(browser, "refund", amount="20").status_code == 200
    assert_push_needed(post(browser, "send"))


def test_without_update_returning_a_window_still_runs_counts_and_ends(
    fake_hyperid, browser, hyperid_user, monkeypatch
):
    from hyperid_mfa.services import windows

    monkeypatch.setattr(windows, "can_update_returning", lambda using: False)
    window = open_window(browser, fake_hyperid)

    assert post(browser, "limit", amount="50").status_code == 200
    browser.logout()
    browser.force_login(hyperid_user)
    assert_push_needed(post(browser, "limit", amount="60"))

    window.refresh_from_db()
    assert (window.runs, window.end_reason) == (1, WindowEnd.LOGOUT)


# --- what a window does not let run ---------------------------------------------------------


def test_a_window_cannot_be_used_from_another_session_of_the_same_user(
    fake_hyperid, browser, hyperid_user
):
    open_window(browser, fake_hyperid)

    assert_push_needed(post(second_browser(hyperid_user), "send", amount="900"))
    assert runs("send") == ["500"]


def test_signing_out_ends_the_window(fake_hyperid, browser, hyperid_user):
    window = open_window(browser, fake_hyperid)

    browser.logout()
    browser.force_login(hyperid_user)

    assert_push_needed(post(browser, "send", amount="900"))
    assert runs("send") == ["500"]
    window.refresh_from_db()
    assert window.end_reason == WindowEnd.LOGOUT
    assert window.state == WindowState.ENDED


def test_another_user_cannot_use_the_window_even_in_the_same_browser(
    fake_hyperid, browser, other_user
):
    link(fake_hyperid, other_user)
    open_window(browser, fake_hyperid)

    browser.force_login(other_user)

    assert_push_needed(post(browser, "send", amount="900"))
    assert runs("send") == ["500"]


def test_another_user_with_the_openers_session_key_finds_no_window(
    fake_hyperid, browser, hyperid_user, other_user
):
    open_window(browser, fake_hyperid)
    session_key = browser.session.session_key
    assert windows.use_window(
        windows.window_key(hyperid_user, session_key, "payouts", 300), "payouts.send"
    )

    key = windows.window_key(other_user, session_key, "payouts", 300)

    assert windows.use_window(key, "payouts.send") is None


def keep_signed_in(client, user):
    """Accept the user's new password in this session, keeping its key (as a project
    that does not cycle the key on a password change would)."""
    session = client.session
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()


def test_a_password_change_ends_the_window_even_in_a_session_that_stays_signed_in(
    fake_hyperid, browser, hyperid_user
):
    window = open_window(browser, fake_hyperid)

    hyperid_user.set_password("a new password")
    hyperid_user.save()
    keep_signed_in(browser, hyperid_user)

    assert_push_needed(post(browser, "send", amount="900"))
    window.refresh_from_db()
    assert window.end_reason == WindowEnd.PASSWORD


def test_a_password_changed_behind_the_apps_back_makes_the_window_unusable(
    fake_hyperid, browser, hyperid_user, django_user_model
):
    window = open_window(browser, fake_hyperid)

    # No save(), no signal: only the HMAC of the session auth hash can tell.
    django_user_model.objects.filter(pk=hyperid_user.pk).update(password=make_password("new"))
    hyperid_user.refresh_from_db()
    keep_signed_in(browser, hyperid_user)

    assert_push_needed(post(browser, "send", amount="900"))
    assert_push_needed(post(browser, "send", amount="100"))
    assert runs("send") == ["500"]
    # Nothing told the app, so nothing records an end: each use is refused instead.
    window.refresh_from_db()
    assert window.ended_at is None


def test_saving_the_user_without_a_new_password_leaves_the_window_open(
    fake_hyperid, browser, hyperid_user
):
    open_window(browser, fake_hyperid)

    hyperid_user.first_name = "Alice"
    hyperid_user.save()

    assert post(browser, "send", amount="900").status_code == 200


def revoke(admin_client, windows, **extra):
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "revoke", "_selected_action": [str(w.pk) for w in windows]},
        follow=True,
        **extra,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def test_a_window_revoked_in_the_admin_runs_nothing_more(
    fake_hyperid, browser, admin_client, admin_user, caplog
):
    caplog.set_level(logging.INFO, logger="hyperid_mfa.audit")
    window = open_window(browser, fake_hyperid)

    notes = revoke(admin_client, [window], REMOTE_ADDR="203.0.113.9")

    assert notes == ["Revoked 1 window: its actions need a new approval."]
    assert_push_needed(post(browser, "send", amount="900"))
    window.refresh_from_db()
    assert window.end_reason == WindowEnd.REVOKED
    [line] = [r for r in caplog.records if r.getMessage().startswith("MFA window ended")]
    assert line.mfa_event == (
        f"window ended: revoked by staff user {admin_user.pk} ({admin_user.username})"
    )
    assert line.window_id == str(window.pk)
    assert line.client_ip == "203.0.113.9"


def expire(window):
    """Make ``window`` one that ended a second ago, by the database's clock (opened
    within its action's window= of 300 seconds, so that only its end decides)."""
    now = database_now()
    ApprovalWindow.objects.filter(pk=window.pk).update(
        opened_at=now - timedelta(seconds=2), expires_at=now - timedelta(seconds=1)
    )


def test_a_window_ends_at_its_time_by_the_database_clock(fake_hyperid, browser):
    expire(open_window(browser, fake_hyperid))

    assert_push_needed(post(browser, "send", amount="900"))
    assert runs("send") == ["500"]


def skew_clock(monkeypatch, offset):
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + offset)


def test_an_app_server_an_hour_slow_does_not_use_an_expired_window(
    fake_hyperid, browser, monkeypatch
):
    expire(open_window(browser, fake_hyperid))
    skew_clock(monkeypatch, -timedelta(hours=1))

    assert_push_needed(post(browser, "send", amount="900"))


def test_an_app_server_an_hour_fast_still_runs_inside_a_fresh_window(
    fake_hyperid, browser, monkeypatch
):
    open_window(browser, fake_hyperid)
    skew_clock(monkeypatch, timedelta(hours=1))

    assert post(browser, "send", amount="900").status_code == 200


def test_an_explicit_bind_runs_inside_the_window_only_with_the_windows_values(
    fake_hyperid, browser
):
    open_window(browser, fake_hyperid, "account", account="42", amount="1")

    # The amount is not bound: the window's account is.
    assert post(browser, "account", account="42", amount="900").status_code == 200
    assert_push_needed(post(browser, "account", account="43", amount="1"))
    # The bound value moved to the query string is another binding.
    assert_push_needed(post(browser, "account", amount="1", query="?account=42"))
    # Actions with the default binding run with any values.
    assert post(browser, "send", amount="5").status_code == 200
    assert runs("account") == ["1", "900"]


def test_an_explicit_bind_needs_a_window_opened_with_the_same_binding(fake_hyperid, browser):
    open_window(browser, fake_hyperid, "send")

    assert_push_needed(post(browser, "account", account="42", amount="1"))
    assert runs("account") == []


def test_a_window_of_one_scope_does_not_run_actions_of_another(fake_hyperid, browser):
    open_window(browser, fake_hyperid)

    assert_push_needed(post(browser, "export", amount="1"))
    assert runs("export") == []


def test_an_action_without_window_needs_its_own_approval_inside_a_window(fake_hyperid, browser):
    open_window(browser, fake_hyperid)

    assert_push_needed(post(browser, "close", amount="1"))
    assert runs("close") == []


def test_an_action_uses_a_window_only_within_its_own_window_of_the_approval(fake_hyperid, browser):
    window = open_window(browser, fake_hyperid)
    assert post(browser, "urgent", amount="1").status_code == 200

    ApprovalWindow.objects.filter(pk=window.pk).update(
        opened_at=F("opened_at") - timedelta(minutes=2)
    )

    assert_push_needed(post(browser, "urgent", amount="2"))
    assert post(browser, "send", amount="3").status_code == 200
    assert runs("urgent") == ["1"]


def test_a_request_without_a_session_neither_opens_nor_uses_a_window(fake_hyperid, hyperid_user):
    gate = Gate("payouts.send", window=300, scope="payouts")
    request = RequestFactory().post("/windows/send/", {"amount": "500"})
    request.user = hyperid_user

    assert not gate.check(request).allowed
    approve_pending(fake_hyperid)
    assert gate.check(request).allowed

    assert not ApprovalWindow.objects.exists()
    assert not gate.check(request).allowed


def test_a_window_that_cannot_be_checked_is_no_window(fake_hyperid, browser, monkeypatch):
    open_window(browser, fake_hyperid)

    def database_down(self, **values):
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(ApprovalWindowQuerySet, "update_returning", database_down)

    assert_push_needed(post(browser, "send", amount="900"))
    assert runs("send") == ["500"]


# --- declaring a window ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"window": 0}, ValueError, "1 to 14400 seconds"),
        ({"window": -300}, ValueError, "1 to 14400 seconds"),
        ({"window": MAX_WINDOW + 1}, ValueError, "1 to 14400 seconds"),
        ({"window": 300.0}, TypeError, "whole seconds"),
        ({"window": "300"}, TypeError, "whole seconds"),
        ({"window": True}, TypeError, "whole seconds"),
        ({"window": 300, "scope": ""}, ValueError, "non-empty string"),
        ({"window": 300, "scope": "  "}, ValueError, "non-empty string"),
        ({"window": 300, "scope": "p" * 201}, ValueError, "at most 200"),
        ({"window": 300, "scope": ["payouts"]}, TypeError, "scope= takes a string"),
        ({"scope": "payouts"}, TypeError, "give window= as well"),
    ],
)
def test_a_wrong_window_or_scope_is_refused_where_the_view_is_declared(options, error, message):
    with pytest.raises(error, match=message):

        @require_mfa_approval("payouts.send", **options)
        def view(request): ...


def test_the_longest_window_is_four_hours():
    @require_mfa_approval("payouts.send", window=4 * 60 * 60, scope="payouts")
    def view(request): ...

    assert view.mfa_gate.window == MAX_WINDOW == 14400


def test_a_wrong_window_on_a_class_based_view_is_refused_by_as_view():
    class PayoutView(MFAApprovalRequiredMixin, View):
        mfa_window = 0
        mfa_scope = "payouts"

    with pytest.raises(ValueError, match="window="):
        PayoutView.as_view()


# --- what a window costs ---------------------------------------------------------------------


def queries_of(client, path, **data):
    with CaptureQueriesContext(connection) as captured:
        response = client.post(path, data, **JSON)
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries]


def test_a_run_inside_a_window_costs_one_query_more_than_the_bare_view(fake_hyperid, browser):
    open_window(browser, fake_hyperid)
    bare = queries_of(browser, "/gate/plain/", amount="900", payee="Bob")
    gated = queries_of(browser, "/windows/send/", amount="900", payee="Bob")

    assert len(gated) - len(bare) == 1, "\n".join(gated)


def test_the_call_that_opens_a_window_costs_four_queries_more_than_the_bare_view(
    fake_hyperid, browser
):
    approved_push(browser, fake_hyperid)
    bare = queries_of(browser, "/gate/plain/", amount="500")
    gated = queries_of(browser, "/windows/send/", amount="500")

    # The window looked for, the approval consumed (as without a window: 1), the
    # database's clock read and the window written.
    assert len(gated) - len(bare) == 4, "\n".join(gated)
    assert ApprovalWindow.objects.count() == 1


def test_a_gate_without_window_never_queries_the_windows_table(fake_hyperid, browser):
    data = {"amount": "500", "payee": "Bob"}
    with CaptureQueriesContext(connection) as captured:
        browser.post("/gate/function/", data, **JSON)
        approve_pending(fake_hyperid)
        ran = browser.post("/gate/function/", data, **JSON)
    assert ran.status_code == 200
    table = ApprovalWindow._meta.db_table
    assert not [q["sql"] for q in captured.captured_queries if table in q["sql"]]


def test_purging_the_opening_request_deletes_its_window_and_counts_requests_only(user):
    window = stored_window(user)
    MFARequest.objects.filter(pk=window.opened_by_id).update(
        created_at=timezone.now() - timedelta(days=40)
    )

    assert services.purge_finished("30d") == 1
    assert not ApprovalWindow.objects.exists()


# --- the admin -------------------------------------------------------------------------------


def stored_window(user, *, scope="payouts", **fields):
    now = database_now()
    values = {
        "user": user,
        "scope": scope,
        "opened_by": make_request(user, "consumed"),
        "session_digest": "s" * 64,
        "auth_digest": "a" * 64,
        "opened_at": now,
        "expires_at": now + timedelta(minutes=5),
    }
    return ApprovalWindow.objects.create(**{**values, **fields})


def listed(admin_client, **params):
    response = admin_client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_the_admin_lists_active_windows_apart_from_expired_and_ended_ones(admin_client, user):
    now = database_now()
    active = stored_window(user, runs=3)
    expired = stored_window(
        user, opened_at=now - timedelta(hours=1), expires_at=now - timedelta(minutes=55)
    )
    ended = stored_window(user, ended_at=now, end_reason=WindowEnd.LOGOUT)

    assert listed(admin_client, state="active") == [active]
    assert listed(admin_client, state="expired") == [expired]
    assert listed(admin_client, state="ended") == [ended]
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "payments.withdraw" in html  # the action whose approval opened it
    assert "Signed out" in html
    assert "s" * 64 not in html


def test_revoke_leaves_windows_that_already_ended_as_they_are(admin_client, user):
    active = stored_window(user)
    ended = stored_window(user, ended_at=database_now(), end_reason=WindowEnd.LOGOUT)

    notes = revoke(admin_client, [active, ended])

    assert notes == [
        "Revoked 1 window: its actions need a new approval.",
        "1 window had already ended and was left as it is.",
    ]
    ended.refresh_from_db()
    assert ended.end_reason == WindowEnd.LOGOUT


def test_nobody_can_add_or_edit_a_window_in_the_admin(admin_client, user):
    window = stored_window(user)
    add = admin_client.get(reverse("admin:hyperid_mfa_approvalwindow_add"))
    change = admin_client.post(
        reverse("admin:hyperid_mfa_approvalwindow_change", args=[window.pk]),
        {"expires_at_0": "2099-01-01", "expires_at_1": "00:00:00"},
    )
    assert add.status_code == 403
    assert change.status_code == 403
    assert ApprovalWindow.objects.get(pk=window.pk).expires_at == window.expires_at


# --- races (PostgreSQL) ----------------------------------------------------------------------


@pytest.fixture
def no_rate_limit(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}


def twin_of(browser):
    """Another connection of the same browser: the same session cookie."""
    from django.conf import settings

    twin = Client()
    name = settings.SESSION_COOKIE_NAME
    twin.cookies[name] = browser.cookies[name].value
    return twin


def first_uses_at_once(browser, count=8):
    twins = [twin_of(browser) for _ in range(count)]
    responses = race([lambda twin=twin: post(twin, "send") for twin in twins])
    return [r.status_code for r in responses]


def assert_one_window_and_every_run_accounted_for(statuses, approval):
    [window] = ApprovalWindow.objects.all()
    assert window.opened_by_id == approval.pk
    assert MFARequest.objects.get(pk=approval.pk).is_consumed
    assert MFARequest.objects.filter(consumed_at__isnull=False).count() == 1
    # The approval ran the action once; any other run came after the window opened,
    # and is counted on it (as a click inside the window would be).
    assert len(runs("send")) == statuses.count(200) == 1 + window.runs
    assert set(statuses) <= {200, 403}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_uses_of_a_known_approval_consume_it_once_and_open_one_window(
    fake_hyperid, browser, no_rate_limit
):
    approval = approved_push(browser, fake_hyperid)

    statuses = first_uses_at_once(browser)

    assert_one_window_and_every_run_accounted_for(statuses, approval)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_uses_that_learn_the_approval_from_hyperid_open_one_window(
    fake_hyperid, browser, no_rate_limit
):
    approval = approved_push(browser, fake_hyperid, learnt=False)

    statuses = first_uses_at_once(browser)

    assert_one_window_and_every_run_accounted_for(statuses, approval)
    # One status-get learnt the approval for all of them. (A use that came before the
    # window opened and after the approval was consumed sends a push of its own,
    # which a later use may ask about: that is another transaction.)
    asked = [
        call
        for call in fake_hyperid.calls
        if call.name == "status-get" and call.transaction_id == approval.transaction_id
    ]
    assert len(asked) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_approval_opens_one_window_however_many_try_at_once(user):
    approval = make_request(user, "consumed")
    key = windows.window_key(user, "the-session-key", "payouts", 300)

    opened = race([lambda: windows.open_window(approval, key)] * 8)

    assert sum(isinstance(o, ApprovalWindow) for o in opened) == 1
    assert opened.count(None) == 7  # every other caller was told it did not open one
    assert ApprovalWindow.objects.filter(opened_by=approval).count() == 1
