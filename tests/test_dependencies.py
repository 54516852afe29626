"""Every dependency fault is a clear answer and loses nothing.

For each service a gated request or the API needs (the cache that counts pushes,
the database, HyperID's MFA calls and its token endpoint, the Celery broker), a
fault answers ``503 mfa_unavailable`` with ``Retry-After`` (JSON, the HTML page, the
DRF permission, the admin, the API), logs one ERROR line that names the service and
what to check (no traceback), sends no push it did not count, consumes no approval it
could not record, and the next request once the service is back proceeds.

Each test shows those four: :func:`assert_unavailable`, :func:`the_error_line`,
:func:`assert_nothing_lost` (every push on the phone holds a slot of the push limit
and, unless withdrawn, has its row; every run of the view has its consumed approval),
and a last request that goes through. The faults are real where they can be: a
Redis behind a port that refuses, hangs or forwards (:class:`tests.faults.TCPProxy`),
``pg_terminate_backend`` pinned to one statement, a lock held by another
connection, a HyperID port that refuses; a cache or a statement that fails at one
exact step where only that pins it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.db import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    close_old_connections,
    connection,
)
from django.db.models import F
from django.test import Client

from hyperid_mfa import services
from hyperid_mfa.client.calls import HyperIDClient
from hyperid_mfa.conf import start_rate
from hyperid_mfa.exceptions import (
    CacheUnavailable,
    DatabaseBusy,
    DatabaseUnavailable,
    DependencyUnavailable,
)
from hyperid_mfa.models import MFARequest, State
from hyperid_mfa.services import dependencies, ratelimit
from hyperid_mfa.testing import FakeHyperID
from tests import gate_views
from tests.conftest import approve_pending, link
from tests.faults import (
    WAIT,
    FlakyCache,
    TCPProxy,
    backend_pid,
    closed_port,
    killed_when_waiting,
    locked_elsewhere,
)
from tests.test_token_races import short_lock_wait  # noqa: F401 (a fixture, used by name)

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
REDIS_URL = os.environ.get("HYPERID_MFA_TEST_REDIS", "redis://127.0.0.1:6379/15")


@pytest.fixture(autouse=True)
def _forget_runs():
    gate_views.RUNS.clear()


@pytest.fixture(autouse=True)
def _ask_hyperid_every_time(settings):
    # A request refreshed during a fault is asked about again at once after it.
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "MIN_REFRESH_INTERVAL": 0}


def gated(client: Client, *, html: bool = False):
    """A withdrawal through the gate, as a JSON client or a browser sends it."""
    return client.post("/gate/default/", {"amount": "250"}, **({} if html else JSON))


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_unavailable(response, *, html: bool = False, stored: bool = False) -> None:
    """503 ``mfa_unavailable``, ``Retry-After``, never stored by a cache (the DRF
    permission's answers are DRF's: ``stored``)."""
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    if not stored:
        assert "no-store" in response["Cache-Control"]
    if html:
        assert response["Content-Type"].startswith("text/html")
        assert 'id="hyperid-mfa-config"' in response.content.decode()
    else:
        assert response.json()["code"] == "mfa_unavailable"


def the_error_line(caplog) -> str:
    """The one ERROR line the app logged; no line at all carries a traceback."""
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("hyperid_mfa")
    ]
    assert [r.getMessage() for r in errors][1:] == []
    assert errors, "no ERROR line"
    assert [
        r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG and r.exc_info
    ] == []
    message = errors[0].getMessage()
    assert "Traceback" not in message
    caplog.clear()
    return message


def the_error_line_of(caplog, index: int) -> str:
    """The ``index``-th of several requests' ERROR lines (one each)."""
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("hyperid_mfa")
    ]
    assert all(r.exc_info is None for r in errors)
    return errors[index].getMessage()


def slots_taken(user) -> int:
    rate = start_rate()
    assert rate is not None
    return len(cache.get_many(ratelimit.slot_keys(user.pk, rate)))


