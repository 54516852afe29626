"""The dashboard's admin view: ``MFA requests`` -> Dashboard.

Mounted by ``MFARequestAdmin.get_urls`` as ``admin:hyperid_mfa_mfarequest_dashboard``,
behind the admin site's own checks (active staff), and shown to staff with the view
permission on MFA requests. ``?period=24h`` (default) or ``?period=7d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..models import PushOutcome, State
from . import charts, figures

TEMPLATE = "admin/hyperid_mfa/mfarequest/dashboard.html"

#: What each push outcome is called, and its colour, in the charts and tables.
PUSH_LABELS = {
    PushOutcome.SENT: (gettext_lazy("sent"), 0),
    PushOutcome.LIMITED: (gettext_lazy("limited"), 1),
    PushOutcome.COOLDOWN: (gettext_lazy("cooldown"), 2),
    PushOutcome.FAILED: (gettext_lazy("failed"), 3),
}
OUTCOME_COLOURS: dict[str, int] = {
    State.APPROVED: 4,
    State.DENIED: 3,
    State.EXPIRED: 1,
    State.CANCELED: 5,
    State.FAILED: 6,
    State.PENDING: 0,
}


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    url: str
    current: bool


def dashboard_view(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    period = request.GET.get("period", figures.DEFAULT_PERIOD)
    if period not in figures.PERIODS:
        return HttpResponseBadRequest(
            _("Unknown period %(period)r: use %(periods)s.")
            % {"period": period[:20], "periods": ", ".join(figures.PERIODS)},
            content_type="text/plain; charset=utf-8",
        )
    dashboard = figures.compute(period)
    bars = _bars(dashboard)
    opts = model_admin.opts
    site = model_admin.admin_site
    changelist = reverse(
        f"{site.name}:{opts.app_label}_{opts.model_name}_changelist", current_app=site.name
    )
    context = {
        **site.each_context(request),
        "opts": opts,
        "title": _("MFA dashboard"),
        "median": _seconds(dashboard.median_seconds),
        "p90": _seconds(dashboard.p90_seconds),
        "subtitle": None,
        "dashboard": dashboard,
        "periods": _periods(request, period),
        "period_label": _period_label(period),
        "pushes": _pushes(dashboard, bars),
        **_outcomes(dashboard),
        "errors": _errors(dashboard, bars),
        "errors_by_call": dashboard.errors_by_call,
        "top_denials": _user_rows(dashboard.top_denials, changelist, dashboard, State.DENIED),
        "top_limited": _user_rows(dashboard.top_limited, changelist, dashboard, None),
    }
    return TemplateResponse(request, TEMPLATE, context)


def _seconds(value: float | None) -> str | None:
    """A time to decide as precise as its bucket: tenths below 10 s, seconds above."""
    if value is None:
        return None
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _period_label(period: str) -> str:
    return {"24h": _("the last 24 hours"), "7d": _("the last 7 days")}[period]


def _periods(request: HttpRequest, current: str) -> list[Period]:
    labels = {"24h": _("Last 24 hours"), "7d": _("Last 7 days")}
    return [
        Period(key, labels[key], "?" + urlencode({"period": key}), key == current)
        for key in figures.PERIODS
    ]


def _bars(dashboard: figures.Dashboard) -> list[charts.Bar]:
    """One per hour: labelled every 3 hours (24 h) or at each midnight (7 days), local
    time; its title says which hour ("Mon 3 Mar, 14:00").

    The names of days and months are translated once, not for each of 168 hours.
    """
    days = {number: str(name) for number, name in WEEKDAYS_ABBR.items()}
    months = {number: str(name).title() for number, name in MONTHS_3.items()}
    bars = []
    for hour in dashboard.hours:
        local = timezone.localtime(hour) if timezone.is_aware(hour) else hour
        day = f"{days[local.weekday()]} {local.day}"
        if dashboard.period == "24h":
            label = f"{local:%H:%M}" if local.hour % 3 == 0 else ""
        else:
            label = day if local.hour == 0 else ""
        title = f"{day} {months[local.month]}, {local:%H:%M}"
        bars.append(charts.Bar(hour.isoformat(), label, title))
    return bars


@dataclass(frozen=True)
class HourlyChart:
    """A stacked bar chart of one period by the hour, and the table of its numbers."""

    svg: str
    series: list[charts.Series]
    #: (hour, the value of each series): every hour, or those with a value.
    rows: list[tuple[str, list[int]]]

    @property
    def total(self) -> int:
        return sum(sum(s.values) for s in self.series)

    @property
    def table_rows(self) -> str:
        """The rows of the table, as HTML: 168 of them render faster here than in a
        template loop."""
        return charts.table_rows(self.rows)


def _hourly_chart(
    dashboard: figures.Dashboard,
    chart_id: str,
    title: str,
    summary: str,
    series: list[charts.Series],
    bars: list[charts.Bar],
    *,
    every_hour: bool,
) -> HourlyChart:
    """``summary`` is a sentence with ``%(period)s`` and ``%(totals)s`` in it."""
    totals = ", ".join(f"{sum(s.values)} {s.label}" for s in series) or _("none")
    description = (summary % {"period": _period_label(dashboard.period), "totals": totals}) + (
        " " + _("The table below the chart has the same numbers.")
    )
    rows = [(bar.title, [s.values[i] for s in series]) for i, bar in enumerate(bars)]
    return HourlyChart(
        svg=charts.stacked_bars(
            chart_id=chart_id, title=title, description=description, bars=bars, series=series
        ),
        series=series,
        rows=rows if every_hour else [row for row in rows if any(row[1])],
    )


def _pushes(dashboard: figures.Dashboard, bars: list[charts.Bar]) -> HourlyChart:
    return _hourly_chart(
        dashboard,
        "hm-pushes",
        _("Pushes per hour, by outcome"),
        _("Pushes per hour over %(period)s, stacked by outcome: %(totals)s."),
        [
            charts.Series(key, str(label), dashboard.pushes[key], colour)
            for key, (label, colour) in PUSH_LABELS.items()
        ],
        bars,
        every_hour=True,
    )


def _errors(dashboard: figures.Dashboard, bars: list[charts.Bar]) -> HourlyChart:
    return _hourly_chart(
        dashboard,
        "hm-errors",
        _("HyperID errors per hour, by kind"),
        _("HyperID errors per hour over %(period)s, stacked by kind: %(totals)s."),
        [
            charts.Series(result, result, values, index)
            for index, (result, values) in enumerate(dashboard.errors.items())
        ],
        bars,
        every_hour=False,
    )


@dataclass(frozen=True)
class OutcomeRow:
    key: str
    label: str
    count: int
    percent: str | None  # one decimal; None when nothing was sent

    @property
    def colour(self) -> str:
        return f"hm-c{OUTCOME_COLOURS[self.key]}"


def _outcomes(dashboard: figures.Dashboard) -> dict[str, Any]:
    rows = []
    for outcome in figures.OUTCOMES:
        rate = dashboard.rate(outcome)
        rows.append(
            OutcomeRow(
                outcome,
                str(State(outcome).label),
                dashboard.outcomes[outcome],
                None if rate is None else f"{rate * 100:.1f}",
            )
        )
    rate_labels: dict[str, str] = {
        State.APPROVED: _("Approval rate"),
        State.DENIED: _("Denial rate"),
        State.EXPIRED: _("Expiry rate"),
    }
    return {
        "outcome_rows": rows,
        "rates": [
            {"key": row.key, "label": rate_labels[row.key], "percent": row.percent}
            for row in rows
            if row.key in rate_labels
        ],
        "outcomes_chart": charts.share_bar(
            chart_id="hm-outcomes",
            title=_("What became of the pushes sent"),
            parts=[(row.key, row.label, row.count, OUTCOME_COLOURS[row.key]) for row in rows],
        ),
        "decided_text": ngettext(
            "%(count)s request decided", "%(count)s requests decided", dashboard.decided
        )
        % {"count": dashboard.decided},
    }


def _user_rows(
    counts: list[figures.UserCount],
    changelist: str,
    dashboard: figures.Dashboard,
    state: str | None,
) -> list[dict[str, Any]]:
    rows = []
    for entry in counts:
        query = {"user__id__exact": entry.user_id}
        requests = f"{changelist}?{urlencode(query)}"
        if state is not None:
            query.update(state=state, created_at__gte=dashboard.start.isoformat())
        rows.append(
            {
                "username": entry.username,
                "count": entry.count,
                "requests_url": requests,
                "count_url": f"{changelist}?{urlencode(query)}" if state else requests,
            }
        )
    return rows
