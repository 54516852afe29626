"""django-hyperid-mfa: gate sensitive Django actions on a HyperID push-MFA approval.

The public API, importable from here (loaded on first use, so that importing the
package needs no configured Django)::

    from hyperid_mfa import require_approval, require_mfa_approval, MFAApproved

- the gate: ``require_approval`` (inside a view, after validation; it raises
  ``MFAApprovalRequired``, answered by DRF or ``hyperid_mfa.middleware.MFAApprovalMiddleware``),
  ``require_mfa_approval``, ``MFAApprovalRequiredMixin``, ``MFAApproved``;
- the services: ``start_request``, ``refresh_request``, ``cancel_request``,
  ``consume_approval``;
- tokens: ``store_tokens``, ``forget_tokens``;
- extension: ``MFAAdapter``, ``get_adapter``;
- failures: ``HyperIDError`` and its subclasses in ``hyperid_mfa.exceptions``.

Also public, by their module paths: ``hyperid_mfa.urls``, ``hyperid_mfa.signals``,
``hyperid_mfa.models`` (``MFARequest``, ``HyperIDToken``), ``hyperid_mfa.constants``,
``hyperid_mfa.exceptions``, ``hyperid_mfa.middleware``, ``hyperid_mfa.testing``, the settings of
``docs/settings.md``, the commands and the Celery tasks. Every other module is
internal and may change in any release. docs/design.md has the whole contract.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "1.0.0rc1"

_PUBLIC = {
    "require_approval": "hyperid_mfa.gate.approval",
    "MFAApprovalRequired": "hyperid_mfa.exceptions",
    "require_mfa_approval": "hyperid_mfa.decorators",
    "MFAApprovalRequiredMixin": "hyperid_mfa.mixins",
    "MFAApproved": "hyperid_mfa.permissions",
    "start_request": "hyperid_mfa.services",
    "refresh_request": "hyperid_mfa.services",
    "cancel_request": "hyperid_mfa.services",
    "consume_approval": "hyperid_mfa.services",
    "store_tokens": "hyperid_mfa.tokens",
    "forget_tokens": "hyperid_mfa.tokens",
    "MFAAdapter": "hyperid_mfa.adapter",
    "get_adapter": "hyperid_mfa.adapter",
    "HyperIDError": "hyperid_mfa.exceptions",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    return export(__name__, _PUBLIC, name)


def export(package: str, public: dict[str, str], name: str) -> Any:
    """``package``'s ``name``, from the module ``public`` maps it to, imported now.

    The package ``__init__`` modules of the app export their names this way (PEP 562),
    so that importing a package, or one of its modules, imports nothing else: the
    settings read ``hyperid_mfa.client.wire`` before the client can be imported.
    """
    module = public.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, package), name)


def __dir__() -> list[str]:
    return sorted(__all__)
