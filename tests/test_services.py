"""The request lifecycle through hyperid_mfa.services, against FakeHyperID."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import models
from django.test import override_settings
from django.utils import timezone

from hyperid_mfa import services, signals
from hyperid_mfa.constants import Status
from hyperid_mfa.exceptions import (
    NoAuthenticatorDevice,
    ProtocolError,
    RateLimited,
    ServiceUnavailable,
    TokenUnavailable,
)
from hyperid_mfa.models import HyperIDToken, MFARequest, State
from hyperid_mfa.services import pushes
from hyperid_mfa.tokens.store import decrypt
from tests.conftest import link
from tests.factories import make_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def events():
    """Every signal sent, as (signal name, request id, extra) tuples."""
    seen: list[tuple] = []
    names = {
        signals.mfa_request_started: "started",
        signals.mfa_request_status_changed: "status_changed",
        signals.mfa_request_approved: "approved",
        signals.mfa_request_denied: "denied",
        signals.mfa_request_consumed: "consumed",
    }
    receivers = {}
    for signal, name in names.items():

        def receiver(sender, mfa_request, _name=name, **kwargs):
            kwargs.pop("signal", None)
            seen.append((_name, mfa_request.pk, kwargs.get("new_state")))

        receivers[signal] = receiver
        signal.connect(receiver)
    yield seen
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


def started(user, **kwargs):
    kwargs.setdefault("question", "Withdraw 500 EUR?")
    return services.start_request(user, "payments.withdraw", **kwargs)


def refresh_now(request, **kwargs):
    """Refresh, ignoring MIN_REFRESH_INTERVAL (as if enough time had passed)."""
    MFARequest.objects.filter(pk=request.pk).update(last_checked_at=None)
    request.last_checked_at = None
    return services.refresh_request(request, **kwargs)


# --- starting ---------------------------------------------------------------------------------


def test_start_sends_a_push_with_the_question_and_a_two_digit_code(
    fake_hyperid, hyperid_user, events
):
    request = started(hyperid_user, fingerprint="fp")
    pushed = fake_hyperid.transaction(request.transaction_id)
    assert pushed.question == "Withdraw 500 EUR?"
    assert pushed.code == request.code
    assert len(request.code) == 2
    assert request.code.isdigit()
    assert pushed.subject == hyperid_user.hyperid_subject
    assert request.state == State.PENDING
    assert request.fingerprint == "fp"
    assert request.expires_at - request.created_at == timedelta(seconds=300)
    assert events == [("started", request.pk, None)]


def test_default_question_names_the_action(fake_hyperid, hyperid_user):
    request = services.start_request(hyperid_user, "payments.withdraw")
    assert "payments.withdraw" in fake_hyperid.transaction(request.transaction_id).question


def test_overlong_question_is_refused_not_shortened(fake_hyperid, hyperid_user):
    # Shortened, the question would hide what the approval binds.
    with pytest.raises(ValueError, match="at most 500"):
        started(hyperid_user, question="x" * 2000)
    assert fake_hyperid.call_count("start") == 0


@pytest.mark.parametrize("action", ["", "  ", "a" * 201, None])
def test_start_refuses_a_meaningless_action(hyperid_user, action):
    with pytest.raises(ValueError, match="action"):
        services.start_request(hyperid_user, action)


def test_codes_come_from_secrets_and_cover_00_to_99(monkeypatch):
    asked = []
    monkeypatch.setattr("secrets.randbelow", lambda n: asked.append(n) or 7)
    assert pushes.new_code() == "07"
    assert asked == [100]
    monkeypatch.undo()
    seen = Counter(pushes.new_code() for _ in range(5000))
    assert set(seen) == {f"{n:02d}" for n in range(100)}


def test_user_without_tokens_gets_token_unavailable_and_no_push(fake_hyperid, user):
    with pytest.raises(TokenUnavailable):
        started(user)
    assert fake_hyperid.call_count("start") == 0
    assert not MFARequest.objects.exists()


def test_user_without_authenticator_gets_a_clear_error_and_nothing_is_recorded(fake_hyperid, user):
    link(fake_hyperid, user, has_device=False)
    with pytest.raises(NoAuthenticatorDevice):
        started(user)
    assert not MFARequest.objects.exists()


def test_expired_access_token_is_refreshed_once_and_the_push_goes_out(fake_hyperid, hyperid_user):
    old = decrypt(HyperIDToken.objects.get(user=hyperid_user).access_token_encrypted)
    fake_hyperid.expire_access_token(old)
    request = started(hyperid_user)
    assert request.is_pending
    assert fake_hyperid.call_count("token") == 1
    assert fake_hyperid.call_count("start") == 2
    assert decrypt(HyperIDToken.objects.get(user=hyperid_user).access_token_encrypted) != old


def test_revoked_tokens_mean_the_user_must_sign_in_again(fake_hyperid, hyperid_user):
    fake_hyperid.revoke_tokens(hyperid_user.hyperid_subject)
    with pytest.raises(TokenUnavailable):
        started(hyperid_user)
    assert not MFARequest.objects.exists()


def test_start_is_not_retried_when_hyperid_fails(fake_hyperid, hyperid_user):
    fake_hyperid.inject("http_503", call="start")
    with pytest.raises(ServiceUnavailable):
        started(hyperid_user)
    assert fake_hyperid.call_count("start") == 1
    assert not MFARequest.objects.exists()


def test_sixth_push_in_ten_minutes_is_refused_before_anything_is_sent(fake_hyperid, hyperid_user):
    for _ in range(5):
        started(hyperid_user)
    with pytest.raises(RateLimited) as info:
        started(hyperid_user)
    assert info.value.retry_after > 0
    assert fake_hyperid.call_count("start") == 5


def test_starts_refused_by_hyperid_do_not_use_up_the_rate_limit(fake_hyperid, hyperid_user):
    fake_hyperid.inject("result", call="start", times=5, result=-1)
    for _ in range(5):
        with pytest.raises(ServiceUnavailable):
            started(hyperid_user)
    assert started(hyperid_user).is_pending


def test_starts_answered_with_an_http_error_count_against_the_rate_limit(
    fake_hyperid, hyperid_user
):
    # A 500 may come after HyperID sent the push: the push may be on the phone.
    fake_hyperid.inject("http_500", call="start", times=5)
    for _ in range(5):
        with pytest.raises(ServiceUnavailable):
            started(hyperid_user)
    with pytest.raises(RateLimited):
        started(hyperid_user)


def test_after_a_denial_the_next_push_waits_for_the_cooldown(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    fake_hyperid.deny(request.transaction_id)
    services.refresh_request(request)
    with pytest.raises(RateLimited) as info:
        started(hyperid_user)
    assert 0 < info.value.retry_after <= 31
    MFARequest.objects.filter(pk=request.pk).update(
        completed_at=timezone.now() - timedelta(seconds=31)
    )
    assert started(hyperid_user).is_pending


# --- following a request -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "state", "signal"),
    [
        ("approve", State.APPROVED, "approved"),
        ("deny", State.DENIED, "denied"),
        ("decline", State.CANCELED, None),
        ("expire", State.EXPIRED, None),
    ],
)
def test_refresh_learns_the_users_answer_and_signals_it_once(
    fake_hyperid, hyperid_user, events, outcome, state, signal
):
    request = started(hyperid_user)
    getattr(fake_hyperid, outcome)(request.transaction_id)
    services.refresh_request(request)
    assert request.state == state
    assert MFARequest.objects.get(pk=request.pk).state == state
    assert request.completed_at is not None
    expected = [("started", request.pk, None), ("status_changed", request.pk, state)]
    if signal:
        expected.append((signal, request.pk, None))
    assert events == expected
    services.refresh_request(request, force=True)
    assert len(events) == len(expected)


def test_pending_stays_pending(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    services.refresh_request(request)
    assert request.is_pending
    assert request.check_count == 1
    assert request.last_result == 0
    assert request.last_error == ""


def test_finished_requests_cost_no_http(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    fake_hyperid.approve(request.transaction_id)
    services.refresh_request(request)
    before = fake_hyperid.call_count()
    for _ in range(20):
        services.refresh_request(request, force=True)
    assert fake_hyperid.call_count() == before


def test_refreshes_within_the_interval_are_coalesced(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    for _ in range(10):
        services.refresh_request(MFARequest.objects.get(pk=request.pk))
    assert fake_hyperid.call_count("status-get") == 1


def checked_ago(request, seconds):
    """The request as if HyperID had last been asked about it ``seconds`` ago."""
    MFARequest.objects.filter(pk=request.pk).update(
        last_checked_at=timezone.now() - timedelta(seconds=seconds)
    )
    return MFARequest.objects.get(pk=request.pk)


def test_a_request_someone_waits_on_is_asked_about_again_after_the_watched_interval(
    fake_hyperid, hyperid_user
):
    request = started(hyperid_user)
    # Checked a second ago: within MIN_REFRESH_INTERVAL (2 s), past the watched 0.5 s.
    services.refresh_request(checked_ago(request, 1))
    assert fake_hyperid.call_count("status-get") == 0
    fake_hyperid.approve(request.transaction_id)

    assert services.refresh_request(checked_ago(request, 1), watched=True).is_approved
    assert fake_hyperid.call_count("status-get") == 1


def test_watched_refreshes_within_the_watched_interval_are_coalesced(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    services.refresh_request(checked_ago(request, 0.6), watched=True)
    for _ in range(10):
        services.refresh_request(MFARequest.objects.get(pk=request.pk), watched=True)
    assert fake_hyperid.call_count("status-get") == 1


def test_the_watched_interval_never_exceeds_min_refresh_interval(
    fake_hyperid, hyperid_user, settings
):
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "MIN_REFRESH_INTERVAL": 2,
        "WATCHED_REFRESH_INTERVAL": 60,
    }
    request = started(hyperid_user)
    services.refresh_request(checked_ago(request, 3), watched=True)
    assert fake_hyperid.call_count("status-get") == 1


def test_force_skips_the_interval(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    services.refresh_request(request)
    services.refresh_request(request, force=True)
    assert fake_hyperid.call_count("status-get") == 2


def test_a_coalesced_refresh_of_a_copy_checked_within_the_interval_only_rereads_the_row(
    fake_hyperid, hyperid_user, django_assert_num_queries
):
    request = started(hyperid_user)
    services.refresh_request(request)  # checked just now
    copy = MFARequest.objects.get(pk=request.pk)
    # No conditional UPDATE that could not match (the hot path of a polled request).
    with django_assert_num_queries(1):
        assert services.refresh_request(copy).is_pending
    assert fake_hyperid.call_count("status-get") == 1


def test_a_coalesced_caller_sees_the_outcome_recorded_by_another(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    fake_hyperid.approve(request.transaction_id)
    services.refresh_request(MFARequest.objects.get(pk=request.pk))
    stale_copy = MFARequest.objects.get(pk=request.pk)
    stale_copy.status = Status.PENDING  # as loaded before the other caller finished
    stale_copy.last_checked_at = timezone.now()
    assert services.refresh_request(stale_copy).state == State.APPROVED


def test_request_past_its_ttl_expires_locally_and_the_push_is_withdrawn(
    fake_hyperid, hyperid_user, events
):
    request = started(hyperid_user)
    MFARequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    request.refresh_from_db()
    services.refresh_request(request)
    assert request.state == State.EXPIRED
    assert fake_hyperid.call_count("status-get") == 0
    assert fake_hyperid.transaction(request.transaction_id).status == Status.CANCELED
    assert ("status_changed", request.pk, State.EXPIRED) in events


def test_approval_arriving_after_local_expiry_is_ignored(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    fake_hyperid.inject("connection_error", call="cancel", times=None)
    MFARequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    request.refresh_from_db()
    services.refresh_request(request)
    fake_hyperid.approve(request.transaction_id)
    services.refresh_request(request, force=True)
    assert request.state == State.EXPIRED
    assert services.consume_approval(hyperid_user, "payments.withdraw") is None


def test_transaction_unknown_to_hyperid_fails_the_request(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    fake_hyperid.forget(request.transaction_id)
    services.refresh_request(request)
    assert request.state == State.FAILED
    assert request.last_result == -6


@pytest.mark.parametrize(
    ("fault", "params", "error"),
    [
        ("http_500", {}, ServiceUnavailable),
        ("timeout", {}, ServiceUnavailable),
        ("connection_error", {}, ServiceUnavailable),
        ("result", {"result": -1}, ServiceUnavailable),
        ("malformed_json", {}, ProtocolError),
        ("truncated_json", {}, ProtocolError),
        ("html", {}, ProtocolError),
        ("wrong_transaction_id", {}, ProtocolError),
        ("status", {"value": 3}, ProtocolError),
        ("status", {"value": True}, ProtocolError),
        ("complete_result", {"value": 7}, ProtocolError),
        ("missing_field", {"field": "transaction_status"}, ProtocolError),
    ],
)
def test_hyperid_failures_leave_the_request_pending_with_the_error_recorded(
    fake_hyperid, hyperid_user, fault, params, error
):
    request = started(hyperid_user)
    fake_hyperid.approve(request.transaction_id)  # even an approval behind the fault
    fake_hyperid.inject(fault, call="status-get", times=None, **params)
    with pytest.raises(error):
        services.refresh_request(request)
    stored = MFARequest.objects.get(pk=request.pk)
    assert stored.is_pending
    assert stored.complete_result is None
    assert error.__name__ in stored.last_error
    assert services.consume_approval(hyperid_user, "payments.withdraw") is None
    fake_hyperid.clear_faults()
    assert refresh_now(stored).state == State.APPROVED
    assert stored.last_error == ""


def test_expired_token_during_refresh_is_renewed_and_the_check_completes(
    fake_hyperid, hyperid_user
):
    request = started(hyperid_user)
    fake_hyperid.approve(request.transaction_id)
    token = decrypt(HyperIDToken.objects.get(user=hyperid_user).access_token_encrypted)
    fake_hyperid.expire_access_token(token)
    assert services.refresh_request(request).state == State.APPROVED
    assert fake_hyperid.call_count("token") == 1


def test_unrefreshable_token_during_refresh_is_recorded_and_reported(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    fake_hyperid.revoke_tokens(hyperid_user.hyperid_subject)
    with pytest.raises(TokenUnavailable):
        services.refresh_request(request)
    stored = MFARequest.objects.get(pk=request.pk)
    assert stored.is_pending
    assert "TokenUnavailable" in stored.last_error


# --- canceling ---------------------------------------------------------------------------------


def test_cancel_withdraws_the_push_and_cancels_locally(fake_hyperid, hyperid_user, events):
    request = started(hyperid_user)
    services.cancel_request(request)
    assert request.state == State.CANCELED
    assert fake_hyperid.transaction(request.transaction_id).status == Status.CANCELED
    assert events[-1] == ("status_changed", request.pk, State.CANCELED)


def test_cancel_holds_even_when_hyperid_is_down(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    fake_hyperid.inject("http_503", call="cancel", times=None)
    services.cancel_request(request)
    assert MFARequest.objects.get(pk=request.pk).state == State.CANCELED
    fake_hyperid.approve(request.transaction_id)
    services.refresh_request(request, force=True)
    assert services.consume_approval(hyperid_user, "payments.withdraw") is None


def test_cancel_of_a_finished_request_changes_nothing(fake_hyperid, hyperid_user):
    request = started(hyperid_user)
    fake_hyperid.approve(request.transaction_id)
    services.refresh_request(request)
    services.cancel_request(request)
    assert request.state == State.APPROVED
    assert fake_hyperid.call_count("cancel") == 0


# --- consuming -----------------------------------------------------------------------------------


@pytest.fixture
def approval(fake_hyperid, hyperid_user):
    request = started(hyperid_user, fingerprint="fp-500")
    fake_hyperid.approve(request.transaction_id)
    return services.refresh_request(request)


def test_an_approval_is_used_once(hyperid_user, approval, events):
    used = services.consume_approval(hyperid_user, "payments.withdraw", "fp-500")
    assert used == approval
    assert used.state == State.CONSUMED
    assert services.consume_approval(hyperid_user, "payments.withdraw", "fp-500") is None
    assert [e for e in events if e[0] == "consumed"] == [("consumed", approval.pk, None)]


def test_the_consumed_signal_reaches_receivers_connected_for_mfa_requests(hyperid_user, approval):
    consumed = []

    def receiver(sender, mfa_request, **kwargs):
        consumed.append(mfa_request.pk)

    # As a project connects it: for MFARequest only.
    signals.mfa_request_consumed.connect(receiver, sender=MFARequest)
    try:
        services.consume_approval(hyperid_user, "payments.withdraw", "fp-500")
    finally:
        signals.mfa_request_consumed.disconnect(receiver, sender=MFARequest)
    assert consumed == [approval.pk]


def test_two_approvals_of_the_same_request_are_two_runs(fake_hyperid, hyperid_user, approval):
    """Each consumption takes exactly one approval: the newest; the other waits for the next."""
    MFARequest.objects.filter(pk=approval.pk).update(
        completed_at=timezone.now() - timedelta(seconds=10)
    )
    second = started(hyperid_user, fingerprint="fp-500")
    fake_hyperid.approve(second.transaction_id)
    services.refresh_request(second)

    first_run = services.consume_approval(hyperid_user, "payments.withdraw", "fp-500")

    assert first_run.pk == second.pk
    assert MFARequest.objects.get(pk=approval.pk).state == State.APPROVED
    second_run = services.consume_approval(hyperid_user, "payments.withdraw", "fp-500")
    assert second_run.pk == approval.pk
    assert services.consume_approval(hyperid_user, "payments.withdraw", "fp-500") is None


def test_approval_is_bound_to_user_action_and_fingerprint(hyperid_user, other_user, approval):
    assert services.consume_approval(other_user, "payments.withdraw", "fp-500") is None
    assert services.consume_approval(hyperid_user, "payments.transfer", "fp-500") is None
    assert services.consume_approval(hyperid_user, "payments.withdraw", "fp-900") is None
    assert services.consume_approval(hyperid_user, "payments.withdraw") is None
    assert services.consume_approval(hyperid_user, "payments.withdraw", "fp-500") is not None


def test_approval_older_than_max_age_cannot_be_used(hyperid_user, approval):
    MFARequest.objects.filter(pk=approval.pk).update(
        completed_at=timezone.now() - timedelta(seconds=61)
    )
    assert services.consume_approval(hyperid_user, "payments.withdraw", "fp-500", 60) is None
    with override_settings(HYPERID_MFA={"APPROVAL_MAX_AGE": 60}):
        assert services.consume_approval(hyperid_user, "payments.withdraw", "fp-500") is None
    assert services.consume_approval(hyperid_user, "payments.withdraw", "fp-500", 120)


def test_the_gates_settle_keeps_to_its_max_age_not_the_settings(hyperid_user, approval):
    """A gated view's own max_age: an approval a minute old is too old for max_age=60,
    although APPROVAL_MAX_AGE (300) would take it."""
    MFARequest.objects.filter(pk=approval.pk).update(
        completed_at=timezone.now() - timedelta(seconds=61)
    )

    found, consumed = services.settle(hyperid_user, "payments.withdraw", "fp-500", 60)

    assert not consumed
    assert found is None
    assert MFARequest.objects.get(pk=approval.pk).state == State.APPROVED
    assert services.settle(hyperid_user, "payments.withdraw", "fp-500", 120)[1]


def test_the_find_then_update_consume_keeps_to_max_age_too(
    hyperid_user, approval, monkeypatch, events
):
    from hyperid_mfa.services import consuming

    # As on a database without UPDATE ... RETURNING.
    monkeypatch.setattr(consuming, "_statement", lambda using: None)
    MFARequest.objects.filter(pk=approval.pk).update(
        completed_at=timezone.now() - timedelta(seconds=61)
    )
    assert services.consume_approval(hyperid_user, "payments.withdraw", "fp-500", 60) is None
    with override_settings(HYPERID_MFA={"APPROVAL_MAX_AGE": 60}):
        assert services.consume_approval(hyperid_user, "payments.withdraw", "fp-500") is None
    consumed = services.consume_approval(hyperid_user, "payments.withdraw", "fp-500", 120)
    assert consumed is not None
    assert consumed.pk == approval.pk
    assert consumed.state == State.CONSUMED  # the copy the gate goes on with says so too
    assert MFARequest.objects.get(pk=approval.pk).state == State.CONSUMED
    assert [e for e in events if e[0] == "consumed"] == [("consumed", approval.pk, None)]


def test_a_change_of_databases_or_routers_compiles_the_consume_again(hyperid_user, approval):
    from django.test import override_settings as override

    from hyperid_mfa.services import consuming

    services.consume_approval(hyperid_user, "payments.withdraw", "fp-none")
    assert consuming._statements
    with override(LANGUAGE_CODE="de"):
        assert consuming._statements  # any other setting keeps it
    with override(DATABASE_ROUTERS=[]):
        assert not consuming._statements
    services.consume_approval(hyperid_user, "payments.withdraw", "fp-none")
    # The receiver, as Django calls it when a test changes DATABASES (changing them
    # for real here would warn, as Django does).
    consuming._forget(setting="DATABASES", value=settings.DATABASES, enter=True)
    assert not consuming._statements


@pytest.mark.parametrize(
    "state", ["pending", "denied", "expired", "canceled", "failed", "consumed"]
)
def test_nothing_but_an_approval_is_consumed(user, state):
    make_request(user, state)
    assert services.consume_approval(user, "payments.withdraw") is None


def test_pending_request_lookup_is_bound_like_approvals(fake_hyperid, hyperid_user, other_user):
    request = started(hyperid_user, fingerprint="fp")
    assert services.pending_request(hyperid_user, "payments.withdraw", "fp") == request
    assert services.pending_request(hyperid_user, "payments.withdraw", "other") is None
    assert services.pending_request(other_user, "payments.withdraw", "fp") is None


# --- the poller ------------------------------------------------------------------------------


def test_refresh_pending_refreshes_every_due_request(fake_hyperid, hyperid_user, settings):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}
    requests = [started(hyperid_user) for _ in range(6)]
    fake_hyperid.approve(requests[0].transaction_id)
    fake_hyperid.deny(requests[1].transaction_id)
    MFARequest.objects.filter(pk=requests[2].pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.refresh_pending(concurrency=1) == 6
    states = [MFARequest.objects.get(pk=r.pk).state for r in requests]
    assert states == ["approved", "denied", "expired", "pending", "pending", "pending"]
    # Nothing is due again within MIN_REFRESH_INTERVAL.
    assert services.refresh_pending(concurrency=1) == 0


def test_refresh_pending_honours_the_limit(fake_hyperid, hyperid_user):
    for _ in range(3):
        started(hyperid_user)
    assert services.refresh_pending(limit=2, concurrency=1) == 2
    assert services.refresh_pending(limit=2, concurrency=1) == 1


def test_a_poll_round_with_hyperid_down_records_errors_and_finishes(fake_hyperid, hyperid_user):
    requests = [started(hyperid_user) for _ in range(3)]
    fake_hyperid.inject("http_503", call="status-get", times=None)
    assert services.refresh_pending(concurrency=1) == 3
    for request in requests:
        stored = MFARequest.objects.get(pk=request.pk)
        assert stored.is_pending
        assert "ServiceUnavailable" in stored.last_error


# --- tokens never leak -------------------------------------------------------------------------


def test_no_token_reaches_the_logs_or_the_rows(fake_hyperid, hyperid_user, caplog):
    caplog.set_level(logging.DEBUG)
    token = decrypt(HyperIDToken.objects.get(user=hyperid_user).access_token_encrypted)
    fake_hyperid.expire_access_token(token)
    request = started(hyperid_user)
    fake_hyperid.inject("http_500", call="status-get", times=None)
    with pytest.raises(ServiceUnavailable):
        services.refresh_request(request)
    fake_hyperid.clear_faults()
    fake_hyperid.approve(request.transaction_id)
    refresh_now(request)
    services.consume_approval(hyperid_user, "payments.withdraw")
    row = HyperIDToken.objects.get(user=hyperid_user)
    secrets = [token, decrypt(row.access_token_encrypted), decrypt(row.refresh_token_encrypted)]
    dumped = caplog.text + str(list(MFARequest.objects.values()))
    dumped += str(list(HyperIDToken.objects.values()))
    for secret in secrets:
        assert secret not in dumped
    assert "started" in caplog.text
    assert "consumed" in caplog.text


def test_a_poll_round_ends_even_when_every_request_is_due_again_at_once(
    fake_hyperid, hyperid_user, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "MIN_REFRESH_INTERVAL": 0}
    for _ in range(3):
        started(hyperid_user)
    assert services.refresh_pending(concurrency=1) == 3
    assert fake_hyperid.call_count("status-get") == 3


def test_a_poll_round_reads_each_users_token_once(fake_hyperid, hyperid_user, monkeypatch):
    from hyperid_mfa.tokens.store import StoredTokenProvider

    for _ in range(4):
        started(hyperid_user)
    reads = []
    original = StoredTokenProvider.get_access_token
    monkeypatch.setattr(
        StoredTokenProvider,
        "get_access_token",
        lambda self, user: reads.append(user.pk) or original(self, user),
    )
    assert services.refresh_pending(concurrency=1) == 4
    assert reads == [hyperid_user.pk]
    assert fake_hyperid.call_count("status-get") == 4


def test_a_token_refused_mid_round_is_refreshed_once_for_the_rest(fake_hyperid, hyperid_user):
    requests = [started(hyperid_user) for _ in range(3)]
    token = decrypt(HyperIDToken.objects.get(user=hyperid_user).access_token_encrypted)
    fake_hyperid.expire_access_token(token)
    for request in requests:
        fake_hyperid.approve(request.transaction_id)
    assert services.refresh_pending(concurrency=1) == 3
    assert fake_hyperid.call_count("token") == 1
    assert {MFARequest.objects.get(pk=r.pk).state for r in requests} == {State.APPROVED}


def test_cancel_says_in_the_audit_log_that_it_was_not_the_phone(fake_hyperid, hyperid_user, caplog):
    caplog.set_level(logging.INFO, logger="hyperid_mfa")
    services.cancel_request(started(hyperid_user))
    assert "canceled here, not on the phone" in caplog.text


def test_the_compiled_consume_binds_each_calls_values(fake_hyperid, hyperid_user, other_user):
    """The statement is compiled once: every call must still consume only its own approval."""
    link(fake_hyperid, other_user)
    odd = "pay 'O''Brien'; -- \\x00? %s %%s é"
    mine = services.start_request(hyperid_user, odd, fingerprint="fp-1")
    theirs = services.start_request(other_user, odd, fingerprint="fp-1")
    for request in (mine, theirs):
        fake_hyperid.approve(request.transaction_id)
        services.refresh_request(request)

    assert services.consume_approval(hyperid_user, odd, "fp-2") is None
    assert services.consume_approval(hyperid_user, "other", "fp-1") is None
    assert services.consume_approval(hyperid_user, odd, "fp-1").pk == mine.pk
    assert services.consume_approval(hyperid_user, odd, "fp-1") is None
    assert services.consume_approval(other_user, odd, "fp-1").pk == theirs.pk
    MFARequest.objects.filter(pk=mine.pk).update(consumed_at=None)
    assert services.consume_approval(hyperid_user, odd, "fp-1", max_age=0.001) is None


def test_a_new_push_withdraws_the_users_older_pending_twin(fake_hyperid, hyperid_user):
    """An abandoned tab's push, then the same action from another session: one card."""
    older = started(hyperid_user, fingerprint="session-1", replace_twins=True)
    newer = started(hyperid_user, fingerprint="session-2", replace_twins=True)
    other = services.start_request(
        hyperid_user, "payments.refund", question="Withdraw 500 EUR?", replace_twins=True
    )

    assert MFARequest.objects.get(pk=older.pk).state == State.CANCELED
    assert fake_hyperid.transaction(older.transaction_id).status == Status.CANCELED
    assert MFARequest.objects.get(pk=newer.pk).is_pending
    assert MFARequest.objects.get(pk=other.pk).is_pending