def runs() -> int:
    return len(gate_views.runs("default"))


def assert_nothing_lost(fake: FakeHyperID, user) -> None:
    """Nothing pushed that was not counted, nothing consumed that was not recorded."""
    pushes = fake.transactions(user.hyperid_subject)
    assert len(pushes) <= slots_taken(user)
    recorded = set(MFARequest.objects.filter(user=user).values_list("transaction_id", flat=True))
    assert {p.transaction_id for p in pushes if p.state != "canceled"} <= recorded
    consumed = MFARequest.objects.filter(user=user, consumed_at__isnull=False).count()
    assert runs() == consumed


def approval_learnt(client: Client, fake: FakeHyperID) -> MFARequest:
    """A push approved on the phone and learnt here: the next gated request consumes it."""
    response = gated(client)
    assert response.status_code == 403
    approve_pending(fake)
    pushed = MFARequest.objects.get(pk=response.json()["mfa_request"]["id"])
    mfa_request = services.refresh_request(pushed, force=True)
    assert mfa_request.state == State.APPROVED
    return mfa_request


# --- the cache behind the push limit ----------------------------------------------------------


@pytest.fixture
def redis_proxy(settings) -> Iterator[TCPProxy]:
    """Django's cache on Redis, reached through a port the test can take down."""
    target = urlsplit(REDIS_URL)
    proxy = TCPProxy((target.hostname or "127.0.0.1", target.port or 6379))
    proxy.up()
    prefix = f"hyperid-mfa-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}",
            "KEY_PREFIX": prefix,
            # As docs/operations.md asks: a cache that hangs must not hold requests.
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    }
    yield proxy
    proxy.close()
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.redis
@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
def test_with_the_cache_down_no_push_is_sent_and_the_next_request_after_it_is_back_sends_one(
    fake_hyperid, hyperid_user, browser, redis_proxy, caplog, html
):
    redis_proxy.down()

    response = gated(browser, html=html)

    assert_unavailable(response, html=html)
    line = the_error_line(caplog)
    assert "cache unavailable: ConnectionError" in line
    assert "CACHES['default']" in line
    assert fake_hyperid.transactions() == []
    redis_proxy.up()
    assert_nothing_lost(fake_hyperid, hyperid_user)
    assert gated(browser, html=html).status_code == 403
    assert len(fake_hyperid.pending()) == slots_taken(hyperid_user) == 1


@pytest.mark.redis
def test_a_cache_that_stops_answering_is_a_503_within_its_socket_timeout(
    fake_hyperid, hyperid_user, browser, redis_proxy, caplog
):
    redis_proxy.hang()

    started = time.monotonic()
    response = gated(browser)
    waited = time.monotonic() - started

    assert_unavailable(response)
    assert "cache unavailable: TimeoutError" in the_error_line(caplog)
    assert waited < WAIT
    assert fake_hyperid.transactions() == []
    redis_proxy.up()
    assert gated(browser).status_code == 403
    assert_nothing_lost(fake_hyperid, hyperid_user)


@pytest.mark.redis
def test_with_the_cache_down_an_approval_already_given_still_runs_once(
    fake_hyperid, hyperid_user, browser, redis_proxy, caplog
):
    approval_learnt(browser, fake_hyperid)
    redis_proxy.down()

    assert gated(browser).status_code == 200  # consuming needs no cache
    assert_unavailable(gated(browser))  # a new push does
    the_error_line(caplog)

    redis_proxy.up()
    assert runs() == 1
    assert_nothing_lost(fake_hyperid, hyperid_user)


