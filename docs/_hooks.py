"""MkDocs hooks of the documentation site (mkdocs.yml): the docstrings are written for
Sphinx-style roles (``:class:`HyperIDError```); the API reference shows the name alone."""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    return ROLE.sub("", html)
