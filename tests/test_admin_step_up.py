"""Step-up in the Django admin: ``MFAProtectedAdminMixin`` on the test shop's admin.

Staff change a shop's IBAN, add and delete bank accounts inline, delete shops, edit
payments in the change list and run bulk actions on them. Each protected operation
answers the approval page until the staff member's phone (FakeHyperID) approves that
very operation; then the re-submitted form does it, once.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import django
import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from hyperid_mfa import services
from hyperid_mfa.admin import MFAProtectedAdminMixin
from hyperid_mfa.models import ApprovalWindow, MFARequest, State, database_now
from tests.conftest import approve_pending, link, race
from tests.shop.admin import PaymentAdmin, ShopAdmin
from tests.shop.models import BankAccount, Payment, Shop

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"
NEW_IBAN = "DE44500105175407324931"
OTHER_IBAN = "FR1420041010050500013M02606"


@pytest.fixture(autouse=True)
def _no_push_limit(settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}


@pytest.fixture
def staff(hyperid_user):
    hyperid_user.is_staff = hyperid_user.is_superuser = True
    hyperid_user.save()
    return hyperid_user


@pytest.fixture
def other_staff(fake_hyperid, other_user):
    other_user.is_staff = other_user.is_superuser = True
    other_user.save()
    link(fake_hyperid, other_user)
    return other_user


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def client(staff) -> Client:
    return signed_in(staff)


@pytest.fixture
def shop() -> Shop:
    return Shop.objects.create(name="Acme", iban=IBAN)


@pytest.fixture
def payments(shop) -> list[Payment]:
    return [Payment.objects.create(shop=shop, amount=Decimal(10 * n)) for n in range(1, 15)]


def change_url(shop: Shop) -> str:
    return reverse("admin:shop_shop_change", args=[shop.pk])


def shop_form(shop: Shop, accounts=(), extra=(), **changes) -> dict[str, object]:
    """The change form as the admin renders it for ``shop``, with ``changes``;
    ``accounts`` are (account, changes) of existing rows, ``extra`` new rows."""
    data: dict[str, object] = {
        "name": shop.name,
        "iban": shop.iban,
        "notes": shop.notes,
        "accounts-TOTAL_FORMS": str(len(accounts) + len(extra)),
        "accounts-INITIAL_FORMS": str(len(accounts)),
        "accounts-MIN_NUM_FORMS": "0",
        "accounts-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for index, (account, row) in enumerate(accounts):
        data[f"accounts-{index}-id"] = str(account.pk)
        data[f"accounts-{index}-shop"] = str(shop.pk)
        data[f"accounts-{index}-label"] = row.get("label", account.label)
        data[f"accounts-{index}-iban"] = row.get("iban", account.iban)
        if row.get("delete"):
            data[f"accounts-{index}-DELETE"] = "on"
    for index, row in enumerate(extra, start=len(accounts)):
        data[f"accounts-{index}-shop"] = str(shop.pk) if shop.pk else ""
        data[f"accounts-{index}-label"] = row["label"]
        data[f"accounts-{index}-iban"] = row["iban"]
    data.update(changes)
    return data


def approved_iban_change(fake, client: Client, shop: Shop) -> dict[str, object]:
    """Ask to change ``shop``'s IBAN to NEW_IBAN and approve on the phone; the form."""
    form = shop_form(shop, iban=NEW_IBAN)
    assert client.post(change_url(shop), form).status_code == 403
    approve_pending(fake)
    return form


def pushed_questions(fake) -> list[str]:
    return [push.question for push in fake.pending()]


def resubmitted_fields(response) -> dict[str, list[str]]:
    """The fields the approval page's script sends again once approved."""
    config = json.loads(
        re.search(
            r'<script id="hyperid-mfa-config" type="application/json">(.*?)</script>',
            response.content.decode(),
            re.DOTALL,
        ).group(1)
    )
    fields: dict[str, list[str]] = {}
    for name, value in config["resubmit"]["fields"]:
        fields.setdefault(name, []).append(value)
    return fields


# --- the change form ------------------------------------------------------------------------


def test_showing_the_change_form_sends_no_push(fake_hyperid, client, shop):
    response = client.get(change_url(shop))

    assert response.status_code == 200
    assert fake_hyperid.pending() == []
    assert not MFARequest.objects.exists()


