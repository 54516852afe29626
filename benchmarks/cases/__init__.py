"""The benchmark cases, by number: each module has ``NUMBER``, ``TITLE`` and
``run(options) -> CaseResult``. Import after Django is set up."""

from __future__ import annotations

from types import ModuleType

from . import bulk, client, dashboard, endpoint, gate, latency, polling

CASES: dict[int, ModuleType] = {
    module.NUMBER: module for module in (client, gate, polling, bulk, endpoint, dashboard, latency)
}
