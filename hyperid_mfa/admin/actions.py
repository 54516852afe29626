"""Bulk actions under ``MFAProtectedAdminMixin``: which are protected, and their gate.

Django calls an action outside any transaction from the change list, so the gate runs
in the wrapper ``get_actions`` puts around each protected action. Django 6.1 also runs
actions from the change form, inside the transaction that view opens; there the mixin
asks the gate before calling the view (``_mfa_check_form_action``), and the wrapper finds
the approval on the request. Either way the action runs on the rows approved, once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from django.contrib.admin import options as admin_options
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import TO_FIELD_VAR
from django.contrib.admin.utils import model_format_dict, unquote
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from ..gate import atomicity
from .changes import ProtectedChange, option_names

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    _ModelAdmin = ModelAdmin[Any]
else:
    _ModelAdmin = object

# Whether an approved action runs now, and an action approved before its view ran.
_IN_ACTION = "_hyperid_mfa_admin_in_action"
_APPROVED_ACTION = "_hyperid_mfa_admin_approved_action"
# Where Django 6.1 also offers actions: the change form (Django 5.2: the change list only).
CHANGE_FORM = getattr(getattr(admin_options, "ActionLocation", None), "CHANGE_FORM", None)


class ProtectedActions(_ModelAdmin):
    """The actions' part of ``MFAProtectedAdminMixin``."""

    mfa_protect_actions: Any
    mfa_protect_delete: bool

    if TYPE_CHECKING:

        def _mfa_require(
            self, request: HttpRequest, change: ProtectedChange, obj: Model | None
        ) -> HttpResponse | None: ...

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        # Django 6.1 passes where the actions are shown (the change list, or the change
        # form) and describes each with an Action; Django 5.2 neither.
        parent: Any = super()  # typed by the Django it was written for
        if action_location is None:
            actions: dict[str, Any] = parent.get_actions(request)
        else:
            actions = parent.get_actions(request, action_location=action_location)
        protected = self._mfa_protected_actions()
        wrapped = {}
        for name, action in actions.items():
            func, _name, description = action_parts(action)
            run = self._mfa_wrap_action(func, name, description, name in protected)
            wrapped[name] = with_func(action, run)
        return wrapped

    def _mfa_protected_actions(self) -> set[str]:
        protected = set(option_names(self.mfa_protect_actions, "mfa_protect_actions", self))
        if self.mfa_protect_delete:
            protected.add("delete_selected")
        return protected

    def _mfa_wrap_action(
        self, func: Callable[..., Any], name: str, description: Any, protected: bool
    ) -> Callable[..., Any]:
        """The action, gated if ``protected``; in the transactions ATOMIC_REQUESTS would
        open, after the gate."""

        @functools.wraps(func)
        def run(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
            change = (
                self._mfa_action_change(request, name, description, queryset) if protected else None
            )
            if change is not None:
                if getattr(request, _APPROVED_ACTION, None) == change:
                    delattr(request, _APPROVED_ACTION)  # approved before the view's transaction
                else:
                    refusal = self._mfa_require(request, change, None)
                    if refusal is not None:
                        return refusal
                # The rows approved, whatever else matches the selection by now.
                with running_action(request), atomicity.as_atomic_requests(request, owner=self):
                    return func(modeladmin, request, queryset.filter(pk__in=change.keys))
            with atomicity.as_atomic_requests(request, owner=self):
                return func(modeladmin, request, queryset)

        return run

    def _mfa_action_change(
        self, request: HttpRequest, name: str, description: Any, queryset: QuerySet[Any]
    ) -> ProtectedChange | None:
        """What running the action on ``queryset`` does now; None where it only shows a
        page (Django's ``delete_selected`` asks for confirmation first)."""
        if not self._mfa_action_acts_now(request, name, queryset):
            return None
        keys = queryset.values_list("pk", flat=True)
        return ProtectedChange(
            "action",
            self.model,
            keys=tuple(sorted(str(key) for key in keys)),
            action=name,
            action_description=str(description) % model_format_dict(self.opts),
        )

    def _mfa_check_form_action(self, request: HttpRequest, object_id: str) -> HttpResponse | None:
        """An action run from the change form (Django 6.1), found as Django's view will
        run it. That view opens its transaction before it runs the action, so the gate
        runs here, before it; the action then finds its approval on the request."""
        name = request.POST.get(f"{CHANGE_FORM.value}-action", "")  # type: ignore[union-attr]
        if name not in self._mfa_protected_actions():
            return None
        actions: Any = self.get_actions(request, action_location=CHANGE_FORM)
        to_field = request.POST.get(TO_FIELD_VAR, request.GET.get(TO_FIELD_VAR))
        if name not in actions or (to_field and not self.to_field_allowed(request, to_field)):
            return None
        obj = self.get_object(request, unquote(object_id), to_field)
        if obj is None or request.POST.getlist(ACTION_CHECKBOX_NAME) != [str(obj.pk)]:
            return None  # Django's view refuses it
        description = action_parts(actions[name])[2]
        queryset = self.get_queryset(request).filter(pk=obj.pk)
        change = self._mfa_action_change(request, name, description, queryset)
        if change is None:
            return None
        refusal = self._mfa_require(request, change, None)
        if refusal is None:
            setattr(request, _APPROVED_ACTION, change)
        return refusal

    def _mfa_action_acts_now(
        self, request: HttpRequest, name: str, queryset: QuerySet[Any]
    ) -> bool:
        """Whether the action does its work on this call. Django's ``delete_selected``
        first shows a confirmation page, and deletes only when that page's form comes
        back confirmed (and nothing stands in the way)."""
        if name != "delete_selected":
            return True
        if not request.POST.get("post"):
            return False
        _deleted, _counts, perms_needed, protected = self.get_deleted_objects(queryset, request)
        return not perms_needed and not protected


def action_parts(action: Any) -> tuple[Callable[..., Any], str, Any]:
    """(function, name, description) of an action as the admin lists it: a tuple up
    to Django 6.0, an ``Action`` from Django 6.1."""
    if isinstance(action, tuple):
        return action[0], action[1], action[2]
    return action.func, action.name, action.description


def with_func(action: Any, func: Callable[..., Any]) -> Any:
    """``action`` as the admin lists it, running ``func`` instead."""
    if isinstance(action, tuple):
        return (func, *action[1:])
    return dataclasses.replace(action, func=func)


def is_change_form_action(request: HttpRequest, object_id: str | None) -> bool:
    """Whether the change form's POST runs an action (Django 6.1) rather than saves."""
    return (
        CHANGE_FORM is not None
        and object_id is not None
        and f"{CHANGE_FORM.value}-action" in request.POST
        and not {"_save", "_continue", "_addanother"} & request.POST.keys()
    )


def in_action(request: HttpRequest) -> bool:
    return bool(getattr(request, _IN_ACTION, False))


@contextlib.contextmanager
def running_action(request: HttpRequest) -> Iterator[None]:
    """An approved action runs: what it saves or deletes is what was approved."""
    setattr(request, _IN_ACTION, True)
    try:
        yield
    finally:
        setattr(request, _IN_ACTION, False)
