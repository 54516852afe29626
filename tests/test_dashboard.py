"""The admin's dashboard of MFA requests, rendered for rows whose figures are known.

Requests in three hours of the last day and one of the last week, pushes refused and
failed, HyperID calls that failed: the page's numbers, its SVG series (one bar per
hour and outcome, with its value), its tables and its links must say exactly what
those rows say. Also who may see it, the cache of finished hours, and the counts the
app keeps for it (pushes not sent, failed calls) as the flows happen.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from hyperid_mfa import services
from hyperid_mfa.dashboard import figures
from hyperid_mfa.exceptions import HyperIDError
from hyperid_mfa.models import FailedCall, MFARequest, RequestStatus, UnsentPush
from tests import gate_views
from tests.test_gate import submit

pytestmark = pytest.mark.django_db

URL = "/admin/hyperid_mfa/mfarequest/dashboard/"
NOW = datetime(2026, 3, 14, 15, 42, 7, tzinfo=dt_timezone.utc)
HOUR = timedelta(hours=1)
THIS_HOUR = NOW.replace(minute=0, second=0, microsecond=0)


# --- reading the page ---------------------------------------------------------------------


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.text_parts).strip()

    def walk(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        return [
            element
            for element in self.walk()
            if element.tag == tag
            and all(element.attrs.get(name.replace("_", "-")) == v for name, v in attrs.items())
        ]

    def find(self, tag: str, **attrs: str) -> Element:
        [found] = self.find_all(tag, **attrs)
        return found


VOID = {"br", "hr", "img", "input", "link", "meta", "source", "wbr", "col", "area", "base"}


class Tree(HTMLParser):
    """The page as a tree of elements; every element's text includes its children's."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.current = self.root
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag: str) -> None:
        element: Element | None = self.current
        while element is not None and element.tag != tag:
            element = element.parent
        if element is not None and element.parent is not None:
            self.current = element.parent

    def handle_data(self, data: str) -> None:
        element: Element | None = self.current
        while element is not None:
            element.text_parts.append(data)
            element = element.parent


def page(client: Client, period: str | None = None) -> Element:
    response = client.get(URL, {"period": period} if period else {})
    assert response.status_code == 200, response.content[:500]
    return Tree(response.content.decode()).root


def figure(root: Element, name: str) -> str:
    return root.find("dd", data_figure=name).text.replace("\xa0", " ")


def series(root: Element, chart: str) -> dict[str, dict[datetime, int]]:
    """Chart ``chart``'s bars: series -> hour -> value (bars of 0 are not drawn)."""
    svg = root.find("svg", id=chart)
    found: dict[str, dict[datetime, int]] = {}
    for group in svg.find_all("g"):
        if "data-series" not in group.attrs:
            continue
        found[group.attrs["data-series"]] = {
            datetime.fromisoformat(rect.attrs["data-hour"]): int(rect.attrs["data-value"])
            for rect in group.find_all("rect")
        }
    return found


def table(root: Element, table_id: str) -> list[list[str]]:
    body = root.find("table", id=table_id).find("tbody")
    return [
        [cell.text.replace("\xa0", " ") for cell in row.children if cell.tag in ("th", "td")]
        for row in body.find_all("tr")
    ]


# --- known rows -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _frozen_now(monkeypatch):
    monkeypatch.setattr(figures, "database_now", lambda using=None: NOW)