def test_a_new_iban_answers_the_approval_page_in_the_admin_and_saves_nothing(
    fake_hyperid, client, shop
):
    response = client.post(change_url(shop), shop_form(shop, iban=NEW_IBAN))

    assert response.status_code == 403
    [push] = fake_hyperid.pending()
    assert push.question == f"Change IBAN of Acme from {IBAN} to {NEW_IBAN}?"
    page = response.content.decode()
    assert push.code in page
    assert 'id="header"' in page  # the admin's own layout
    assert "hyperid_mfa/approval.js" in page
    # Inside the admin's own <main>, as one landmark: screen readers find one main.
    assert page.count("<main") == 1
    assert '<div id="hyperid-mfa"' in page
    # The page sends the form again by itself, without anyone retyping it.
    assert resubmitted_fields(response)["iban"] == [NEW_IBAN]
    assert Shop.objects.get().iban == IBAN


def test_after_approval_the_resubmitted_form_saves_the_approved_iban_once(
    fake_hyperid, client, shop
):
    form = approved_iban_change(fake_hyperid, client, shop)

    response = client.post(change_url(shop), form)

    assert response.status_code == 302
    assert Shop.objects.get().iban == NEW_IBAN
    assert LogEntry.objects.filter(object_id=str(shop.pk)).count() == 1
    assert MFARequest.objects.get().state == State.CONSUMED
    assert MFARequest.objects.get().action == "admin.shop.shop.change"


def test_a_change_of_an_unprotected_field_only_needs_no_approval(fake_hyperid, client, shop):
    response = client.post(change_url(shop), shop_form(shop, notes="Closed on Mondays"))

    assert response.status_code == 302
    assert Shop.objects.get().notes == "Closed on Mondays"
    assert fake_hyperid.pending() == []


def test_an_invalid_form_shows_the_admins_errors_and_sends_no_push(fake_hyperid, client, shop):
    response = client.post(change_url(shop), shop_form(shop, name="", iban=NEW_IBAN))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"]
    assert fake_hyperid.pending() == []
    assert Shop.objects.get().iban == IBAN


def test_staff_without_the_change_permission_get_djangos_refusal_and_no_push(
    fake_hyperid, shop, django_user_model
):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    link(fake_hyperid, viewer)

    response = signed_in(viewer).post(change_url(shop), shop_form(shop, iban=NEW_IBAN))

    assert response.status_code == 403
    assert fake_hyperid.pending() == []
    assert Shop.objects.get().iban == IBAN


def test_a_forged_post_with_another_iban_after_an_approval_saves_nothing(
    fake_hyperid, client, shop
):
    approved_iban_change(fake_hyperid, client, shop)

    forged = client.post(change_url(shop), shop_form(shop, iban=OTHER_IBAN))

    assert forged.status_code == 403
    assert Shop.objects.get().iban == IBAN
    assert pushed_questions(fake_hyperid) == [f"Change IBAN of Acme from {IBAN} to {OTHER_IBAN}?"]


def test_replaying_the_resubmission_changes_nothing_again(fake_hyperid, client, shop):
    form = approved_iban_change(fake_hyperid, client, shop)
    assert client.post(change_url(shop), form).status_code == 302
    # Someone puts the old IBAN back; the replayed POST would change it again.
    Shop.objects.update(iban=IBAN)

    replay = client.post(change_url(shop), form)

    assert replay.status_code == 403
    assert Shop.objects.get().iban == IBAN


def test_another_staff_members_approval_does_not_save_the_change(
    fake_hyperid, client, shop, other_staff
):
    form = shop_form(shop, iban=NEW_IBAN)
    other = signed_in(other_staff)
    other.post(change_url(shop), form)
    approve_pending(fake_hyperid)  # bob's phone approves bob's push

    response = client.post(change_url(shop), form)

    assert response.status_code == 403
    assert Shop.objects.get().iban == IBAN


def test_an_approval_for_one_shop_does_not_change_another(fake_hyperid, client, shop):
    other_shop = Shop.objects.create(name="Beta", iban=IBAN)
    approved_iban_change(fake_hyperid, client, shop)

    response = client.post(change_url(other_shop), shop_form(other_shop, iban=NEW_IBAN))

    assert response.status_code == 403
    assert Shop.objects.get(pk=other_shop.pk).iban == IBAN
    assert Shop.objects.get(pk=shop.pk).iban == IBAN


