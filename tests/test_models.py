"""MFARequest: derived state, consumability, and the constraints the database keeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from hyperid_mfa.constants import CompleteResult, Status
from hyperid_mfa.models import HyperIDToken, MFARequest, RequestStatus, State
from tests.factories import make_request

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("state", list(State.values))
def test_state_reads_back_what_the_row_holds(user, state):
    request = make_request(user, state)
    assert request.state == state
    assert MFARequest.objects.in_state(state).get() == request


def test_only_an_unconsumed_fresh_approval_is_consumable(user):
    assert make_request(user, "approved").is_consumable
    for state in ("pending", "denied", "expired", "canceled", "failed", "consumed"):
        assert not make_request(user, state).is_consumable, state


def test_approval_older_than_max_age_is_not_consumable(user):
    old = make_request(user, "approved", completed_at=timezone.now() - timedelta(seconds=301))
    assert not old.is_consumable
    assert not MFARequest.objects.filter(pk=old.pk).consumable().exists()
    with override_settings(HYPERID_MFA={"APPROVAL_MAX_AGE": 600}):
        assert old.is_consumable
    assert MFARequest.objects.filter(pk=old.pk).consumable(max_age=600).exists()


def test_status_values_are_hyperids(user):
    assert RequestStatus.PENDING == Status.PENDING
    assert RequestStatus.COMPLETED == Status.COMPLETED
    assert RequestStatus.EXPIRED == Status.EXPIRED
    assert RequestStatus.CANCELED == Status.CANCELED


@pytest.mark.parametrize(
    "fields",
    [
        {"status": RequestStatus.PENDING, "complete_result": CompleteResult.APPROVED},
        {"status": RequestStatus.EXPIRED, "complete_result": CompleteResult.APPROVED},
        {"status": RequestStatus.CANCELED, "complete_result": CompleteResult.DENIED},
        {"status": RequestStatus.COMPLETED, "complete_result": None},
    ],
)
def test_database_keeps_complete_result_only_for_completed(user, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_request(user, **fields)


@pytest.mark.parametrize("state", ["pending", "denied", "expired", "canceled", "failed"])
def test_database_refuses_consuming_anything_but_an_approval(user, state):
    request = make_request(user, state)
    with pytest.raises(IntegrityError), transaction.atomic():
        MFARequest.objects.filter(pk=request.pk).update(consumed_at=timezone.now())


def test_transaction_ids_are_unique_and_positive(user):
    make_request(user, transaction_id=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_request(user, transaction_id=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_request(user, transaction_id=0)


def test_due_for_refresh_skips_recently_checked_and_finished(user):
    never = make_request(user)
    stale = make_request(user, last_checked_at=timezone.now() - timedelta(seconds=10))
    make_request(user, last_checked_at=timezone.now())
    make_request(user, "approved")
    assert set(MFARequest.objects.due_for_refresh()) == {never, stale}


def test_str_names_action_transaction_and_state(user):
    request = make_request(user, transaction_id=77)
    assert str(request) == "payments.withdraw #77 (pending)"


def test_token_row_never_shows_a_token(user):
    from hyperid_mfa.tokens.store import store_tokens

    row = store_tokens(user, "visible.access.token", "visible-refresh")
    for text in (str(row), repr(row)):
        assert "visible" not in text
    stored = HyperIDToken.objects.values().get()
    assert "visible" not in str(stored)


def test_the_migrations_hold_every_change_of_the_models():
    # A model change without its migration would reach users as a "your models have
    # changes that are not yet reflected" warning, or a missing column.
    from django.core.management import call_command

    call_command("makemigrations", "hyperid_mfa", "--check", "--dry-run", verbosity=0)
