"""axe-core in Chromium, for the browser tests: what a page offers, and what axe finds.

``npm ci`` at the repository's root installs axe-core into node_modules/. A page is
checked against WCAG 2.x A and AA (2.2 included) and axe's landmark best practices
(every piece of content inside a landmark, one <main>, at the top level), in the
light and dark schemes at a desktop and a phone's width, on the page as it stands
(the scheme and width change in place, without reloading it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
#: axe's best-practice rules about landmarks, checked besides WCAG.
LANDMARK_RULES = [
    "region",
    "landmark-one-main",
    "landmark-no-duplicate-main",
    "landmark-main-is-top-level",
    "landmark-unique",
    "landmark-no-duplicate-banner",
    "landmark-no-duplicate-contentinfo",
    "landmark-banner-is-top-level",
    "landmark-contentinfo-is-top-level",
    "landmark-complementary-is-top-level",
]
SCHEMES = ("light", "dark")
#: A desktop's width and a phone's (390 px: an iPhone 12 to 15).
WIDTHS = (1280, 390)


def read_axe() -> str:
    """axe-core's source; skips the test (fails it where CI requires every tool)
    when ``npm ci`` has not installed it."""
    if not AXE.is_file():
        reason = f"needs axe-core at {AXE} (npm ci at the repository's root)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason} (HYPERID_MFA_REQUIRE_SERVICES=1 requires it)")
        pytest.skip(reason)
    return AXE.read_text()


def axe_violations(page: Any, axe_source: str, *, landmarks: bool = False) -> list[dict[str, Any]]:
    """What axe finds on ``page`` as it stands: WCAG A/AA violations and, with
    ``landmarks``, the landmark best practices too; every <details> opened first."""
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated by the browser's devtools, as a script tag could not be under the
        # simulator's pages' Content-Security-Policy (default-src 'none').
        page.evaluate(f"() => {{ {axe_source}\n}}")
    found = page.evaluate(
        """async ([tags, rules]) => {
            // One run at a time: axe refuses a second while the first runs.
            const wcag = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            if (!rules.length) return wcag.violations;
            const landmarks = await axe.run(document, {runOnly: {type: 'rule', values: rules}});
            return [...wcag.violations, ...landmarks.violations];
        }""",
        [WCAG_A_AA, LANDMARK_RULES if landmarks else []],
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in found
    ]


def findings_in_every_scheme_and_width(page: Any, axe_source: str) -> dict[str, list[Any]]:
    """axe's findings (WCAG A/AA and landmarks) on ``page`` in each scheme at each
    width, keyed "dark 390"; only the combinations with findings."""
    findings = {}
    size = page.viewport_size or {"width": 1280, "height": 900}
    try:
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": size["height"]})
                found = axe_violations(page, axe_source, landmarks=True)
                if found:
                    findings[f"{scheme} {width}"] = found
    finally:
        page.emulate_media(color_scheme="light")
        page.set_viewport_size(size)
    return findings


def assert_page(
    page: Any, axe_source: str | None, heading: str, actions: list[str], within: str = "main"
) -> None:
    """``page`` shows ``heading`` and offers ``actions`` (see :func:`outline`), and axe
    finds nothing in either scheme at either width. With no ``axe_source`` (axe-core
    not installed, outside CI), only what the page shows is checked."""
    assert outline(page, within) == {"heading": heading, "actions": actions}
    if axe_source is not None:
        assert findings_in_every_scheme_and_width(page, axe_source) == {}


def axe_if_installed() -> str | None:
    """axe-core's source; None where it is not installed and CI does not require it."""
    if AXE.is_file() or REQUIRE_SERVICES:
        return read_axe()
    return None


def outline(page: Any, within: str = "main") -> dict[str, Any]:
    """What a person sees of ``page``: the heading (the first <h1> ``within``) and the
    actions offered there, the visible buttons and links by their text, in order."""
    return page.evaluate(
        """within => {
            const root = document.querySelector(within) || document.body;
            const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
            const heading = root.querySelector('h1');
            const actions = [...root.querySelectorAll(
                'a[href], button, input[type=submit], input[type=button]')]
                .filter(visible)
                .map(e => ((e.innerText || e.value || '').trim().replace(/\\s+/g, ' ')
                           + (e.disabled ? ' (disabled)' : '')));
            return {heading: heading ? heading.innerText.trim() : null, actions};
        }""",
        within,
    )