def test_two_browser_sessions_do_not_share_an_approval(fake_hyperid, client, staff, shop):
    form = approved_iban_change(fake_hyperid, client, shop)

    response = signed_in(staff).post(change_url(shop), form)

    assert response.status_code == 403
    assert Shop.objects.get().iban == IBAN


def test_an_approval_older_than_approval_max_age_saves_nothing(fake_hyperid, client, shop):
    form = approved_iban_change(fake_hyperid, client, shop)
    services.refresh_pending(concurrency=1)
    MFARequest.objects.update(completed_at=timezone.now() - timedelta(seconds=301))

    response = client.post(change_url(shop), form)

    assert response.status_code == 403
    assert Shop.objects.get().iban == IBAN


def test_save_as_new_is_an_add_that_the_approval_of_a_change_does_not_cover(
    fake_hyperid, client, shop
):
    form = approved_iban_change(fake_hyperid, client, shop)

    response = client.post(change_url(shop), {**form, "_saveasnew": "Save as new"})

    assert response.status_code == 403
    assert Shop.objects.count() == 1
    assert pushed_questions(fake_hyperid) == [f"Add shop: IBAN {NEW_IBAN}, contract (empty)?"]


def test_adding_a_shop_needs_approval_of_its_protected_values(fake_hyperid, client):
    form = shop_form(Shop(name="Corner shop", iban=NEW_IBAN))
    url = reverse("admin:shop_shop_add")

    assert client.post(url, form).status_code == 403
    assert pushed_questions(fake_hyperid) == [f"Add shop: IBAN {NEW_IBAN}, contract (empty)?"]
    assert not Shop.objects.exists()
    approve_pending(fake_hyperid)
    assert client.post(url, {**form, "iban": OTHER_IBAN}).status_code == 403
    assert client.post(url, form).status_code == 302
    assert list(Shop.objects.values_list("name", "iban")) == [("Corner shop", NEW_IBAN)]


def test_the_question_hook_words_the_push(fake_hyperid, client, shop, monkeypatch):
    def question(self, request, obj, change):
        [field] = change.fields
        return f"{obj.name}: {field.label} {obj.iban} -> {field.value} ({bool(change)})"

    monkeypatch.setattr(ShopAdmin, "get_mfa_question", question)

    client.post(change_url(shop), shop_form(shop, iban=NEW_IBAN))

    assert pushed_questions(fake_hyperid) == [f"Acme: IBAN {IBAN} -> {NEW_IBAN} (True)"]


def test_a_long_value_is_shown_whole(fake_hyperid, client):
    # Payments protect "__all__": a new payment's question names its shop.
    shop = Shop.objects.create(name="The Very Long Name Of A Shop In Old Town Square", iban=IBAN)
    url = reverse("admin:shop_payment_add")

    client.post(url, {"shop": shop.pk, "amount": "5.00", "state": "open", "times_marked_paid": 0})

    assert pushed_questions(fake_hyperid) == [
        "Add payment: shop The Very Long Name Of A Shop In Old Town Square, amount 5.00, "
        "state open, times marked paid 0?"
    ]


# --- uploads ------------------------------------------------------------------------------


