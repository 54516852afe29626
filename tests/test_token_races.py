"""Concurrent refreshes of one user's token, on every supported database.

HyperID rotates refresh tokens: a refresh token sent twice is refused the second
time. So however many requests find the token expired at once, exactly one of them
may call the token endpoint; the others must wait for it and use its answer.

Each thread has its own database connection, as separate processes would. Unlike
``test_concurrency``, these tests run on SQLite too (the test database is a file, see
``tests/settings.py``): SQLite has no row locks, and the fix must not depend on them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.models import F

from hyperid_mfa.client.calls import HyperIDClient
from hyperid_mfa.exceptions import DatabaseBusy
from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.tokens.store import StoredTokenProvider, decrypt
from tests.conftest import link, race
from tests.faults import locked_elsewhere

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 6


@pytest.mark.parametrize(
    ("entry", "expires_in"),
    [
        # A token within EXPIRY_LEEWAY of its end: every caller finds it expired.
        ("get_access_token", 10),
        # HyperID refused a token that still looked valid: every caller asks to refresh.
        ("refresh_access_token", 600),
    ],
)
def test_concurrent_refreshes_of_one_token_make_one_token_endpoint_call(
    fake_hyperid, user, entry, expires_in
):
    subject = link(fake_hyperid, user, expires_in=expires_in)
    # A slow token endpoint keeps the first refresh in flight while the others arrive.
    fake_hyperid.inject("delay", call="token", times=None, seconds=0.3)

    results = race([lambda: getattr(StoredTokenProvider(), entry)(user)] * THREADS)

    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    assert (fake_hyperid.call_count("token"), errors) == (1, [])
    assert len(set(results)) == 1
    access_token = results[0]
    assert fake_hyperid.subject_of(access_token) == subject
    fake_hyperid.clear_faults()
    client = HyperIDClient()
    assert client.check_availability(access_token) is True
    row = HyperIDToken.objects.get(user=user)
    assert decrypt(row.access_token_encrypted) == access_token
    # The stored refresh token is the rotated one: the fake accepts it (once).
    assert client.refresh_access_token(decrypt(row.refresh_token_encrypted)).access_token


def write_lock_held_elsewhere(user):
    """Another connection holds the write lock on the user's token row meanwhile.

    On SQLite that is the whole database's write lock, as any long write would hold it.
    """
    tokens = HyperIDToken.objects.filter(user=user)
    return locked_elsewhere(lambda: tokens.update(refreshed_at=F("refreshed_at")))


@pytest.fixture
def short_lock_wait() -> Iterator[None]:
    """This thread's connection gives up waiting for a lock after 0.2 s."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout")
            (before,) = cursor.fetchone()
            cursor.execute("PRAGMA busy_timeout = 200")
        else:
            cursor.execute("SET lock_timeout = '200ms'")
    yield
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {int(before)}")
        else:
            cursor.execute("RESET lock_timeout")


def test_a_lock_wait_that_times_out_is_the_database_busy(fake_hyperid, user, short_lock_wait):
    link(fake_hyperid, user, expires_in=10)
    # Not HyperID's failure, nor a reason to sign in again: try again in a moment.
    with write_lock_held_elsewhere(user), pytest.raises(DatabaseBusy, match="database"):
        StoredTokenProvider().get_access_token(user)
    assert fake_hyperid.call_count("token") == 0
    # Once the lock is free, the same request succeeds: nothing was consumed or lost.
    assert fake_hyperid.subject_of(StoredTokenProvider().get_access_token(user))
    assert fake_hyperid.call_count("token") == 1
