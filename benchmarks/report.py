"""The results as a terminal table and as ``benchmarks/RESULTS.md``.

RESULTS.md has two parts: what ``run.py`` writes (machine, versions, the table, how
each figure was taken), rewritten by each run, and, below :data:`KEEP_MARKER`, the
analysis people write about the figures, which every run keeps as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .harness import CaseResult

KEEP_MARKER = (
    "<!-- Everything below this line is written by hand and kept by benchmarks/run.py. -->"
)
HEADERS = ("#", "measure", "figure", "ratio", "goal", "met")


@dataclass(frozen=True)
class RunInfo:
    """What a reader needs to judge the figures: where, with what, when, how loaded."""

    date: str
    command: str
    cpu: str
    cores: int
    load_start: str
    load_end: str
    versions: Mapping[str, str]
    seconds: float
    smoke: bool


def _met(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: ""}[value]


def rows(results: Sequence[CaseResult]) -> list[tuple[str, ...]]:
    return [
        (
            str(result.number),
            figure.measure,
            figure.value,
            figure.ratio,
            figure.goal,
            _met(figure.met),
        )
        for result in results
        for figure in result.figures
    ]


def table(results: Sequence[CaseResult]) -> str:
    """The figures as a plain-text table for the terminal."""
    body = [tuple(cell.replace("**", "") for cell in row) for row in rows(results)]
    widths = [max(len(row[i]) for row in [HEADERS, *body]) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [HEADERS, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown(results: Sequence[CaseResult], info: RunInfo, kept: str) -> str:
    """RESULTS.md: the run's part, then ``kept`` (the hand-written analysis)."""
    minutes, seconds = divmod(round(info.seconds), 60)
    versions = ", ".join(f"{name} {version}" for name, version in info.versions.items())
    out = [
        "# Benchmark results",
        "",
        f"Written by `{info.command}` on {info.date}"
        + (" (smoke run: tiny counts, one round; not figures to quote)" if info.smoke else "")
        + ". What each case does and how to run it: [README.md](README.md). Everything "
        "down to the analysis is rewritten by each run.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {_escape(info.cpu)}, {info.cores} cores |",
        f"| load average (1, 5, 15 min) | {info.load_start} at the start, "
        f"{info.load_end} at the end (the run's own processes included) |",
        f"| versions | {_escape(versions)} |",
        f"| run time | {minutes} min {seconds:02d} s |",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    out += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in rows(results)]
    out += ["", "## How each figure was taken", ""]
    for result in results:
        out.append(f"**{result.number}. {result.title}.** " + " ".join(result.notes))
        out.append("")
    out += [KEEP_MARKER, ""]
    return "\n".join(out) + kept.lstrip("\n")


def kept_part(existing: str | None) -> str:
    """The hand-written part of an existing RESULTS.md (empty if it has none)."""
    if not existing or KEEP_MARKER not in existing:
        return ""
    return existing.split(KEEP_MARKER, 1)[1]
