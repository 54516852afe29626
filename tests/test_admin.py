"""The Django admin: what staff see, what they can do, and what nobody can do."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse
from django.utils import timezone

from hyperid_mfa import admin as mfa_admin
from hyperid_mfa import services
from hyperid_mfa.admin import base as admin_base
from hyperid_mfa.constants import Status
from hyperid_mfa.models import HyperIDToken, MFARequest, State
from hyperid_mfa.tokens.store import decrypt
from tests.factories import make_request

# These tests route only the admin, so that they do not depend on the app's other URLs.
urlpatterns = [path("admin/", admin.site.urls)]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

CHANGELIST = "admin:hyperid_mfa_mfarequest_changelist"


def change_url(request: MFARequest) -> str:
    return reverse("admin:hyperid_mfa_mfarequest_change", args=[request.pk])


def listed(client, **params) -> list[MFARequest]:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def run_action(client, action: str, requests, **extra):
    response = client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [str(r.pk) for r in requests]},
        follow=True,
        **extra,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def started(user, **kwargs) -> MFARequest:
    return services.start_request(user, "payments.withdraw", question="Withdraw 500 EUR?", **kwargs)


@pytest.fixture
def no_rate_limit(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_transaction_user_action_state_and_times(admin_client, user):
    request = make_request(user, "approved", action="payments.withdraw")
    response = admin_client.get(reverse(CHANGELIST))
    html = response.content.decode()
    assert response.status_code == 200
    for text in (str(request.transaction_id), "alice", "payments.withdraw", "Approved"):
        assert text in html
    assert "Refresh from HyperID" in html
    assert "Cancel" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "0"}, {"pending"}),
        ({"state": "approved"}, {"approved"}),
        ({"state": "consumed"}, {"consumed"}),
        ({"state": "denied"}, {"denied"}),
        ({"action": "payments.transfer"}, {"canceled"}),
    ],
)
def test_filters_narrow_the_list_by_status_outcome_and_action(admin_client, user, params, expected):
    for state in ("pending", "approved", "consumed", "denied"):
        make_request(user, state)
    make_request(user, "canceled", action="payments.transfer")
    assert {r.state for r in listed(admin_client, **params)} == expected


def test_the_action_filter_offers_each_action_once_and_narrows_the_list(
    admin_client, user, other_user
):
    make_request(user, "approved", action="payments.withdraw")
    make_request(other_user, "denied", action="payments.withdraw")
    transfer = make_request(user, "canceled", action="payments.transfer")
    response = admin_client.get(reverse(CHANGELIST))
    changelist = response.context["cl"]
    (spec,) = [spec for spec in changelist.filter_specs if spec.title == "action"]
    offered = [choice["display"] for choice in spec.choices(changelist)]
    assert offered == ["All", "payments.transfer", "payments.withdraw"]
    assert listed(admin_client, action__exact="payments.transfer") == [transfer]


def test_the_changelist_counts_the_table_once(admin_client, user):
    make_request(user, "approved")
    with CaptureQueriesContext(connection) as captured:
        listed(admin_client)
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1, counts
    # No date hierarchy: nothing reads the date of every row for its links.
    assert not [q["sql"] for q in captured.captured_queries if "DISTINCT" in q["sql"].upper()]


@pytest.mark.postgres
def test_a_large_table_is_listed_with_its_estimated_size_instead_of_a_count(
    admin_client, user, monkeypatch
):
    for _ in range(3):
        make_request(user, "approved")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {MFARequest._meta.db_table}")
    monkeypatch.setattr(mfa_admin, "ESTIMATED_COUNT_ABOVE", 2)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse(CHANGELIST))
    assert response.context["cl"].result_count == 3  # the statistics' figure
    assert not [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    # A filter counts exactly.
    response = admin_client.get(reverse(CHANGELIST), {"status__exact": Status.COMPLETED})
    assert response.context["cl"].result_count == 3


def test_the_date_filter_and_hierarchy_narrow_the_list_to_a_period(admin_client, user):
    old = make_request(user, "expired", created_at=timezone.now() - timedelta(days=40))
    recent = make_request(user, "expired")
    # What the "Past 7 days" link of the date filter sends.
    week_ago = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    assert listed(admin_client, created_at__gte=str(week_ago - timedelta(days=7))) == [recent]
    day = timezone.localtime(old.created_at)
    hierarchy = {"created_at__year": day.year, "created_at__month": day.month}
    assert listed(admin_client, **hierarchy, created_at__day=day.day) == [old]


def test_search_finds_a_request_by_transaction_id_user_action_or_request_id(
    admin_client, user, other_user
):
    alices = make_request(user, "approved", action="payments.withdraw")
    bobs = make_request(other_user, "denied", action="profile.email.change")
    assert listed(admin_client, q=str(bobs.transaction_id)) == [bobs]
    assert listed(admin_client, q=str(alices.pk)) == [alices]
    assert listed(admin_client, q="alice") == [alices]
    assert listed(admin_client, q="bob@example") == [bobs]
    assert listed(admin_client, q="email.change") == [bobs]
    assert listed(admin_client, q="no-such-thing") == []


@pytest.mark.parametrize("term", ["\u00b2", "\u2460", "\u0661\u0662", "9" * 30])
def test_a_search_for_digits_of_other_scripts_lists_nothing_and_is_not_a_500(
    admin_client, user, term
):
    # str.isdigit() takes "²" and "①", which int() refuses; "١٢" int() reads as 12.
    twelve = make_request(user, "approved")
    MFARequest.objects.filter(pk=twelve.pk).update(transaction_id=12)
    assert listed(admin_client, q=term) == []
    assert listed(admin_client, q="12") == [MFARequest.objects.get(pk=twelve.pk)]


def test_search_uses_the_user_models_own_username_and_email_fields(monkeypatch):
    class Meta:
        @staticmethod
        def get_field(name):
            if name != "login":
                raise FieldDoesNotExist(name)

    custom_user = SimpleNamespace(
        USERNAME_FIELD="login", get_email_field_name=lambda: "email", _meta=Meta
    )
    monkeypatch.setattr(admin_base, "get_user_model", lambda: custom_user)
    assert admin_base.user_search_fields() == ["user__login"]
    custom_user.get_email_field_name = lambda: "login"
    assert admin_base.user_search_fields() == ["user__login"]


# --- nothing is written through the admin --------------------------------------------------------


def test_nobody_can_add_a_request_not_even_a_superuser(admin_client):
    response = admin_client.get(reverse("admin:hyperid_mfa_mfarequest_add"))
    assert response.status_code == 403
    assert (
        reverse("admin:hyperid_mfa_mfarequest_add")
        not in admin_client.get(reverse(CHANGELIST)).content.decode()
    )


def test_the_change_page_shows_every_field_read_only(admin_client, user):
    request = make_request(user, "pending")
    response = admin_client.get(change_url(request))
    html = response.content.decode()
    assert response.status_code == 200
    assert str(request.transaction_id) in html
    assert "Withdraw 500 EUR?" in html
    for field in ("status", "complete_result", "consumed_at", "user", "transaction_id"):
        assert f'name="{field}"' not in html
    assert 'name="_save"' not in html


def test_a_forged_post_to_the_change_form_does_not_turn_a_request_into_an_approval(
    admin_client, user
):
    request = make_request(user, "pending")
    forged = {
        "status": str(Status.COMPLETED),
        "complete_result": "0",
        "completed_at_0": timezone.now().date().isoformat(),
        "completed_at_1": "12:00:00",
        "action": "payments.withdraw",
        "_save": "Save",
    }
    response = admin_client.post(change_url(request), forged)
    assert response.status_code == 403
    stored = MFARequest.objects.get(pk=request.pk)
    assert stored.state == State.PENDING
    assert stored.complete_result is None
    assert services.consume_approval(user, "payments.withdraw") is None


def test_a_finished_request_can_be_deleted_a_pending_one_cannot(admin_client, user, caplog):
    caplog.set_level(logging.INFO, logger="hyperid_mfa")
    pending = make_request(user, "pending")
    denied = make_request(user, "denied")
    delete = "admin:hyperid_mfa_mfarequest_delete"
    assert admin_client.post(reverse(delete, args=[pending.pk]), {"post": "yes"}).status_code == 403
    assert admin_client.post(reverse(delete, args=[denied.pk]), {"post": "yes"}).status_code == 302
    assert list(MFARequest.objects.all()) == [pending]
    [line] = [r for r in caplog.records if getattr(r, "mfa_event", "").startswith("admin delete")]
    assert line.mfa_request_id == str(denied.pk)


def test_a_user_with_a_pending_request_cannot_be_deleted_until_it_ends(admin_client, user):
    pending = make_request(user, "pending")
    make_request(user, "approved")
    delete_user = reverse("admin:auth_user_delete", args=[user.pk])

    assert admin_client.post(delete_user, {"post": "yes"}).status_code == 403
    services.cancel_request(pending)
    assert admin_client.post(delete_user, {"post": "yes"}).status_code == 302
    assert not MFARequest.objects.exists()


def test_bulk_delete_refuses_a_selection_that_holds_a_pending_request(admin_client, user):
    pending = make_request(user, "pending")
    denied = make_request(user, "denied")
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [pending.pk, denied.pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert MFARequest.objects.count() == 2


# --- actions -------------------------------------------------------------------------------------


def test_refresh_learns_each_users_answer_and_says_what_changed(
    admin_client, fake_hyperid, hyperid_user, no_rate_limit
):
    approved, denied, waiting = (started(hyperid_user) for _ in range(3))
    fake_hyperid.approve(approved.transaction_id)
    fake_hyperid.deny(denied.transaction_id)
    finished = make_request(hyperid_user, "expired")

    notes = run_action(admin_client, "refresh_from_hyperid", [approved, denied, waiting, finished])

    states = {r.pk: r.state for r in MFARequest.objects.all()}
    assert states[approved.pk] == State.APPROVED
    assert states[denied.pk] == State.DENIED
    assert states[waiting.pk] == State.PENDING
    assert notes == [
        "Refreshed 3 requests (Pending: 1, Approved: 1, Denied: 1).",
        "1 request was already finished; HyperID was not asked about it.",
    ]
    assert fake_hyperid.call_count("status-get") == 3


def test_refresh_ignores_the_poll_interval_an_operator_asked_now(
    admin_client, fake_hyperid, hyperid_user
):
    request = started(hyperid_user)
    services.refresh_request(request)  # just checked: a poller would wait
    fake_hyperid.approve(request.transaction_id)
    run_action(admin_client, "refresh_from_hyperid", [request])
    assert MFARequest.objects.get(pk=request.pk).state == State.APPROVED


def test_refresh_reports_each_failure_as_a_message_not_an_error_page(
    admin_client, fake_hyperid, hyperid_user, other_user, no_rate_limit
):
    # other_user has no HyperID token: its request cannot be checked.
    orphan = make_request(other_user, "pending")
    request = started(hyperid_user)
    fake_hyperid.approve(request.transaction_id)

    notes = run_action(admin_client, "refresh_from_hyperid", [orphan, request])

    assert (
        f"Request {orphan.transaction_id} could not be refreshed: "
        "no HyperID token is stored for this user"
    ) in notes
    assert "Refreshed 1 request (Approved: 1)." in notes
    assert MFARequest.objects.get(pk=orphan.pk).state == State.PENDING


def test_refresh_stops_asking_once_hyperid_is_down(
    admin_client, fake_hyperid, hyperid_user, no_rate_limit
):
    requests = [started(hyperid_user) for _ in range(3)]
    fake_hyperid.inject("http_503", call="status-get", times=None)

    notes = run_action(admin_client, "refresh_from_hyperid", requests)

    assert len([n for n in notes if "could not be refreshed" in n]) == 1
    assert "HyperID is unavailable: 2 more requests were not asked about." in notes
    assert all(r.state == State.PENDING for r in MFARequest.objects.all())
    assert MFARequest.objects.exclude(last_error="").count() == 1


def test_refresh_of_too_many_pending_requests_is_refused_with_a_hint(
    admin_client, user, monkeypatch
):
    monkeypatch.setattr(mfa_admin, "ADMIN_REFRESH_LIMIT", 2)
    requests = [make_request(user, "pending") for _ in range(3)]
    notes = run_action(admin_client, "refresh_from_hyperid", requests)
    assert notes == [
        "Select at most 2 pending requests to refresh at once (3 selected); "
        "the poller follows the others."
    ]
    assert not MFARequest.objects.filter(check_count__gt=0).exists()


def test_cancel_withdraws_pending_pushes_and_leaves_finished_requests_alone(
    admin_client, fake_hyperid, hyperid_user, no_rate_limit
):
    pending = started(hyperid_user)
    approved = make_request(hyperid_user, "approved")

    notes = run_action(admin_client, "cancel", [pending, approved])

    assert MFARequest.objects.get(pk=pending.pk).state == State.CANCELED
    assert MFARequest.objects.get(pk=approved.pk).state == State.APPROVED
    assert fake_hyperid.transaction(pending.transaction_id).status == Status.CANCELED
    assert notes == [
        "Canceled 1 request; its push was withdrawn.",
        "1 request was already finished and was left as it is.",
    ]


def test_admin_actions_are_in_the_audit_log_with_the_staff_member_and_ip(
    admin_client, admin_user, fake_hyperid, hyperid_user, caplog, no_rate_limit
):
    caplog.set_level(logging.INFO, logger="hyperid_mfa")
    first, second = started(hyperid_user), started(hyperid_user)
    run_action(admin_client, "refresh_from_hyperid", [first], REMOTE_ADDR="203.0.113.7")
    run_action(admin_client, "cancel", [second], REMOTE_ADDR="203.0.113.7")

    lines = [r for r in caplog.records if getattr(r, "mfa_event", None)]
    by_event = {
        r.mfa_event: r for r in lines if r.mfa_request_id in (str(first.pk), str(second.pk))
    }
    staff = f"staff user {admin_user.pk} ({admin_user.username})"
    assert by_event[f"admin refresh by {staff}"].client_ip == "203.0.113.7"
    assert by_event[f"admin cancel by {staff}"].client_ip == "203.0.113.7"
    canceled = by_event["pending -> canceled"]
    assert canceled.client_ip == "203.0.113.7"
    assert canceled.transaction_id == second.transaction_id
    assert canceled.user_id == hyperid_user.pk
    assert canceled.action == "payments.withdraw"


def test_staff_with_view_permission_only_can_look_but_not_act(client, django_user_model, user):
    viewer = django_user_model.objects.create_user("viewer", "v@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_mfarequest"))
    client.force_login(viewer)
    request = make_request(user, "pending")

    html = client.get(reverse(CHANGELIST)).content.decode()
    assert str(request.transaction_id) in html
    assert "Refresh from HyperID" not in html
    response = client.post(
        reverse(CHANGELIST), {"action": "cancel", "_selected_action": [request.pk]}, follow=True
    )
    # With no action offered, Django ignores a posted one and shows the list again.
    assert response.status_code == 200
    assert list(response.context["messages"]) == []
    assert MFARequest.objects.get(pk=request.pk).state == State.PENDING


# --- stored tokens -------------------------------------------------------------------------------


def test_token_admin_shows_whose_token_and_until_when_never_the_token(
    admin_client, fake_hyperid, hyperid_user
):
    row = HyperIDToken.objects.get(user=hyperid_user)
    secrets = [
        row.access_token_encrypted,
        row.refresh_token_encrypted,
        decrypt(row.access_token_encrypted),
        decrypt(row.refresh_token_encrypted),
    ]
    pages = [
        admin_client.get(reverse("admin:hyperid_mfa_hyperidtoken_changelist")),
        admin_client.get(reverse("admin:hyperid_mfa_hyperidtoken_change", args=[row.pk])),
        admin_client.get(reverse("admin:hyperid_mfa_hyperidtoken_changelist"), {"q": "alice"}),
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert "alice" in html
        for secret in secrets:
            # Fernet ciphertext and JWTs are long; a prefix is enough to catch a leak.
            assert secret[:24] not in html
    assert "Access expires at" in pages[1].content.decode()


def test_token_admin_cannot_add_or_edit_a_token(admin_client, fake_hyperid, hyperid_user):
    row = HyperIDToken.objects.get(user=hyperid_user)
    before = (row.access_token_encrypted, row.access_expires_at)
    assert admin_client.get(reverse("admin:hyperid_mfa_hyperidtoken_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:hyperid_mfa_hyperidtoken_change", args=[row.pk]),
        {"access_token_encrypted": "forged", "access_expires_at_0": "2099-01-01"},
    )
    assert response.status_code == 403
    row.refresh_from_db()
    assert (row.access_token_encrypted, row.access_expires_at) == before


def test_deleting_stored_tokens_signs_the_user_out_and_is_audited(
    admin_client, admin_user, fake_hyperid, hyperid_user, caplog
):
    caplog.set_level(logging.INFO, logger="hyperid_mfa")
    row = HyperIDToken.objects.get(user=hyperid_user)
    delete = reverse("admin:hyperid_mfa_hyperidtoken_delete", args=[row.pk])

    response = admin_client.post(delete, {"post": "yes"}, REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 302
    assert not HyperIDToken.objects.exists()
    [line] = [r for r in caplog.records if "HyperID tokens" in getattr(r, "mfa_event", "")]
    assert line.mfa_event == (
        f"admin delete of the HyperID tokens by staff user {admin_user.pk} (admin)"
    )
    assert line.user_id == hyperid_user.pk
    assert line.client_ip == "203.0.113.9"
