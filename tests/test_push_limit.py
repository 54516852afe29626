"""START_RATE_LIMIT holds: no more pushes reach the phone than the limit allows.

A push is counted before it is sent and given back only when HyperID certainly did
not send it. So a push whose answer was lost still counts, and N concurrent gated
requests send exactly as many pushes as the limit allows, on SQLite and PostgreSQL,
with the local-memory cache in one process and with Redis or Memcached shared between
processes.
"""

from __future__ import annotations

import functools
import os
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db.models import F
from django.test import Client

from hyperid_mfa import services
from hyperid_mfa.exceptions import HyperIDError, RateLimited, ServiceUnavailable
from hyperid_mfa.models import MFARequest
from tests.conftest import link, race

LIMIT = 5
JSON = {"HTTP_ACCEPT": "application/json"}
REDIS_URL = os.environ.get("HYPERID_MFA_TEST_REDIS", "redis://127.0.0.1:6379/15")


def pushes_on_the_phone(fake):
    """Every push HyperID created, answered or not."""
    return len(fake.transactions())


def try_to_start(user, n):
    outcomes = []
    for attempt in range(n):
        try:
            services.start_request(user, "payments.withdraw", fingerprint=f"fp-{attempt}")
        except HyperIDError as err:
            outcomes.append(type(err).__name__)
        else:
            outcomes.append("started")
    return outcomes


# --- answers lost on the way back --------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["timeout", "malformed_json", "truncated_json"])
def test_a_push_whose_answer_was_lost_still_counts(fake_hyperid, hyperid_user, fault):
    fake_hyperid.inject(fault, call="start", times=None)

    outcomes = try_to_start(hyperid_user, 20)

    assert pushes_on_the_phone(fake_hyperid) == LIMIT
    assert outcomes.count("RateLimited") == 20 - LIMIT
    assert not MFARequest.objects.exists()


@pytest.mark.django_db
def test_a_lost_answer_that_still_names_its_push_gets_it_withdrawn(fake_hyperid, hyperid_user):
    fake_hyperid.inject("missing_field", call="start", field="result")

    with pytest.raises(HyperIDError):
        services.start_request(hyperid_user, "payments.withdraw")

    [orphan] = fake_hyperid.transactions()
    assert orphan.state == "canceled"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "params"),
    [("result", {"result": -1}), ("result", {"result": -2}), ("result", {"result": -3})],
)
def test_a_start_that_hyperid_refused_gives_its_slot_back(
    fake_hyperid, hyperid_user, fault, params
):
    fake_hyperid.inject(fault, call="start", times=20, **params)
    try_to_start(hyperid_user, 20)  # each refused by HyperID itself: nothing sent
    fake_hyperid.clear_faults()

    outcomes = try_to_start(hyperid_user, LIMIT + 1)

    assert outcomes == ["started"] * LIMIT + ["RateLimited"]


@pytest.mark.django_db
def test_a_start_that_never_connected_gives_its_slot_back(user, settings):
    from hyperid_mfa.testing import FakeHyperID

    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:  # real sockets: "connection refused" is real too
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, **fake.settings()}
        link(fake, user)
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, "API_BASE_URL": "http://127.0.0.1:9"}
        for _ in range(10):
            with pytest.raises(ServiceUnavailable):
                services.start_request(user, "payments.withdraw")
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, "API_BASE_URL": server.url}

        assert try_to_start(user, LIMIT + 1) == ["started"] * LIMIT + ["RateLimited"]


@pytest.mark.django_db
def test_the_gate_answers_503_then_429_when_answers_are_lost(fake_hyperid, hyperid_user):
    fake_hyperid.inject("timeout", call="start", times=None)
    browser = Client()
    browser.force_login(hyperid_user)
    codes = [
        browser.post("/gate/default/", {"amount": str(n)}, **JSON).json()["code"] for n in range(8)
    ]
    assert codes == ["mfa_unavailable"] * LIMIT + ["mfa_rate_limited"] * 3
    assert pushes_on_the_phone(fake_hyperid) == LIMIT


# --- concurrent requests -------------------------------------------------------------------
#
# On every cache the docs call supported: the local-memory cache (one process, here its
# threads), Redis and Memcached (shared by processes). Each cache call is slowed to a
# networked round trip (tests/slow_caches.py), so that concurrent callers overlap on
# every call and a counter that is not atomic lets more than the limit through. Each
# test asserts exactly the limit: a limiter that refused every push would fail too.

MEMCACHED = os.environ.get("HYPERID_MFA_TEST_MEMCACHED", "127.0.0.1:11211")


@pytest.fixture(
    params=[
        pytest.param("locmem", id="local-memory"),
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("memcached", marks=pytest.mark.memcached),
    ]
)
def counting_cache(request, settings):
    """Django's cache on one of the supported backends, each call a round trip long."""
    prefix = f"hyperid-mfa-test-{uuid.uuid4().hex}"
    backend, location = {
        "locmem": ("tests.slow_caches.SlowLocMemCache", prefix),
        "redis": ("tests.slow_caches.SlowRedisCache", REDIS_URL),
        "memcached": ("tests.slow_caches.SlowPyMemcacheCache", MEMCACHED),
    }[request.param]
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": location, "KEY_PREFIX": prefix}}
    yield request.param
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def redis_cache(settings):
    """Django's own Redis cache, as several app servers would share it."""
    prefix = f"hyperid-mfa-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    yield
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)


