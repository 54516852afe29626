"""django-hyperid-mfa: gate sensitive Django actions on a HyperID push-MFA approval.

The public API, importable from here (loaded on first use, so that importing the
package needs no configured Django)::

    from hyperid_mfa import require_approval, require_mfa_approval, MFAApproved

These are the names of docs/reference.md (``tests/test_layout.py`` keeps the two in
step), each also importable from the module the reference names: the gate, the
services, tokens, extension, the models and the failures. Also public, by their
module paths: ``hyperid_mfa.urls``, ``hyperid_mfa.signals``, ``hyperid_mfa.constants``,
``hyperid_mfa.conf.mfa_settings``, ``hyperid_mfa.testing``, the sign-in integrations
in ``hyperid_mfa.contrib``, the settings of docs/settings.md, the commands and the
Celery tasks. Every other module is internal and may change in any release.
docs/design.md has the whole contract.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "1.0.0rc1"

_PUBLIC = {
    # the gate
    "require_approval": "hyperid_mfa.gate.approval",
    "MFAApprovalMiddleware": "hyperid_mfa.middleware",
    "require_mfa_approval": "hyperid_mfa.decorators",
    "MFAApprovalRequiredMixin": "hyperid_mfa.mixins",
    "MFAApproved": "hyperid_mfa.permissions",
    "MFAProtectedAdminMixin": "hyperid_mfa.admin",
    # the services
    "start_request": "hyperid_mfa.services",
    "refresh_request": "hyperid_mfa.services",
    "cancel_request": "hyperid_mfa.services",
    "consume_approval": "hyperid_mfa.services",
    "refresh_pending": "hyperid_mfa.services",
    "purge_finished": "hyperid_mfa.services",
    # tokens
    "store_tokens": "hyperid_mfa.tokens",
    "store_sign_in_tokens": "hyperid_mfa.tokens",
    "forget_tokens": "hyperid_mfa.tokens",
    "StoredTokenProvider": "hyperid_mfa.tokens",
    # extension
    "MFAAdapter": "hyperid_mfa.adapter",
    "get_adapter": "hyperid_mfa.adapter",
    # the models
    "MFARequest": "hyperid_mfa.models",
    "State": "hyperid_mfa.models",
    "HyperIDToken": "hyperid_mfa.models",
    "ApprovalWindow": "hyperid_mfa.models",
    # the failures
    "MFARefusal": "hyperid_mfa.exceptions",
    "HyperIDError": "hyperid_mfa.exceptions",
    "TransientError": "hyperid_mfa.exceptions",
    "PermanentError": "hyperid_mfa.exceptions",
    "PolicyRefusal": "hyperid_mfa.exceptions",
    "MFAApprovalRequired": "hyperid_mfa.exceptions",
    "MiddlewareMissing": "hyperid_mfa.exceptions",
    "HyperIDConfigurationError": "hyperid_mfa.exceptions",
    "MissingExtra": "hyperid_mfa.exceptions",
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