@pytest.mark.redis
def test_with_the_cache_down_the_drf_permission_and_the_api_answer_503(
    fake_hyperid, hyperid_user, browser, redis_proxy, caplog
):
    redis_proxy.down()

    permission = browser.post(
        "/gate/drf-permission/", {"amount": "250", "payee": "Bob"}, content_type="application/json"
    )
    assert_unavailable(permission, stored=True)
    assert "cache unavailable" in the_error_line(caplog)
    listing = browser.get("/mfa/requests/")  # its throttle counts in the cache
    assert_unavailable(listing)
    assert "MFA API RequestListView: cache unavailable" in the_error_line(caplog)

    redis_proxy.up()
    assert browser.get("/mfa/requests/").status_code == 200
    assert (
        browser.post(
            "/gate/drf-permission/",
            {"amount": "250", "payee": "Bob"},
            content_type="application/json",
        ).status_code
        == 403
    )
    assert_nothing_lost(fake_hyperid, hyperid_user)


@pytest.fixture
def flaky_cache(settings) -> type[FlakyCache]:
    settings.CACHES = {"default": {"BACKEND": "tests.faults.FlakyCache"}}
    FlakyCache.FAILING, FlakyCache.AFTER = set(), set()
    yield FlakyCache
    FlakyCache.FAILING, FlakyCache.AFTER = set(), set()


def test_a_slot_the_cache_cannot_give_back_stays_taken(
    fake_hyperid, hyperid_user, browser, flaky_cache, monkeypatch, caplog
):
    # HyperID refuses the start (-7: no authenticator, so certainly no push) and the
    # cache fails just then: the slot cannot be given back.
    fake_hyperid.inject("result", call="start", result=-7)
    start = HyperIDClient.start_transaction

    def cache_fails_meanwhile(self, *args, **kwargs):
        flaky_cache.FAILING = {"get", "delete"}
        return start(self, *args, **kwargs)

    monkeypatch.setattr(HyperIDClient, "start_transaction", cache_fails_meanwhile)

    response = gated(browser)

    assert response.json()["code"] == "mfa_no_authenticator"  # the start's own answer
    line = the_error_line(caplog)
    assert "push slot; it stays taken" in line
    assert "cache unavailable: TimeoutError" in line
    flaky_cache.FAILING = set()
    assert slots_taken(hyperid_user) == 1
    monkeypatch.setattr(HyperIDClient, "start_transaction", start)
    assert gated(browser).status_code == 403
    assert slots_taken(hyperid_user) == 2
    assert_nothing_lost(fake_hyperid, hyperid_user)


def test_a_slot_taken_by_an_answer_the_cache_lost_stays_taken_and_no_push_is_sent(
    fake_hyperid, hyperid_user, browser, flaky_cache, caplog
):
    flaky_cache.FAILING = flaky_cache.AFTER = {"add"}  # written, but the answer lost

    assert_unavailable(gated(browser))

    assert "cache unavailable: TimeoutError" in the_error_line(caplog)
    flaky_cache.FAILING = set()
    assert fake_hyperid.transactions() == []
    assert slots_taken(hyperid_user) == 1  # fail closed: it may be ours
    assert gated(browser).status_code == 403
    assert_nothing_lost(fake_hyperid, hyperid_user)


def test_with_the_cache_down_a_protected_admin_save_answers_503_and_saves_nothing(
    fake_hyperid, hyperid_user, flaky_cache, caplog
):
    from tests.shop.models import Shop
    from tests.test_admin_step_up import IBAN, NEW_IBAN, change_url, shop_form

    hyperid_user.is_staff = hyperid_user.is_superuser = True
    hyperid_user.save()
    admin = signed_in(hyperid_user)
    shop = Shop.objects.create(name="Acme", iban=IBAN)
    flaky_cache.FAILING = {"get_many"}

    response = admin.post(change_url(shop), shop_form(shop, iban=NEW_IBAN))

    assert_unavailable(response, html=True)
    assert 'id="header"' in response.content.decode()  # the admin's own layout
    assert "cache unavailable" in the_error_line(caplog)
    assert Shop.objects.get().iban == IBAN
    flaky_cache.FAILING = set()
    assert admin.post(change_url(shop), shop_form(shop, iban=NEW_IBAN)).status_code == 403
    assert_nothing_lost(fake_hyperid, hyperid_user)