def concurrent_gated_requests(fake, user, n):
    # A slow HyperID keeps every start in flight while the others arrive: where the
    # limit was checked before and recorded after the call, all of them passed.
    fake.inject("delay", call="start", times=None, seconds=0.2)
    clients = []
    for _ in range(n):
        client = Client()
        client.force_login(user)
        clients.append(client)
    return race(
        [
            functools.partial(client.post, "/gate/default/", {"amount": str(i)}, **JSON)
            for i, client in enumerate(clients)
        ]
    )


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_gated_requests_send_exactly_the_limit(
    counting_cache, fake_hyperid, hyperid_user
):
    answers = concurrent_gated_requests(fake_hyperid, hyperid_user, 20)

    codes = [answer.json()["code"] for answer in answers]
    assert fake_hyperid.call_count("start") == LIMIT
    assert pushes_on_the_phone(fake_hyperid) == LIMIT
    assert sorted(codes) == ["mfa_pending"] * LIMIT + ["mfa_rate_limited"] * (20 - LIMIT)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_starts_reserve_exactly_the_limit(
    counting_cache, fake_hyperid, hyperid_user
):
    fake_hyperid.inject("delay", call="start", times=None, seconds=0.1)

    def start(i):
        try:
            services.start_request(hyperid_user, "payments.withdraw", fingerprint=f"fp-{i}")
        except RateLimited:
            return "refused"
        return "started"

    results = race([functools.partial(start, i) for i in range(20)])

    assert sorted(results) == ["refused"] * (20 - LIMIT) + ["started"] * LIMIT
    assert pushes_on_the_phone(fake_hyperid) == LIMIT


@pytest.mark.django_db
def test_a_cache_that_cannot_count_refuses_pushes_and_says_why(
    fake_hyperid, hyperid_user, settings, caplog
):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    browser = Client()
    browser.force_login(hyperid_user)

    response = browser.post("/gate/default/", {"amount": "1"}, **JSON)

    assert response.status_code == 500
    assert response.json()["code"] == "mfa_misconfigured"
    assert fake_hyperid.call_count("start") == 0
    assert "START_RATE_LIMIT" in caplog.text


# --- the cache forgets -------------------------------------------------------------------
# The slots live in Django's cache, and caches forget keys to make room: LocMemCache and
# the database cache cull a third of their keys past MAX_ENTRIES (300 by default),
# Memcached (and Redis with an eviction policy) drop the least recently used. Whoever
# can make the site write other keys frees the slots: an anonymous client's failed
# sign-ins do (allauth counts them in the cache, per address and per login name).


def gated_push(client, amount):
    return client.post("/gate/default/", {"amount": str(amount)}, **JSON).json()["code"]


@pytest.mark.django_db
@pytest.mark.skipif(not django_settings.HAVE_ALLAUTH, reason="needs the [allauth] extra")
def test_failed_sign_ins_from_other_addresses_do_not_free_push_slots(fake_hyperid, hyperid_user):
    attacker = Client()
    attacker.force_login(hyperid_user)  # the victim's stolen session
    assert [gated_push(attacker, n) for n in range(LIMIT)] == ["mfa_pending"] * LIMIT
    assert gated_push(attacker, 99) == "mfa_rate_limited"

    guesser = Client()
    for n in range(200):
        address = f"198.51.{n // 200}.{n % 200 + 1}"
        guesser.post("/accounts/login/", {"login": f"x{n}", "password": "x"}, REMOTE_ADDR=address)

    assert [gated_push(attacker, 100 + n) for n in range(LIMIT)] == ["mfa_rate_limited"] * LIMIT
    assert pushes_on_the_phone(fake_hyperid) == LIMIT


@pytest.mark.django_db
def test_whatever_the_cache_forgets_no_period_holds_more_pushes_than_the_limit(
    fake_hyperid, hyperid_user
):
    assert try_to_start(hyperid_user, LIMIT) == ["started"] * LIMIT

    cache.clear()  # as a cache does that culls, evicts, restarts or is flushed

    assert try_to_start(hyperid_user, 3) == ["RateLimited"] * 3
    assert pushes_on_the_phone(fake_hyperid) == LIMIT


@pytest.mark.django_db
def test_pushes_recorded_longer_ago_than_the_period_leave_room_again(fake_hyperid, hyperid_user):
    assert try_to_start(hyperid_user, LIMIT) == ["started"] * LIMIT
    cache.clear()
    MFARequest.objects.update(created_at=F("created_at") - timedelta(minutes=10, seconds=1))

    assert try_to_start(hyperid_user, 1) == ["started"]


@pytest.mark.django_db
def test_the_wait_is_until_the_oldest_recorded_push_leaves_the_period(fake_hyperid, hyperid_user):
    assert try_to_start(hyperid_user, LIMIT) == ["started"] * LIMIT
    cache.clear()
    oldest = MFARequest.objects.order_by("created_at").first()
    MFARequest.objects.filter(pk=oldest.pk).update(
        created_at=F("created_at") - timedelta(minutes=9)
    )

    with pytest.raises(RateLimited) as refused:
        services.start_request(hyperid_user, "payments.withdraw", fingerprint="fp-late")

    assert 55 <= refused.value.retry_after <= 61