def test_an_uploaded_contract_is_bound_by_its_content(
    fake_hyperid, client, shop, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path

    def with_contract(content: bytes) -> dict[str, object]:
        return shop_form(shop, contract=SimpleUploadedFile("contract.pdf", content))

    assert client.post(change_url(shop), with_contract(b"signed: 1%")).status_code == 403
    assert pushed_questions(fake_hyperid) == [
        "Change contract of Acme from (empty) to contract.pdf?"
    ]
    approve_pending(fake_hyperid)

    assert client.post(change_url(shop), with_contract(b"signed: 99%")).status_code == 403
    assert not Shop.objects.get().contract
    assert client.post(change_url(shop), with_contract(b"signed: 1%")).status_code == 302
    assert Shop.objects.get().contract.read() == b"signed: 1%"


# --- inlines -----------------------------------------------------------------------------


def test_adding_an_inline_account_needs_approval_bound_to_its_iban(fake_hyperid, client, shop):
    form = shop_form(shop, extra=[{"label": "Payouts", "iban": NEW_IBAN}])

    assert client.post(change_url(shop), form).status_code == 403
    assert pushed_questions(fake_hyperid) == [
        f"Change Acme: add bank account with IBAN {NEW_IBAN}?"
    ]
    approve_pending(fake_hyperid)
    other = shop_form(shop, extra=[{"label": "Payouts", "iban": OTHER_IBAN}])
    assert client.post(change_url(shop), other).status_code == 403
    assert not BankAccount.objects.exists()

    assert client.post(change_url(shop), form).status_code == 302
    assert list(BankAccount.objects.values_list("label", "iban")) == [("Payouts", NEW_IBAN)]


def test_changing_and_deleting_inline_accounts_is_bound_row_by_row(fake_hyperid, client, shop):
    savings = BankAccount.objects.create(shop=shop, label="Savings", iban=IBAN)
    payouts = BankAccount.objects.create(shop=shop, label="Payouts", iban=IBAN)
    form = shop_form(shop, accounts=[(savings, {"iban": NEW_IBAN}), (payouts, {"delete": True})])

    assert client.post(change_url(shop), form).status_code == 403
    assert pushed_questions(fake_hyperid) == [
        f"Change Acme: IBAN of Savings from {IBAN} to {NEW_IBAN}; delete bank account Payouts?"
    ]
    approve_pending(fake_hyperid)
    # The same approval does not delete the other row instead.
    swapped = shop_form(shop, accounts=[(savings, {"delete": True}), (payouts, {"iban": NEW_IBAN})])
    assert client.post(change_url(shop), swapped).status_code == 403
    assert BankAccount.objects.count() == 2

    assert client.post(change_url(shop), form).status_code == 302
    assert list(BankAccount.objects.values_list("label", "iban")) == [("Savings", NEW_IBAN)]


def test_renaming_an_inline_account_needs_no_approval(fake_hyperid, client, shop):
    savings = BankAccount.objects.create(shop=shop, label="Savings", iban=IBAN)

    response = client.post(
        change_url(shop), shop_form(shop, accounts=[(savings, {"label": "Rainy days"})])
    )

    assert response.status_code == 302
    assert BankAccount.objects.get().label == "Rainy days"
    assert fake_hyperid.pending() == []


def test_an_inline_shown_on_the_change_form_only_asks_for_its_rows_and_then_saves(
    fake_hyperid, client, shop, monkeypatch
):
    # Admins often show an inline only once the row exists: get_inlines(request, obj)
    # with obj None on the add form. Its rows are still bound, asked about, and saved.
    monkeypatch.setattr(
        ShopAdmin, "get_inlines", lambda self, request, obj: self.inlines if obj else []
    )
    savings = BankAccount.objects.create(shop=shop, label="Savings", iban=IBAN)
    form = shop_form(shop, accounts=[(savings, {"iban": NEW_IBAN})])

    assert client.post(change_url(shop), form).status_code == 403
    assert BankAccount.objects.get().iban == IBAN
    assert pushed_questions(fake_hyperid) == [
        f"Change Acme: IBAN of Savings from {IBAN} to {NEW_IBAN}?"
    ]
    approve_pending(fake_hyperid)
    assert client.post(change_url(shop), form).status_code == 302
    assert BankAccount.objects.get().iban == NEW_IBAN


# --- the delete view -----------------------------------------------------------------------


def test_deleting_a_shop_asks_on_the_confirmed_post_only(fake_hyperid, client, shop):
    url = reverse("admin:shop_shop_delete", args=[shop.pk])

    assert client.get(url).status_code == 200  # the confirmation page
    assert fake_hyperid.pending() == []
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert pushed_questions(fake_hyperid) == ["Delete shop Acme?"]
    assert Shop.objects.exists()
    approve_pending(fake_hyperid)

    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Shop.objects.exists()


def test_an_approved_delete_of_one_shop_does_not_delete_another(fake_hyperid, client, shop):
    other_shop = Shop.objects.create(name="Beta", iban=IBAN)
    client.post(reverse("admin:shop_shop_delete", args=[shop.pk]), {"post": "yes"})
    approve_pending(fake_hyperid)

    response = client.post(reverse("admin:shop_shop_delete", args=[other_shop.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert Shop.objects.count() == 2


# --- bulk actions ----------------------------------------------------------------------------

CHANGELIST = "admin:shop_payment_changelist"


def action_form(action: str, selected, **extra) -> dict[str, object]:
    return {
        "action": action,
        "index": "0",
        "_selected_action": [str(p.pk) for p in selected],
        **extra,
    }


def approved_and_run(fake, client: Client, form: dict[str, object]) -> dict[str, object]:
    """Run an action, approve it on the phone, and let the re-submission run it; the form."""
    assert client.post(reverse(CHANGELIST), form).status_code == 403
    approve_pending(fake)
    assert client.post(reverse(CHANGELIST), form).status_code == 302
    return form


def marked(payments) -> list[int]:
    return [Payment.objects.get(pk=p.pk).times_marked_paid for p in payments]


def test_a_bulk_action_runs_after_approval_on_exactly_the_selected_payments(
    fake_hyperid, client, payments
):
    form = action_form("mark_as_paid", payments[:3])

    assert client.post(reverse(CHANGELIST), form).status_code == 403
    assert pushed_questions(fake_hyperid) == ["Run 'Mark as paid' on 3 payments?"]
    assert marked(payments[:3]) == [0, 0, 0]
    approve_pending(fake_hyperid)
    more = action_form("mark_as_paid", payments[:4])
    assert client.post(reverse(CHANGELIST), more).status_code == 403

    assert client.post(reverse(CHANGELIST), form).status_code == 302
    assert marked(payments) == [1, 1, 1] + [0] * 11
    assert MFARequest.objects.filter(consumed_at__isnull=False).count() == 1


def test_replaying_an_approved_action_does_not_run_it_again(fake_hyperid, client, payments):
    form = approved_and_run(fake_hyperid, client, action_form("mark_as_paid", payments[:2]))

    assert client.post(reverse(CHANGELIST), form).status_code == 403
    assert marked(payments[:2]) == [1, 1]


def test_select_across_binds_the_payments_it_selects_when_asked(fake_hyperid, client, payments):
    form = action_form("mark_as_paid", payments[:1], select_across="1")
    assert client.post(reverse(CHANGELIST), form).status_code == 403
    assert pushed_questions(fake_hyperid) == ["Run 'Mark as paid' on 14 payments?"]
    approve_pending(fake_hyperid)
    # A payment that appears before the re-submission was not in what was approved.
    late = Payment.objects.create(shop=payments[0].shop, amount=1)

    assert client.post(reverse(CHANGELIST), form).status_code == 403
    assert marked([*payments, late]) == [0] * 15
    late.delete()
    assert client.post(reverse(CHANGELIST), form).status_code == 302
    assert marked(payments) == [1] * 14


def test_an_unprotected_action_runs_without_approval(fake_hyperid, client, payments):
    Payment.objects.update(state=Payment.State.PAID)

    response = client.post(reverse(CHANGELIST), action_form("reopen", payments[:2]))

    assert response.status_code == 302
    assert Payment.objects.filter(state=Payment.State.OPEN).count() == 2
    assert fake_hyperid.pending() == []


@pytest.fixture
def change_form_action(monkeypatch) -> dict[str, object]:
    """'Mark as paid' offered on the change form too (Django 6.1); its form."""
    if django.VERSION < (6, 1):
        pytest.skip("actions on the change form are Django 6.1's")
    from django.contrib.admin.options import ActionLocation

    locations = [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]
    monkeypatch.setattr(PaymentAdmin.mark_as_paid, "locations", locations, raising=False)
    return {"CHANGE_FORM-action": "mark_as_paid"}


def payment_url(payment: Payment) -> str:
    return reverse("admin:shop_payment_change", args=[payment.pk])


def test_a_protected_action_run_from_the_change_form_needs_approval(
    fake_hyperid, client, payments, change_form_action
):
    payment = payments[0]
    form = {**change_form_action, "_selected_action": [str(payment.pk)]}

    assert client.post(payment_url(payment), form).status_code == 403
    assert pushed_questions(fake_hyperid) == ["Run 'Mark as paid' on 1 payment?"]
    assert marked(payments[:1]) == [0]
    approve_pending(fake_hyperid)

    assert client.post(payment_url(payment), form).status_code == 302
    assert marked(payments[:2]) == [1, 0]
    assert client.post(payment_url(payment), form).status_code == 403
    assert marked(payments[:1]) == [1]


def test_an_action_approved_on_one_change_form_does_not_run_on_another(
    fake_hyperid, client, payments, change_form_action
):
    first, second = payments[:2]
    form = {**change_form_action, "_selected_action": [str(first.pk)]}
    assert client.post(payment_url(first), form).status_code == 403
    approve_pending(fake_hyperid)

    other = {**change_form_action, "_selected_action": [str(second.pk)]}
    assert client.post(payment_url(second), other).status_code == 403
    # Django refuses a selection that is not the form's own object.
    assert client.post(payment_url(second), form).status_code == 400
    assert marked(payments[:2]) == [0, 0]


def test_delete_selected_asks_on_the_confirmed_delete_not_for_the_confirmation_page(
    fake_hyperid, client, payments
):
    first = client.post(reverse(CHANGELIST), action_form("delete_selected", payments[:3]))
    assert first.status_code == 200
    assert b"Are you sure" in first.content
    assert fake_hyperid.pending() == []

    confirmed = {
        "action": "delete_selected",
        "post": "yes",
        "_selected_action": [str(p.pk) for p in payments[:3]],
    }
    assert client.post(reverse(CHANGELIST), confirmed).status_code == 403
    assert pushed_questions(fake_hyperid) == ["Delete 3 payments?"]
    assert Payment.objects.count() == 14
    approve_pending(fake_hyperid)

    assert client.post(reverse(CHANGELIST), confirmed).status_code == 302
    assert Payment.objects.count() == 11


def test_editing_a_protected_column_in_the_change_list_needs_approval(
    fake_hyperid, client, payments
):
    first, second = payments[:2]
    form = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(first.pk),
        "form-0-amount": "999.00",
        "form-1-id": str(second.pk),
        "form-1-amount": str(second.amount),
        "_save": "Save",
    }

    assert client.post(reverse(CHANGELIST), form).status_code == 403
    assert pushed_questions(fake_hyperid) == [
        f"Change amount of Payment #{first.pk} from 10.00 to 999.00?"
    ]
    assert Payment.objects.get(pk=first.pk).amount == first.amount
    approve_pending(fake_hyperid)
    assert client.post(reverse(CHANGELIST), {**form, "form-0-amount": "1000.00"}).status_code == 403

    assert client.post(reverse(CHANGELIST), form).status_code == 302
    assert Payment.objects.get(pk=first.pk).amount == Decimal("999.00")


# --- transactions -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_with_atomic_requests_protected_saves_and_actions_work(
    fake_hyperid, client, shop, payments, monkeypatch
):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    form = shop_form(shop, iban=NEW_IBAN)
    action = action_form("mark_as_paid", payments[:2])

    assert client.post(change_url(shop), form).status_code == 403  # not 500
    assert client.post(reverse(CHANGELIST), action).status_code == 403
    approve_pending(fake_hyperid)

    assert client.post(change_url(shop), form).status_code == 302
    assert client.post(reverse(CHANGELIST), action).status_code == 302
    assert Shop.objects.get().iban == NEW_IBAN
    assert marked(payments[:2]) == [1, 1]


@pytest.mark.django_db(transaction=True)
def test_with_atomic_requests_an_action_from_the_change_form_runs_once_after_approval(
    fake_hyperid, client, payments, change_form_action, monkeypatch
):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    payment = payments[0]
    form = {**change_form_action, "_selected_action": [str(payment.pk)]}

    assert client.post(payment_url(payment), form).status_code == 403  # not 500
    approve_pending(fake_hyperid)

    assert client.post(payment_url(payment), form).status_code == 302
    assert client.post(payment_url(payment), form).status_code == 403
    assert marked(payments[:1]) == [1]


def test_save_model_refuses_a_protected_change_the_gate_did_not_check(staff, shop):
    # A custom admin view that saves through save_model cannot skip the approval.
    request = RequestFactory().post("/")
    request.user = staff
    model_admin = admin.site._registry[Shop]
    form_class = model_admin.get_form(request, shop, change=True)

    renamed = form_class(shop_form(shop, name="Acme Ltd"), instance=shop)
    assert renamed.is_valid()
    model_admin.save_model(request, renamed.save(commit=False), renamed, change=True)
    assert Shop.objects.get().name == "Acme Ltd"

    rerouted = form_class(shop_form(shop, iban=NEW_IBAN), instance=Shop.objects.get())
    assert rerouted.is_valid()
    with pytest.raises(PermissionDenied):
        model_admin.save_model(request, rerouted.save(commit=False), rerouted, change=True)
    assert Shop.objects.get().iban == IBAN


# --- races -------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_resubmissions_of_one_approved_bulk_action_run_it_once(
    fake_hyperid, client, payments
):
    form = action_form("mark_as_paid", payments)
    assert client.post(reverse(CHANGELIST), form).status_code == 403
    approve_pending(fake_hyperid)
    session = client.cookies["sessionid"].value

    def resubmit() -> int:
        tab = Client()
        tab.cookies["sessionid"] = session
        return tab.post(reverse(CHANGELIST), form).status_code

    statuses = race([resubmit] * 8)

    assert sorted(statuses) == [302] + [403] * 7
    assert marked(payments) == [1] * 14


# --- the options -------------------------------------------------------------------------------


def test_an_option_that_names_nothing_is_a_system_check_error():
    class TypoAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
        mfa_protect_fields = ("ibna",)
        mfa_protect_actions = ("mark_as_payed",)

    errors = TypoAdmin(Payment, admin.AdminSite()).check()

    assert [error.id for error in errors] == ["hyperid_mfa.E022", "hyperid_mfa.E022"]
    assert "mfa_protect_fields names no field of shop.Payment: 'ibna'" in errors[0].msg
    assert "mfa_protect_actions names no action of the admin: 'mark_as_payed'" in errors[1].msg
    assert admin.site._registry[Shop].check() == []
    assert admin.site._registry[Payment].check() == []


def test_a_lone_string_of_names_is_a_system_check_error_not_letters():
    class LoneStringAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
        mfa_protect_fields = "iban"

    [error] = LoneStringAdmin(Shop, admin.AdminSite()).check()

    assert error.id == "hyperid_mfa.E022"
    assert "write ('iban',)" in error.msg


def _expire_windows() -> None:
    now = database_now()
    ApprovalWindow.objects.update(
        opened_at=now - timedelta(seconds=2), expires_at=now - timedelta(seconds=1)
    )


@pytest.fixture
def payments_window(monkeypatch):
    """PaymentAdmin with ``mfa_window = 600``: one approval, ten minutes of work."""
    from tests.shop.admin import PaymentAdmin

    monkeypatch.setattr(PaymentAdmin, "mfa_window", 600)


def test_with_mfa_window_the_push_says_what_approving_also_allows(
    fake_hyperid, client, payments, payments_window
):
    assert (
        client.post(reverse(CHANGELIST), action_form("mark_as_paid", payments[:2])).status_code
        == 403
    )

    assert pushed_questions(fake_hyperid) == [
        "Run 'Mark as paid' on 2 payments? "
        "Approving also allows changes to payments for 10 minutes."
    ]


def test_with_mfa_window_other_operations_of_the_admin_run_without_a_push_until_it_ends(
    fake_hyperid, client, payments, payments_window
):
    approved_and_run(fake_hyperid, client, action_form("mark_as_paid", payments[:2]))

    # Other rows, and another protected operation of the same admin: no push.
    assert (
        client.post(reverse(CHANGELIST), action_form("mark_as_paid", payments[2:5])).status_code
        == 302
    )
    edit = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(payments[0].pk),
        "form-0-amount": "999.00",
        "_save": "Save",
    }
    assert client.post(reverse(CHANGELIST), edit).status_code == 302
    assert marked(payments[:5]) == [1] * 5
    assert Payment.objects.get(pk=payments[0].pk).amount == Decimal("999.00")
    assert fake_hyperid.call_count("start") == 1
    assert ApprovalWindow.objects.get().runs == 2

    _expire_windows()

    assert (
        client.post(reverse(CHANGELIST), action_form("mark_as_paid", payments[5:6])).status_code
        == 403
    )
    assert marked(payments[5:6]) == [0]
    assert fake_hyperid.call_count("start") == 2


def test_a_window_opened_in_one_admin_session_does_not_serve_another(
    fake_hyperid, client, staff, payments, payments_window
):
    approved_and_run(fake_hyperid, client, action_form("mark_as_paid", payments[:2]))

    other_tab = signed_in(staff)

    assert (
        other_tab.post(reverse(CHANGELIST), action_form("mark_as_paid", payments[2:3])).status_code
        == 403
    )
    assert marked(payments[2:3]) == [0]


def test_a_window_of_one_admin_does_not_serve_another_admins_model(
    fake_hyperid, client, shop, payments, payments_window
):
    approved_and_run(fake_hyperid, client, action_form("mark_as_paid", payments[:2]))

    assert client.post(change_url(shop), shop_form(shop, iban=NEW_IBAN)).status_code == 403
    assert Shop.objects.get(pk=shop.pk).iban == shop.iban