# --- the database -----------------------------------------------------------------------------


class FailAt:
    """Fails the ``at``-th statement (from 0) of this thread's connection, as a
    database that went away would: before it runs, so nothing of it is kept."""

    def __init__(self, at: int | None = None, *, error: type[Exception] = OperationalError):
        self.at = at
        self.error = error
        self.seen = 0
        self.failed: str | None = None

    def __call__(self, execute, sql, params, many, context):
        index, self.seen = self.seen, self.seen + 1
        if self.at is None or index == self.at:
            self.failed = sql
            raise self.error("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


def push_flow(client: Client, fake: FakeHyperID) -> int:
    """The first gated request: a push. Answers 403."""
    return 403


def consume_flow(client: Client, fake: FakeHyperID) -> int:
    """A gated request with its approval learnt: the view runs. Answers 200."""
    approval_learnt(client, fake)
    return 200


def refresh_flow(client: Client, fake: FakeHyperID) -> int:
    """A gated request whose push the phone approved: asked, learnt, consumed. 200."""
    assert gated(client).status_code == 403
    approve_pending(fake)
    return 200


TABLE = f'"{MFARequest._meta.db_table}"'
#: A statement each flow must have had failed, to be sure the sweep reached it.
KEY_STATEMENTS = {
    push_flow: ("INSERT INTO", TABLE, ""),  # the push record
    consume_flow: ("UPDATE", TABLE, '"consumed_at" ='),  # the consumption
    refresh_flow: ("UPDATE", TABLE, '"status" ='),  # learnt and consumed at once
}


def is_key_statement(sql: str, flow) -> bool:
    verb, table, column = KEY_STATEMENTS[flow]
    return sql.startswith(f"{verb} {table}") and column in sql


# Autocommit, as in production: no test transaction that one failed statement breaks.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("flow", list(KEY_STATEMENTS), ids=lambda f: f.__name__)
def test_a_database_failure_at_any_statement_of_a_gated_request_is_a_503_and_loses_nothing(
    fake_hyperid, django_user_model, caplog, flow
):
    """Every statement of the request in turn fails (the session's, the consumption, the
    claim, the token's, the push record...): each time the answer is the 503, and the
    same request once the database answers again goes through."""
    failed: list[str] = []
    for at in range(200):
        user = django_user_model.objects.create_user(f"user-{at}")
        user.hyperid_subject = link(fake_hyperid, user)
        client = signed_in(user)
        expected = flow(client, fake_hyperid)
        gate_views.RUNS.clear()
        caplog.clear()
        failing = FailAt(at)

        with connection.execute_wrapper(failing):
            response = gated(client)

        if failing.failed is None:  # the request ran fewer statements: all were tried
            assert response.status_code == expected
            break
        failed.append(failing.failed)
        assert_unavailable(response)
        assert "database unavailable: OperationalError" in the_error_line(caplog), failing.failed
        assert_nothing_lost(fake_hyperid, user)
        assert gated(client).status_code == expected, failing.failed
        assert_nothing_lost(fake_hyperid, user)
    else:
        pytest.fail("the request never ran out of statements")
    assert any(is_key_statement(sql, flow) for sql in failed), failed


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_with_the_database_down_the_page_the_json_answer_and_the_api_are_503(
    fake_hyperid, hyperid_user, browser, caplog, error
):
    with connection.execute_wrapper(FailAt(error=error)):
        page = gated(browser, html=True)
        answer = gated(browser)
        listing = browser.get("/mfa/requests/")

    assert_unavailable(page, html=True)
    assert "database unavailable" in the_error_line_of(caplog, 0)
    assert_unavailable(answer)
    assert_unavailable(listing)
    assert "MFA API RequestListView: database unavailable" in the_error_line_of(caplog, 2)
    assert gated(browser).status_code == 403
    assert browser.get("/mfa/requests/").status_code == 200
    assert_nothing_lost(fake_hyperid, hyperid_user)


@pytest.mark.django_db(transaction=True)
def test_a_lock_wait_that_times_out_consumes_nothing_and_the_next_request_runs_the_view_once(
    fake_hyperid,
    hyperid_user,
    browser,
    caplog,
    short_lock_wait,  # noqa: F811
):
    approval = approval_learnt(browser, fake_hyperid)
    rows = MFARequest.objects.filter(pk=approval.pk)

    # Another transaction holds the row (PostgreSQL) or the database's write lock
    # (SQLite) longer than this connection waits.
    with locked_elsewhere(lambda: rows.update(check_count=F("check_count"))):
        response = gated(browser)

    assert_unavailable(response)
    assert response["Retry-After"] == "1"
    line = the_error_line(caplog)
    assert "database unavailable" in line
    assert "lock wait timed out" in line
    assert runs() == 0
    assert rows.get().state == State.APPROVED
    assert gated(browser).status_code == 200
    assert runs() == 1
    assert_nothing_lost(fake_hyperid, hyperid_user)


# PostgreSQL: the gate's connection killed (pg_terminate_backend) at one statement.


@pytest.fixture
def kept_connection() -> Iterator[None]:
    """This thread's connection kept between requests (``CONN_MAX_AGE = None``), as
    production servers keep it: a killed one is replaced only because Django finds
    it unusable (``close_old_connections``, at each request's start and end)."""
    settings_dict = connection.settings_dict
    before = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = None
    connection.close()
    yield
    settings_dict["CONN_MAX_AGE"] = before
    connection.close()


def kills_connections(test):
    """PostgreSQL (``pg_terminate_backend``), autocommit as in production, and this
    thread's connection kept between requests."""
    marks = [
        pytest.mark.postgres,
        pytest.mark.django_db(transaction=True),
        pytest.mark.usefixtures("kept_connection"),
    ]
    for mark in marks:
        test = mark(test)
    return test


def after(monkeypatch, name: str, hook) -> None:
    """Run ``hook`` once, right after the first ``HyperIDClient.<name>`` call returns."""
    original = getattr(HyperIDClient, name)
    armed = threading.Event()
    armed.set()

    def call(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if armed.is_set():
            armed.clear()
            hook()
        return result

    monkeypatch.setattr(HyperIDClient, name, call)


def killed_waiting(browser: Client, monkeypatch, lock, *, after_call: str | None = None):
    """A gated request whose connection is killed the moment it waits for a lock that
    another connection takes with ``lock``: at once, or right after the request's
    first ``HyperIDClient.<after_call>`` returned. The answer, once Django replaced
    the dead connection as it does at each request's start and end
    (``close_old_connections``; the test client leaves that out)."""
    pid = backend_pid()
    when = None if after_call is None else threading.Event()
    with locked_elsewhere(lock, when=when) as locked, killed_when_waiting(pid) as killed:
        if after_call is not None and when is not None:
            after(monkeypatch, after_call, lambda: (when.set(), locked.wait(WAIT)))
        response = gated(browser)
    close_old_connections()
    assert killed == [pid]
    assert backend_pid() != pid  # a new connection
    return response


@kills_connections
def test_a_connection_killed_at_the_consume_runs_nothing_and_the_next_request_runs_the_view_once(
    fake_hyperid, hyperid_user, browser, caplog, monkeypatch
):
    approval = approval_learnt(browser, fake_hyperid)
    rows = MFARequest.objects.filter(pk=approval.pk)

    # The consumption waits for the row, and is killed there.
    response = killed_waiting(browser, monkeypatch, lambda: list(rows.select_for_update()))

    assert_unavailable(response)
    assert "database unavailable: OperationalError" in the_error_line(caplog)
    assert runs() == 0
    assert rows.get().state == State.APPROVED
    assert gated(browser).status_code == 200
    assert runs() == 1
    assert_nothing_lost(fake_hyperid, hyperid_user)


@kills_connections
def test_a_connection_killed_at_the_push_record_withdraws_the_push_and_keeps_its_slot(
    fake_hyperid, hyperid_user, browser, caplog, monkeypatch
):
    def lock_table() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {TABLE} IN SHARE MODE")

    # HyperID has sent the push when the table is locked: the record waits, killed.
    response = killed_waiting(browser, monkeypatch, lock_table, after_call="start_transaction")

    assert_unavailable(response)
    assert "database unavailable" in the_error_line(caplog)
    [push] = fake_hyperid.transactions()
    assert push.state == "canceled"  # withdrawn from the phone
    assert not MFARequest.objects.exists()
    assert slots_taken(hyperid_user) == 1  # and still counted
    assert gated(browser).status_code == 403
    assert len(fake_hyperid.pending()) == MFARequest.objects.count() == 1
    assert_nothing_lost(fake_hyperid, hyperid_user)


@kills_connections
def test_a_connection_killed_at_the_refresh_leaves_the_request_pending(
    fake_hyperid, hyperid_user, browser, caplog, monkeypatch
):
    assert gated(browser).status_code == 403
    approve_pending(fake_hyperid)
    rows = MFARequest.objects.all()

    # HyperID has said "approved": the UPDATE that records and consumes it waits.
    response = killed_waiting(
        browser,
        monkeypatch,
        lambda: list(rows.select_for_update()),
        after_call="get_transaction_status",
    )

    assert_unavailable(response)
    assert "database unavailable" in the_error_line(caplog)
    assert rows.get().state == State.PENDING
    assert runs() == 0
    assert gated(browser).status_code == 200
    assert runs() == 1
    assert_nothing_lost(fake_hyperid, hyperid_user)


# --- HyperID refusing connections ------------------------------------------------------------


@pytest.fixture
def served(settings, user) -> Iterator[FakeHyperID]:
    """FakeHyperID over real sockets: a refused connection is a real one."""
    fake = FakeHyperID(base_url=None)
    with fake.serve():
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, **fake.settings()}
        user.hyperid_subject = link(fake, user)
        yield fake


@contextlib.contextmanager
def refused(settings, key: str) -> Iterator[None]:
    """``HYPERID_MFA[key]`` (a URL) on a port nothing listens on, within the block."""
    working = settings.HYPERID_MFA
    parts = urlsplit(working[key])
    elsewhere = parts._replace(netloc=f"127.0.0.1:{closed_port()}").geturl()
    settings.HYPERID_MFA = {**working, key: elsewhere}
    try:
        yield
    finally:
        settings.HYPERID_MFA = working


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ("API_BASE_URL", "HyperID unavailable: HyperID could not be reached (ConnectionError)"),
        # The token expires within the leeway: it is refreshed before any push.
        ("ISSUER", "HyperID's token endpoint unavailable: HyperID could not be reached"),
    ],
)
def test_hyperid_refusing_connections_to_a_start_is_a_503_and_gives_the_slot_back(
    served, user, settings, caplog, key, named
):
    link(served, user, expires_in=10 if key == "ISSUER" else 3600)
    browser = signed_in(user)

    with refused(settings, key):
        response = gated(browser)

    assert_unavailable(response)
    line = the_error_line(caplog)
    assert named in line
    assert f"HYPERID_MFA['{key}']" in line
    assert served.transactions() == []
    assert slots_taken(user) == 0  # certainly not sent: given back
    assert gated(browser).status_code == 403
    assert_nothing_lost(served, user)