def test_a_different_question_for_the_same_action_is_not_a_twin(fake_hyperid, hyperid_user):
    first = started(hyperid_user, question="Withdraw 500 EUR?", replace_twins=True)
    started(hyperid_user, question="Withdraw 900 EUR?", replace_twins=True)
    assert MFARequest.objects.get(pk=first.pk).is_pending


def test_refresh_by_id_learns_an_approval_of_the_request_with_that_id(fake_hyperid, hyperid_user):
    request = services.start_request(hyperid_user, "payments.withdraw")
    fake_hyperid.approve(request.transaction_id)

    refreshed = services.refresh_by_id(request.pk)

    assert refreshed is not None
    assert refreshed.pk == request.pk
    assert refreshed.state == State.APPROVED
    assert MFARequest.objects.get(pk=request.pk).state == State.APPROVED


def test_refresh_by_id_keeps_to_the_refresh_interval_unless_forced(fake_hyperid, hyperid_user):
    request = services.start_request(hyperid_user, "payments.withdraw")
    services.refresh_by_id(request.pk)
    asked = fake_hyperid.call_count("status-get")

    services.refresh_by_id(request.pk)
    assert fake_hyperid.call_count("status-get") == asked
    services.refresh_by_id(str(request.pk), force=True)
    assert fake_hyperid.call_count("status-get") == asked + 1


def test_refresh_by_id_of_a_request_that_is_gone_is_none(fake_hyperid, hyperid_user):
    request = services.start_request(hyperid_user, "payments.withdraw")
    MFARequest.objects.filter(pk=request.pk).delete()

    assert services.refresh_by_id(request.pk) is None
    assert fake_hyperid.call_count("status-get") == 0


@pytest.mark.parametrize(
    "field",
    [models.BigAutoField(), models.IntegerField(), models.UUIDField(), models.CharField()],
    ids=["big-auto", "integer", "uuid", "char"],
)
def test_the_compiled_consume_has_a_placeholder_for_every_kind_of_user_key(field):
    """Projects whose users have integer, UUID or text keys get the compiled consumption: the
    stand-in for the user's key is a valid value of that kind, which the database
    layer prepares like any other (one the tests' integer-keyed users never reach)."""
    from django.db import connection

    from hyperid_mfa.services import consuming

    sentinel = consuming._sentinel_for(field)

    assert sentinel is not None
    field.to_python(sentinel)
    assert field.get_db_prep_value(sentinel, connection) is not None
