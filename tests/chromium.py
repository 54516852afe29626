"""Debian's Chromium, as every browser test launches it through Playwright.

Playwright's own browser download is never used: it is not on this machine's
network, and CI installs Debian's ``chromium`` package instead.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
#: Where a failed browser test leaves its screenshots.
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def save_screenshots(request, context) -> None:  # type: ignore[no-untyped-def]
    """After a failed test (``request``: its pytest request), a screenshot of each of
    the browser ``context``'s pages, under ARTIFACTS."""
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    for number, page in enumerate(context.pages):
        name = f"{request.node.name}-{number}.png".replace("/", "_")
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def launch(playwright):  # type: ignore[no-untyped-def]
    """A headless Chromium of ``playwright`` (a ``sync_playwright()`` context)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def open_phone(page, url: str) -> None:  # type: ignore[no-untyped-def]
    """Open the simulator's phone page ``url`` in ``page``, which may already show it.

    An open phone page reloads itself when its pushes change; a ``goto`` that meets
    that reload is interrupted by a navigation to the same address, which ends where
    the ``goto`` would have. Any other failure is raised.
    """
    from playwright.sync_api import Error

    try:
        page.goto(url)
    except Error as error:
        if f'interrupted by another navigation to "{url}"' not in str(error):
            raise
        page.wait_for_load_state("load")