def test_a_token_endpoint_that_fails_before_a_start_gives_the_slot_back(fake_hyperid, user, caplog):
    # A 503 may come from a gateway after the call was carried out, so an MFA call
    # answered so keeps its slot; but a refresh comes before the start: nothing was sent.
    user.hyperid_subject = link(fake_hyperid, user, expires_in=10)
    fake_hyperid.inject("http_503", call="token", times=None)
    browser = signed_in(user)

    assert_unavailable(gated(browser))

    assert "HyperID's token endpoint unavailable" in the_error_line(caplog)
    assert fake_hyperid.transactions() == []
    assert slots_taken(user) == 0
    fake_hyperid.clear_faults()
    assert gated(browser).status_code == 403
    assert_nothing_lost(fake_hyperid, user)


def test_hyperid_refusing_a_status_get_leaves_the_request_pending_with_the_error_recorded(
    served, user, settings, caplog
):
    browser = signed_in(user)
    assert gated(browser).status_code == 403
    approve_pending(served)

    with refused(settings, "API_BASE_URL"):
        response = gated(browser)

    assert_unavailable(response)
    assert response.json()["mfa_request"]["state"] == "pending"
    assert "HyperID unavailable" in the_error_line(caplog)
    row = MFARequest.objects.get()
    assert row.state == State.PENDING
    assert row.last_error.startswith("ServiceUnavailable: HyperID could not be reached")
    assert runs() == 0
    assert gated(browser).status_code == 200
    assert runs() == 1
    assert_nothing_lost(served, user)