@pytest.fixture
def staff(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


@pytest.fixture
def people(django_user_model) -> dict[str, Any]:
    return {
        name: django_user_model.objects.create_user(name, f"{name}@example.com", "pw")
        for name in ("alice", "bob", "carol")
    }


_transaction_ids = iter(range(1000, 10**6))


def request(user, created: datetime, outcome: str, seconds: float | None = None) -> MFARequest:
    """A request created at ``created`` whose outcome was learnt ``seconds`` later."""
    status, complete_result = {
        "approved": (RequestStatus.COMPLETED, 0),
        "denied": (RequestStatus.COMPLETED, 1),
        "expired": (RequestStatus.EXPIRED, None),
        "canceled": (RequestStatus.CANCELED, None),
        "failed": (RequestStatus.FAILED, None),
        "pending": (RequestStatus.PENDING, None),
    }[outcome]
    completed = None if outcome == "pending" else created + timedelta(seconds=seconds or 300)
    return MFARequest.objects.create(
        user=user,
        transaction_id=next(_transaction_ids),
        action="payments.withdraw",
        question="Withdraw?",
        code="42",
        status=status,
        complete_result=complete_result,
        created_at=created,
        expires_at=created + timedelta(minutes=5),
        completed_at=completed,
        consumed_at=completed if outcome == "approved" and seconds == 3.5 else None,
    )


@pytest.fixture
def rows(people) -> dict[str, Any]:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    two_ago, one_ago = THIS_HOUR - 2 * HOUR, THIS_HOUR - HOUR
    request(alice, two_ago + timedelta(minutes=5), "approved", 3.5)
    request(alice, two_ago + timedelta(minutes=20), "approved", 12.3)
    request(bob, two_ago + timedelta(minutes=30), "denied", 7.0)
    request(alice, two_ago + timedelta(minutes=59, seconds=59), "expired")
    request(bob, one_ago, "denied", 20.0)
    request(alice, one_ago + timedelta(minutes=10), "pending")
    request(alice, one_ago + timedelta(minutes=11), "canceled", 30)
    request(alice, THIS_HOUR + timedelta(seconds=1), "approved", 1.0)
    request(alice, NOW - timedelta(seconds=5), "failed", 2)
    request(carol, THIS_HOUR - 30 * HOUR, "denied", 40.0)  # in the week, not the day
    request(carol, THIS_HOUR - 200 * HOUR, "denied", 9.0)  # in neither
    for hour, user, outcome, count in (
        (two_ago, alice, "limited", 3),
        (two_ago, alice, "cooldown", 1),
        (one_ago, bob, "limited", 5),
        (one_ago, bob, "failed", 1),
        (THIS_HOUR - 200 * HOUR, carol, "limited", 50),
    ):
        UnsentPush.objects.create(
            hour=hour, user=user, action="payments.withdraw", outcome=outcome, count=count
        )
    for hour, call, result, count in (
        (two_ago, "status-get", "timeout", 1),
        (one_ago, "status-get", "timeout", 2),
        (one_ago, "start", "http_5xx", 1),
        (THIS_HOUR - 200 * HOUR, "start", "unreachable", 9),
    ):
        FailedCall.objects.create(hour=hour, call=call, result=result, count=count)
    return people


# --- the figures ------------------------------------------------------------------------


def test_the_last_24_hours_show_the_numbers_of_the_rows(staff, rows):
    root = page(staff)

    assert figure(root, "sent") == "9"
    assert figure(root, "approved-rate") == "33.3 %"
    assert figure(root, "denied-rate") == "22.2 %"
    assert figure(root, "expired-rate") == "11.1 %"
    # Decided in 1.0, 3.5, 7.0, 12.3 and 20.0 s: nearest ranks 3 and 5.
    assert figure(root, "median") == "7.0 s"
    assert figure(root, "p90") == "20 s"
    assert table(root, "hm-outcomes-table") == [
        ["Approved", "3", "33.3 %"],
        ["Denied", "2", "22.2 %"],
        ["Expired", "1", "11.1 %"],
        ["Canceled", "1", "11.1 %"],
        ["Failed", "1", "11.1 %"],
        ["Pending", "1", "11.1 %"],
    ]


def test_the_pushes_chart_has_one_bar_per_hour_and_outcome_with_its_value(staff, rows):
    root = page(staff)

    two_ago, one_ago = THIS_HOUR - 2 * HOUR, THIS_HOUR - HOUR
    assert series(root, "hm-pushes") == {
        "sent": {two_ago: 4, one_ago: 3, THIS_HOUR: 2},
        "limited": {two_ago: 3, one_ago: 5},
        "cooldown": {two_ago: 1},
        "failed": {one_ago: 1},
    }
    svg = root.find("svg", id="hm-pushes")
    assert svg.attrs["role"] == "img"
    assert root.find("title", id="hm-pushes-title").text == "Pushes per hour, by outcome"
    assert "9 sent, 8 limited, 1 cooldown, 1 failed" in root.find("desc", id="hm-pushes-desc").text
    # The table has the same numbers, one row per hour of the period.
    hours = table(root, "hm-pushes-table")
    assert len(hours) == 24
    assert [row[1:] for row in hours[-3:]] == [
        ["4", "3", "1", "0"],
        ["3", "5", "0", "1"],
        ["2", "0", "0", "0"],
    ]
    assert all(row[1:] == ["0", "0", "0", "0"] for row in hours[:-3])


def test_bars_stack_in_order_and_scale_to_the_tallest_hour(staff, rows):
    svg = page(staff).find("svg", id="hm-pushes")
    two_ago = (THIS_HOUR - 2 * HOUR).isoformat()
    stack = [rect for rect in svg.find_all("rect") if rect.attrs["data-hour"] == two_ago]
    # sent 4, limited 3, cooldown 1: each bar starts where the one below ends.
    assert [int(rect.attrs["data-value"]) for rect in stack] == [4, 3, 1]
    heights = [float(rect.attrs["height"]) for rect in stack]
    assert heights[0] / heights[2] == pytest.approx(4, rel=0.01)
    for lower, upper in itertools.pairwise(stack):
        assert float(upper.attrs["y"]) + float(upper.attrs["height"]) == pytest.approx(
            float(lower.attrs["y"]), abs=0.02
        )
    # The tallest hour (one hour ago: 3 + 5 + 1 = 9) fits under the axis' top, 10.
    labels = [text.text for text in svg.find_all("text")]
    assert "10" in labels


def test_hyperid_errors_per_hour_by_kind(staff, rows):
    root = page(staff)

    two_ago, one_ago = THIS_HOUR - 2 * HOUR, THIS_HOUR - HOUR
    assert series(root, "hm-errors") == {
        "timeout": {two_ago: 1, one_ago: 2},
        "http_5xx": {one_ago: 1},
    }
    assert table(root, "hm-errors-by-call") == [
        ["status-get", "timeout", "3"],
        ["start", "http_5xx", "1"],
    ]
    assert len(table(root, "hm-errors-table")) == 2  # the hours with errors


def test_users_with_the_most_denials_and_limited_pushes_link_to_their_requests(staff, rows):
    root = page(staff)

    assert table(root, "hm-top-denials") == [["bob", "2"]]
    assert table(root, "hm-top-limited") == [["bob", "5"], ["alice", "3"]]
    denials = root.find("table", id="hm-top-denials")
    user_link, count_link = denials.find_all("a")
    everything = staff.get(user_link.attrs["href"])
    assert everything.status_code == 200
    assert everything.context["cl"].result_count == 2
    denied = staff.get(count_link.attrs["href"])
    assert denied.status_code == 200
    assert {r.state for r in denied.context["cl"].result_list} == {"denied"}
    assert denied.context["cl"].result_count == 2
    alice_link = root.find("table", id="hm-top-limited").find_all("a")[1]
    alices = staff.get(alice_link.attrs["href"])
    assert alices.context["cl"].result_count == 7


def test_the_last_7_days_add_the_older_hours(staff, rows):
    root = page(staff, "7d")

    assert figure(root, "sent") == "10"
    assert figure(root, "denied-rate") == "30.0 %"
    # 1.0, 3.5, 7.0, 12.3, 20.0 and 40.0 s.
    assert figure(root, "median") == "7.0 s"
    assert figure(root, "p90") == "40 s"
    assert series(root, "hm-pushes")["sent"][THIS_HOUR - 30 * HOUR] == 1
    assert len(table(root, "hm-pushes-table")) == 168
    assert table(root, "hm-top-denials") == [["bob", "2"], ["carol", "1"]]
    current = [
        a
        for a in root.find("nav", aria_label="Period").find_all("a")
        if a.attrs.get("aria-current")
    ]
    assert [a.text for a in current] == ["Last 7 days"]


def test_an_empty_period_says_so_instead_of_dividing_by_zero(staff):
    root = page(staff)

    assert figure(root, "sent") == "0"
    assert figure(root, "approved-rate") == "\N{EN DASH}"
    assert figure(root, "median") == "\N{EN DASH}"
    assert series(root, "hm-pushes") == {"sent": {}, "limited": {}, "cooldown": {}, "failed": {}}
    assert root.find("p", id="hm-no-errors").text.startswith("No HyperID call failed")
    assert table(root, "hm-top-denials") == [["No denials."]]


def test_durations_counted_in_python_match_the_databases(rows, monkeypatch):
    in_sql = figures.count_hours(THIS_HOUR - 300 * HOUR, "default")
    monkeypatch.setattr(figures.DecisionBucket, "VENDORS", ())
    in_python = figures.count_hours(THIS_HOUR - 300 * HOUR, "default")
    assert in_python == in_sql
    # 3.5 and 7.0 s to the tenth; 12.3 s in the bucket of 12 s.
    assert in_sql[THIS_HOUR - 2 * HOUR].decided_by_start() == {35: 1, 120: 1, 70: 1}


def test_percentiles_are_nearest_rank_of_the_buckets_starts():
    def percentile(by_start, q):
        return figures.percentile(figures.histogram(by_start), q)

    assert percentile({}, 0.5) is None
    assert percentile({30: 1}, 0.9) == 3.0
    four = {10: 1, 20: 1, 30: 1, 40: 1}
    assert percentile(four, 0.5) == 2.0
    assert percentile(four, 0.9) == 4.0
    assert percentile({5: 90, 600: 10}, 0.9) == 0.5
    assert percentile({5: 89, 600: 11}, 0.9) == 60.0


# --- the cache of finished hours ------------------------------------------------------------


def test_finished_hours_come_from_the_cache_and_the_others_are_counted_again(
    staff, rows, monkeypatch
):
    first = page(staff)
    counted_since: list[datetime] = []
    count_hours = figures.count_hours

    def spy(since, using):
        counted_since.append(since)
        return count_hours(since, using)

    monkeypatch.setattr(figures, "count_hours", spy)
    # A row added since, in the hour that still has a pending request, shows; the
    # hours before it are finished and read from the cache.
    request(rows["alice"], THIS_HOUR - HOUR + timedelta(minutes=30), "denied", 2.0)
    second = page(staff)

    assert counted_since == [THIS_HOUR - HOUR]
    assert figure(first, "sent") == "9"
    assert figure(second, "sent") == "10"
    assert series(second, "hm-pushes")["sent"][THIS_HOUR - HOUR] == 4


def test_an_hour_still_pending_is_never_kept(staff, rows):
    page(staff)

    key = figures._cache_key("default", THIS_HOUR - HOUR)
    assert cache.get(key) is None
    assert cache.get(figures._cache_key("default", THIS_HOUR - 2 * HOUR)) is not None
    assert cache.get(figures._cache_key("default", THIS_HOUR)) is None  # not over yet


def test_figures_written_by_another_version_are_counted_again(staff, rows):
    cache.set(figures._cache_key("default", THIS_HOUR - 2 * HOUR), {"sent": "garbled"})

    assert series(page(staff), "hm-pushes")["sent"][THIS_HOUR - 2 * HOUR] == 4


# --- who may see it -------------------------------------------------------------------------


def test_the_request_list_links_to_the_dashboard(staff):
    response = staff.get(reverse("admin:hyperid_mfa_mfarequest_changelist"))

    assert reverse("admin:hyperid_mfa_mfarequest_dashboard") == URL
    assert f'href="{URL}"' in response.content.decode()


def test_staff_need_the_view_permission(django_user_model, rows):
    member = django_user_model.objects.create_user("member", "m@example.com", "pw", is_staff=True)
    client = Client()
    client.force_login(member)
    assert client.get(URL).status_code == 403

    member.user_permissions.add(Permission.objects.get(codename="view_mfarequest"))
    assert client.get(URL).status_code == 200


def test_others_are_sent_to_the_admin_login(django_user_model):
    assert Client().get(URL).status_code == 302
    user = django_user_model.objects.create_user("plain", "p@example.com", "pw")
    client = Client()
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("period", ["1y", "24H", "", "7d'"])
def test_an_unknown_period_is_a_400(staff, period):
    response = staff.get(URL, {"period": period})

    assert response.status_code == 400
    assert "24h, 7d" in response.content.decode()


# --- the counts the flows leave -------------------------------------------------------------


def test_refused_and_failed_pushes_and_calls_are_counted_by_the_hour(
    fake_hyperid, hyperid_user, browser, settings
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": "1/10m", "MAX_RETRIES": 0}
    assert submit(browser, "function", amount="1").status_code == 403
    for _ in range(3):
        assert submit(browser, "function", amount="2").status_code == 429
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}
    fake_hyperid.inject("connection_error", call="start", times=2)
    for _ in range(2):
        with pytest.raises(HyperIDError):
            services.start_request(hyperid_user, gate_views.ACTION)

    assert list(UnsentPush.objects.values_list("user", "action", "outcome", "count")) in (
        [
            (hyperid_user.pk, gate_views.ACTION, "limited", 3),
            (hyperid_user.pk, gate_views.ACTION, "failed", 2),
        ],
        [
            (hyperid_user.pk, gate_views.ACTION, "failed", 2),
            (hyperid_user.pk, gate_views.ACTION, "limited", 3),
        ],
    )
    assert list(FailedCall.objects.values_list("call", "result", "count")) == [
        ("start", "unreachable", 2)
    ]
    hours = set(UnsentPush.objects.values_list("hour", flat=True)) | set(
        FailedCall.objects.values_list("hour", flat=True)
    )
    assert len(hours) <= 2  # this hour (and the next, had the test crossed it)
    assert all(hour.minute == hour.second == hour.microsecond == 0 for hour in hours)


@pytest.mark.parametrize(
    ("highest", "ticks"),
    [
        (0, ["0", "1"]),
        (3, ["0", "1", "2", "3"]),
        (9, ["0", "5", "10"]),
        (41, ["0", "20", "40", "60"]),
        (6000, ["0", "2000", "4000", "6000"]),
    ],
)
def test_the_y_axis_counts_in_whole_round_steps_up_to_the_tallest_bar(highest, ticks):
    from hyperid_mfa.dashboard import charts

    svg = charts.stacked_bars(
        chart_id="c",
        title="t",
        description="d",
        bars=[charts.Bar("h", "", "h")],
        series=[charts.Series("s", "s", [highest], 0)],
    )
    root = Tree(str(svg)).root
    assert [text.text for text in root.find_all("text")] == ticks


def test_times_to_decide_are_bucketed_finer_where_people_answer():
    edges = figures.DecisionBucket.EDGES
    assert edges[:3] == (0, 1, 2)  # tenths of a second up to 10 s
    assert {100, 110, 590, 600, 650, 3000, 3300, 18000, 36000} <= set(edges)
    assert list(edges) == sorted(set(edges))

    def start(value, numbered):
        return edges[figures.DecisionBucket.index(value, numbered=numbered)]

    tenths = (-5, 0, 99, 100, 109, 123, 649, 40000)
    assert [start(t, False) for t in tenths] == [0, 0, 99, 100, 100, 120, 600, 36000]
    # PostgreSQL's width_bucket: 0 below the first edge (a clock step), n from edge n-1.
    assert start(0, True) == 0
    assert start(103, True) == edges[102] == 120
    assert start(len(edges), True) == 36000


def test_a_count_the_database_refuses_leaves_the_answer_as_it_was(
    fake_hyperid, hyperid_user, browser, settings, monkeypatch, caplog
):
    from django.db import DatabaseError
    from django.db.models import QuerySet

    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": "1/10m"}
    assert submit(browser, "function", amount="1").status_code == 403

    def refuse(self, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(QuerySet, "update", refuse)
    response = submit(browser, "function", amount="2")

    assert response.status_code == 429
    assert "Could not count unsent push count for the admin's dashboard: DatabaseError" in (
        caplog.text
    )


def test_the_purge_deletes_the_counts_as_old_as_the_requests_it_deletes(people):
    from django.utils import timezone

    from hyperid_mfa.services.retention import purge_finished

    recent, old = timezone.now() - HOUR, timezone.now() - 40 * 24 * HOUR
    for hour in (recent, old):
        UnsentPush.objects.create(
            hour=hour, user=people["alice"], action="a", outcome="limited", count=1
        )
        FailedCall.objects.create(hour=hour, call="start", result="timeout", count=1)

    purge_finished("30d")

    assert list(UnsentPush.objects.values_list("hour", flat=True)) == [recent]
    assert list(FailedCall.objects.values_list("hour", flat=True)) == [recent]
