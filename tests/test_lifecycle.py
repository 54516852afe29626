"""Property-based test of the request lifecycle (hypothesis, stateful).

Random sequences of starts, answers on the phone, injected faults, refreshes, local
expiry, cancels, polls and consumption. After every step:

- nothing is approved (or consumed) that HyperID did not approve;
- nothing is consumed twice, and a consumption never comes undone;
- a finished outcome never changes (approved may only become consumed);
- an unconsumed approval for (action, fingerprint) can be consumed; nothing else can.

Faults are restricted to answers the protocol does not allow: a lie that is a valid
answer ("approved" for a pending push) is indistinguishable from the truth.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from hyperid_mfa import services
from hyperid_mfa.constants import CompleteResult, Status
from hyperid_mfa.exceptions import HyperIDError
from hyperid_mfa.models import HyperIDToken, MFARequest, State
from hyperid_mfa.testing import FakeHyperID
from hyperid_mfa.tokens.store import store_tokens

ACTIONS = ["payments.withdraw", "payments.transfer"]
FINGERPRINTS = ["", "fp-100", "fp-500"]
FINAL = {State.APPROVED, State.DENIED, State.EXPIRED, State.CANCELED, State.FAILED}

# (fault, params): each makes status-get answer something the client must refuse.
FAULTS = [
    ("http_500", {}),
    ("http_503", {}),
    ("timeout", {}),
    ("connection_error", {}),
    ("malformed_json", {}),
    ("truncated_json", {}),
    ("html", {}),
    ("result", {"result": -1}),
    ("result", {"result": -9}),
    ("result", {"result": 17}),
    ("wrong_transaction_id", {}),
    ("status", {"value": 3}),
    ("status", {"value": True}),
    ("status", {"value": "1"}),
    ("status", {"value": None}),
    ("complete_result", {"value": 2}),
    ("complete_result", {"value": False}),
    ("complete_result", {"value": "0"}),
    ("missing_field", {"field": "transaction_status"}),
    ("missing_field", {"field": "transaction_id"}),
]


class Lifecycle(RuleBasedStateMachine):
    user = None  # set by the test before running

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        MFARequest.objects.all().delete()
        HyperIDToken.objects.all().delete()
        self.stack = contextlib.ExitStack()
        self.fake = FakeHyperID(base_url="https://api.lifecycle.test")
        self.stack.enter_context(
            override_settings(
                HYPERID_MFA={
                    **self.fake.settings(),
                    "TOKEN_ENCRYPTION_KEYS": ["u7wGgNsWdkdEJA0nHGz4oYhZyqlVDOL6kD0XjrHnyKs="],
                    "START_RATE_LIMIT": None,
                    "DENIAL_COOLDOWN": 0,
                    "MIN_REFRESH_INTERVAL": 0,
                    "MAX_RETRIES": 1,
                }
            )
        )
        self.stack.enter_context(self.fake.mock())
        subject = self.fake.add_user("lifecycle-user")
        pair = self.fake.issue_tokens(subject, expires_in=10**6)
        store_tokens(self.user, pair.access_token, pair.refresh_token)
        self.approved_by_hyperid: set[int] = set()
        self.final_state: dict[object, str] = {}
        self.consumed: set[object] = set()

    def teardown(self) -> None:
        self.stack.close()

    # --- what happens ----------------------------------------------------------------------

    @rule(target=requests, action=st.sampled_from(ACTIONS), fp=st.sampled_from(FINGERPRINTS))
    def start(self, action, fp):
        try:
            return services.start_request(self.user, action, fingerprint=fp).pk
        except HyperIDError:
            return None

    @rule(pk=requests, answer=st.sampled_from(["approve", "deny", "decline", "expire"]))
    def phone_answers(self, pk, answer):
        request = MFARequest.objects.filter(pk=pk).first()
        if request is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            getattr(self.fake, answer)(request.transaction_id)
            if answer == "approve":
                self.approved_by_hyperid.add(request.transaction_id)

    @rule(pk=consumes(requests))
    def hyperid_forgets(self, pk):
        request = MFARequest.objects.filter(pk=pk).first()
        if request is not None:
            with contextlib.suppress(KeyError):
                self.fake.forget(request.transaction_id)

    @rule(fault=st.sampled_from(FAULTS), times=st.integers(1, 3))
    def hyperid_misbehaves(self, fault, times):
        name, params = fault
        self.fake.inject(name, call="status-get", times=times, **params)

    @rule()
    def hyperid_recovers(self):
        self.fake.clear_faults()

    @rule(pk=requests, force=st.booleans(), fault=st.none() | st.sampled_from(FAULTS))
    def refresh(self, pk, force, fault):
        request = MFARequest.objects.filter(pk=pk).first()
        if request is None:
            return
        if fault is not None:
            # Enough faults for every retry, so the bad answer is what the client sees.
            name, params = fault
            self.fake.inject(name, call="status-get", times=2, **params)
        with contextlib.suppress(HyperIDError):
            services.refresh_request(request, force=force)
        if fault is not None:
            self.fake.clear_faults()

    @rule()
    def poll(self):
        services.refresh_pending(concurrency=1)

    @rule(pk=requests)
    def ttl_passes(self, pk):
        MFARequest.objects.filter(pk=pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    @rule(pk=requests)
    def user_cancels(self, pk):
        request = MFARequest.objects.filter(pk=pk).first()
        if request is not None:
            services.cancel_request(request)

    @rule(seconds=st.integers(0, 400))
    def time_passes_at_hyperid(self, seconds):
        self.fake.advance(seconds)

    @rule(action=st.sampled_from(ACTIONS), fp=st.sampled_from(FINGERPRINTS))
    def consume(self, action, fp):
        usable = MFARequest.objects.bound_to(self.user, action, fp).consumable()
        expected = set(usable.values_list("pk", flat=True))
        used = services.consume_approval(self.user, action, fp)
        if expected:
            assert used is not None
            assert used.pk in expected
            assert used.pk not in self.consumed
            self.consumed.add(used.pk)
        else:
            assert used is None

    # --- what must always hold -------------------------------------------------------------

    @invariant()
    def nothing_approved_that_hyperid_did_not_approve(self):
        for request in MFARequest.objects.filter(status=Status.COMPLETED):
            if request.complete_result == CompleteResult.APPROVED:
                assert request.transaction_id in self.approved_by_hyperid

    @invariant()
    def consumption_is_once_and_for_good(self):
        consumed = set(
            MFARequest.objects.filter(consumed_at__isnull=False).values_list("pk", flat=True)
        )
        assert consumed == self.consumed

    @invariant()
    def finished_outcomes_never_change(self):
        for request in MFARequest.objects.all():
            state = request.state
            before = self.final_state.get(request.pk)
            if before is not None:
                assert state == before or (before == State.APPROVED and state == State.CONSUMED)
            if state in FINAL:
                self.final_state.setdefault(request.pk, state)


@pytest.mark.django_db
@pytest.mark.slow
def test_request_lifecycle_keeps_its_promises(user):
    Lifecycle.user = user
    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=100,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