# --- the Celery broker -----------------------------------------------------------------------


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)  # autocommit: the task is sent at once, as in production
def test_with_the_broker_down_the_push_stands_and_the_page_follows_it(
    fake_hyperid, hyperid_user, browser, settings, caplog
):
    celery = pytest.importorskip("celery")
    from celery._state import get_current_app

    previous = get_current_app()
    broker = f"redis://127.0.0.1:{closed_port()}/0"
    celery.Celery("broker-down", broker=broker, set_as_current=False).set_current()
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REFRESH_AFTER_START": 1}
    try:
        response = gated(browser)
    finally:
        previous.set_current()

    assert response.status_code == 403  # the push stands
    line = the_error_line(caplog)
    assert "Could not schedule the refresh of MFA request" in line
    assert "Celery broker unavailable: OperationalError" in line
    assert "CELERY_BROKER_URL" in line
    approve_pending(fake_hyperid)
    status = browser.get(response.json()["mfa_request"]["status_url"])
    assert status.json()["state"] == "approved"  # the page's poll learnt it
    assert gated(browser).status_code == 200
    assert runs() == 1
    assert_nothing_lost(fake_hyperid, hyperid_user)


# --- what counts as a dependency's failure ----------------------------------------------------


def test_a_bug_is_not_mistaken_for_an_outage(fake_hyperid, browser, monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(services, "settle", broken)
    with pytest.raises(TypeError):
        gated(browser)
    assert dependencies.refusal_for(ProgrammingError('relation "x" does not exist')) is None
    assert dependencies.refusal_for(KeyError("k")) is None


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OperationalError("database is locked"), DatabaseBusy),
        (
            OperationalError("terminating connection due to administrator command"),
            DatabaseUnavailable,
        ),
        (InterfaceError("connection already closed"), DatabaseUnavailable),
    ],
)
def test_each_driver_error_becomes_its_services_refusal(error, kind):
    refusal = dependencies.refusal_for(error)
    assert type(refusal) is kind
    assert refusal.code == "mfa_unavailable"
    assert refusal.status_code == 503


def test_a_postgresql_lock_timeout_is_the_database_busy():
    class LockNotAvailable(Exception):
        sqlstate = "55P03"

    error = OperationalError("canceling statement due to lock timeout")
    error.__cause__ = LockNotAvailable()
    assert isinstance(dependencies.refusal_for(error), DatabaseBusy)


def test_redis_errors_are_the_cache_and_kombus_the_broker():
    import redis

    assert isinstance(
        dependencies.refusal_for(redis.exceptions.ConnectionError("x")), CacheUnavailable
    )
    assert isinstance(
        dependencies.refusal_for(redis.exceptions.TimeoutError("x")), CacheUnavailable
    )
    kombu = pytest.importorskip("kombu.exceptions")
    refusal = dependencies.refusal_for(kombu.OperationalError("Error 111"))
    assert isinstance(refusal, DependencyUnavailable)
    assert refusal.dependency == "Celery broker"
