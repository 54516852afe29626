"""The benchmark harness (``benchmarks/``) in smoke mode: every case still produces its figures.

Tiny counts and one round: the timings mean nothing here and nothing is asserted
about them. What is asserted is that each case runs end to end, that the results
render, and the figures that do not depend on the machine: the queries the gate
adds (an approval known here, and one it reads from HyperID itself), and that
polling never asks HyperID about a request more than once per
``MIN_REFRESH_INTERVAL``. (``tests/test_gate_queries.py`` asserts the same counts on
the test project's views.) Cases 3 to 6 need PostgreSQL (gunicorn workers and the
poller's threads share the database): marked ``postgres``, they run in CI's
PostgreSQL step and skip elsewhere. The full run is ``python benchmarks/run.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if not (BENCHMARKS / "harness.py").is_file():  # an sdist ships tests/, not benchmarks/
    pytest.skip("benchmarks/ is not part of this tree", allow_module_level=True)

from benchmarks import harness, report  # noqa: E402
from benchmarks.cases import CASES  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def smoke(tmp_path: Path) -> harness.Options:
    return harness.Options(smoke=True, load_generator="python", workdir=tmp_path)


def produced_figures(result: harness.CaseResult) -> harness.CaseResult:
    assert result.figures, f"case {result.number} produced no figure"
    for figure in result.figures:
        assert figure.measure
        assert figure.value
        if figure.goal and figure.goal != "reported":
            assert figure.met is not None, f"{figure.measure}: a goal but no verdict"
    assert result.notes
    assert report.table([result])
    return result


def test_case_1_compares_the_pooled_client_with_a_request_per_call(smoke):
    result = produced_figures(CASES[1].run(smoke))
    assert result.data["ratio"] > 0
    assert len(result.data["ours_per_second"]) == 1


@pytest.fixture
def django_otp(settings):
    """django-otp's static devices, which case 2 measures the gate against: installed
    and migrated for this test only (the benchmark project installs them for good)."""
    from django.apps import apps
    from django.contrib import admin
    from django.core.management import call_command

    registered = dict(admin.site._registry)
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, *CASES[2].OTP_APPS]
    # The registry repopulates without expiring the models' relation caches: deleting a
    # user would not cascade to the devices.
    apps.clear_cache()
    call_command("migrate", "otp_static", verbosity=0)
    yield
    # Left behind, its table's key to auth_user would stop the next flush of the users.
    call_command("migrate", "otp_static", "zero", verbosity=0)
    # The repopulated registry ran the admin's autodiscover again, which registered
    # django-otp's models on the default site: an admin page of a later test, listing
    # the apps, would look for an app no longer installed.
    admin.site._registry.clear()
    admin.site._registry.update(registered)


@pytest.mark.django_db(transaction=True)
def test_case_2_measures_the_gate_beside_django_otp_and_counts_their_queries(smoke, django_otp):
    result = produced_figures(CASES[2].run(smoke))
    data = result.data
    assert data["ratio"] > 0
    assert data["otp_ratio"] > 0
    assert len(data["shares"]) == 1
    added = data["queries_gated"] - data["queries_plain"]
    assert 0 < added <= CASES[2].GOAL_QUERIES, data["sql_gated"]
    inline = data["queries_inline"] - data["queries_inline_plain"]
    assert added < inline <= CASES[2].GOAL_QUERIES_INLINE, data["sql_inline"]
    # django-otp's check reads the device and the token, deletes it, saves the device.
    assert data["queries_otp"] - data["queries_plain"] >= 3, data["sql_otp"]


def test_statements_are_described_by_verb_and_table():
    describe = CASES[2].statement
    assert describe('SELECT "a"."id" FROM "django_session" WHERE 1') == "SELECT django_session"
    assert (
        describe('UPDATE "hyperid_mfa_mfarequest" SET "x" = 1 WHERE 1 RETURNING "id"')
        == "UPDATE hyperid_mfa_mfarequest ... RETURNING"
    )
    assert describe('DELETE FROM "otp_static_statictoken" WHERE 1') == (
        "DELETE otp_static_statictoken"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_case_3_counts_upstream_calls_under_polling_pressure(smoke):
    result = produced_figures(CASES[3].run(smoke))
    for upstream, allowed in zip(result.data["upstream"], result.data["allowed"], strict=True):
        assert 0 < upstream <= allowed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_case_4_times_the_poller_against_the_floor_and_the_sequential_loop(smoke):
    result = produced_figures(CASES[4].run(smoke))
    assert result.data["floor"] > 0
    assert all(wall > 0 for wall in result.data["walls"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_case_5_loads_request_detail_and_the_bare_view(smoke):
    result = produced_figures(CASES[5].run(smoke))
    assert result.data["ratio"] > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_case_6_times_the_dashboard_over_generated_requests(smoke):
    result = produced_figures(CASES[6].run(smoke))
    assert set(result.data["ms"]) == {"24h cold", "24h warm", "7d cold", "7d warm"}
    assert all(value > 0 for values in result.data["ms"].values() for value in values)
    # The plans of a warm 7-day view: the requests of the current hour only.
    assert any("hyperid_mfa_mfarequest" in plan for plan in result.data["plans"]["warm 7d"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_wrk_load_generator_drives_the_gunicorn_cases(tmp_path):
    if shutil.which("wrk") is None:
        skip_or_fail("wrk is not installed (apt-get install wrk); the Python generator is tested")
    options = harness.Options(smoke=True, load_generator="wrk", workdir=tmp_path)
    result = produced_figures(CASES[5].run(options))
    assert result.data["ratio"] > 0


def test_a_missing_wrk_is_named_with_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert harness.choose_generator("auto") == "python"
    with pytest.raises(harness.BenchmarkError, match="apt-get install wrk"):
        harness.choose_generator("wrk")


def test_results_markdown_is_rewritten_but_keeps_the_hand_written_analysis(tmp_path):
    result = harness.CaseResult(
        9,
        "A case",
        [harness.Figure("speed", "2/s vs 1/s", "2.00x", ">= 1.5x", True)],
        ["One round."],
    )
    info = report.RunInfo(
        date="2026-01-01 00:00 UTC",
        command="python benchmarks/run.py",
        cpu="Some CPU",
        cores=2,
        load_start="0.10 0.20 0.30",
        load_end="0.40 0.50 0.60",
        versions={"Python": "3.13.0", "Django": "6.0"},
        seconds=125,
        smoke=False,
    )
    first = report.markdown([result], info, report.kept_part(None))
    assert "| 9 | speed | 2/s vs 1/s | 2.00x | >= 1.5x | yes |" in first
    assert "2 min 05 s" in first
    edited = first + "## Analysis\n\nWhy the figures are what they are.\n"
    again = report.markdown([result], info, report.kept_part(edited))
    assert again.endswith("## Analysis\n\nWhy the figures are what they are.\n")
    assert again.count(report.KEEP_MARKER) == 1


def test_statistics_helpers():
    assert harness.median([3, 1, 2]) == 2
    assert harness.percentile(list(range(1, 101)), 99) == 99
    assert harness.percentile([5.0], 50) == 5.0
    assert harness.span([1.0, 2.5]) == "1.00 to 2.50"
    assert harness.span([1.0]) == "1.00"
    with pytest.raises(harness.BenchmarkError):
        harness.median([])


@pytest.mark.postgres
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_case_7_times_approvals_in_chromium_and_a_client_and_counts_waiting_costs(smoke):
    result = produced_figures(CASES[7].run(smoke))
    data = result.data
    # The action ran after the approval: each delay is positive, whatever the machine.
    assert data["delays"]
    assert all(delay > 0 for delay in data["delays"])
    assert data["client_delays"]
    assert all(delay > 0 for delay in data["client_delays"])
    assert data["denials"]
    assert data["crowd_failures"] == 0
