"""Step-up in the Django admin: ``MFAProtectedAdminMixin``.

::

    from hyperid_mfa.admin import MFAProtectedAdminMixin


    @admin.register(Payee)
    class PayeeAdmin(MFAProtectedAdminMixin, admin.ModelAdmin):
        mfa_protect_fields = ("iban",)  # a change of these, or an add, needs approval
        mfa_protect_delete = True  # the delete view and the bulk "delete_selected"
        mfa_protect_actions = ("mark_verified",)

A protected save, delete or action runs only with a HyperID approval of exactly that
operation, through the same :class:`~hyperid_mfa.gate.Gate` as every gated view. Its
``bind`` callable returns what the operation does (the model, the primary keys, each
protected field's new value, the protected inline rows added, changed or deleted, an
action's name and the keys it runs on); the gate adds the method, path, URL
arguments, query string and browser session. Gate actions are named
``admin.<app_label>.<model_name>.add``, ``.change`` (the change form and the change
list's editable columns), ``.delete`` and ``.action.<action name>``.

The gate never works inside a transaction, and the admin saves and deletes inside
``transaction.atomic()``. So the mixin asks first: it builds and validates the form
and the inline formsets as Django's view will, works out what would change, runs the
gate, and calls Django's view only once the gate lets it. An invalid form goes
straight to Django's view (its errors, no push). Actions are gated where Django calls
them from the change list, outside any transaction, and before the view's transaction
when Django 6.1 runs them from the change form (``hyperid_mfa.admin.actions``). Then,
inside Django's transaction, ``save_model``, ``save_formset``, ``delete_model`` and
``delete_queryset`` refuse (403) a protected change that this request did not check:
a row that changed in the meantime, or a custom view or action that saves through
them without the gate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from django.contrib.admin.options import IS_POPUP_VAR, TO_FIELD_VAR
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db.models import Model, QuerySet
from django.forms import all_valid
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django.utils.translation import gettext as _

from ..adapter import format_duration
from ..checks.settings import E022
from ..gate import atomicity, rendering
from ..gate.decide import Gate, check_window_options
from .actions import ProtectedActions, action_parts, in_action, is_change_form_action
from .changes import (
    ALL_FIELDS,
    Entry,
    FieldChange,
    ProtectedChange,
    Protection,
    RowChange,
    default_question,
    entries_of,
    is_field,
    option_names,
    qualname,
    row_changes,
)
from .values import stored_rows

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    _ModelAdmin = ModelAdmin[Any]
else:
    _ModelAdmin = object


logger = logging.getLogger("hyperid_mfa")

#: The template the approval page extends in the admin: the admin's own layout.
ADMIN_BASE_TEMPLATE = "hyperid_mfa/admin/base.html"
# What this request checked with the gate.
_CHECKED = "_hyperid_mfa_admin_checked"


# --- the mixin ----------------------------------------------------------------------------


class MFAProtectedAdminMixin(ProtectedActions):
    """Asks for a HyperID approval before a protected save, delete or action runs.

    Options (class attributes):

    - ``mfa_protect_fields``: field names whose change, or an add, needs approval;
      ``"__all__"`` for every field of the form. An inline protects its rows with
      its own ``mfa_protect_fields`` and ``mfa_protect_delete``.
    - ``mfa_protect_delete``: deleting needs approval (the delete view, and the bulk
      ``delete_selected`` action).
    - ``mfa_protect_actions``: names of actions that need approval (``"delete_selected"``
      among them if only the bulk delete should).
    - ``mfa_max_age``: seconds an approval stays usable (default ``APPROVAL_MAX_AGE``).
    - ``mfa_window``, ``mfa_scope``: one approval also opens a window of ``mfa_window``
      seconds in which this admin's protected operations (or, with ``mfa_scope``,
      those of every admin and gate of that scope) run without a push, whatever
      they change; the push says so. The default scope is the model's,
      ``admin.<app_label>.<model_name>``.

    Hook: ``get_mfa_question(request, obj, change)``, the text on the phone.
    """

    mfa_protect_fields: Sequence[str] | str = ()
    mfa_protect_delete: bool = False
    mfa_protect_actions: Sequence[str] = ()
    mfa_max_age: float | None = None
    mfa_window: int | None = None
    mfa_scope: str | None = None

    def get_mfa_question(
        self, request: HttpRequest, obj: Model | None, change: ProtectedChange
    ) -> str:
        """The question on the phone. ``obj`` is the object as it is now (None for an
        add, a bulk action or the change list's editable columns); ``change`` is the
        :class:`ProtectedChange`: what would change, with the new values."""
        return default_question(change, obj)

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        return [*super().check(**kwargs), *self._mfa_check_options()]

    def _mfa_check_options(self) -> list[CheckMessage]:
        """E022: an option that names what the admin does not have protects nothing."""
        problems: list[str] = []
        for options, model in [(self, self.model), *((i, i.model) for i in self.inlines)]:
            try:
                names = Protection.of(options).fields
            except ImproperlyConfigured as err:
                problems.append(str(err))
                continue
            if names != ALL_FIELDS:
                form_fields = getattr(getattr(options, "form", None), "base_fields", {})
                unknown = [n for n in names if not is_field(model, n) and n not in form_fields]
                if unknown:
                    problems.append(
                        f"{qualname(options)}.mfa_protect_fields names no field of "
                        f"{model._meta.label}: {', '.join(map(repr, unknown))}"
                    )
        try:
            # Only the names given: mfa_protect_delete also covers a disabled
            # delete_selected, which is no mistake.
            named = set(option_names(self.mfa_protect_actions, "mfa_protect_actions", self))
        except ImproperlyConfigured as err:
            problems.append(str(err))
        else:
            base_actions = self._get_base_actions()  # type: ignore[attr-defined]
            actions = {action_parts(action)[1] for action in base_actions}
            unknown = sorted(named - actions)
            if unknown:
                problems.append(
                    f"{qualname(self)}.mfa_protect_actions names no action of the admin: "
                    f"{', '.join(map(repr, unknown))}"
                )
        try:
            check_window_options(self.mfa_window, self.mfa_scope)
        except (TypeError, ValueError) as err:
            problems.append(f"{qualname(self)}.mfa_window / mfa_scope: {err}")
        return [
            Error(
                problem,
                hint="A protection that names nothing protects nothing: name the model's "
                "fields and the admin's actions as Django spells them.",
                obj=type(self),
                id=E022,
            )
            for problem in problems
        ]

    # --- Django's views, asked before they start ---------------------------------------

    def get_urls(self) -> list[URLPattern]:
        urls: list[URLPattern] = super().get_urls()
        info = (self.opts.app_label, self.opts.model_name)
        gated = {
            "{}_{}_{}".format(*info, view) for view in ("changelist", "add", "change", "delete")
        }
        for url in urls:
            if url.name in gated:
                # The gate must commit before any transaction opens: these views open
                # the ones ATOMIC_REQUESTS would, after the gate (hyperid_mfa.gate.atomicity).
                atomicity.exclude_from_atomic_requests(url.callback, owner=self)
        return urls

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "POST":
            if is_change_form_action(request, object_id):
                refusal = self._mfa_check_form_action(request, str(object_id))
            else:
                refusal = self._mfa_check_save(request, object_id)
            if refusal is not None:
                return refusal
        with atomicity.as_atomic_requests(request, owner=self):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST" and self.mfa_protect_delete:
            refusal = self._mfa_check_delete(request, object_id)
            if refusal is not None:
                return refusal
        with atomicity.as_atomic_requests(request, owner=self):
            return super().delete_view(request, object_id, extra_context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method != "POST":
            with atomicity.as_atomic_requests(request, owner=self):
                return super().changelist_view(request, extra_context)
        refusal = self._mfa_check_list_edit(request)
        if refusal is not None:
            return refusal
        # Actions run in the transactions ATOMIC_REQUESTS would open, after their gate
        # (get_actions); the editable columns are saved in Django's own transaction.
        return super().changelist_view(request, extra_context)

    # --- inside Django's transaction: nothing protected that was not checked -----------

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        protection = Protection.of(self)
        if form is not None and protection.fields:
            # The change list's editable columns save a row its formset adds (a form
            # past INITIAL_FORMS) with change=True: an add all the same.
            adding = not change or obj.pk is None
            stored = None if adding else stored_rows(self.model, [obj.pk]).get(str(obj.pk))
            fields = protection.changes(form, stored, adding=adding)
            key = "" if adding else str(obj.pk)
            row = RowChange("add" if adding else "change", self.model, key, "", fields)
            self._mfa_verify(request, row.entries())
        super().save_model(request, obj, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        parent = form.instance if change else None
        for inline in self._mfa_inlines_of(request, parent, formset):
            rows = row_changes(
                formset,
                Protection.of(inline),
                can_change=inline.has_change_permission(request, parent),
            )
            self._mfa_verify(request, entries_of(rows))
        super().save_formset(request, form, formset, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        if self.mfa_protect_delete:
            self._mfa_verify(request, {("delete", self.opts.label_lower, str(obj.pk), "", "", "")})
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        if "delete_selected" in self._mfa_protected_actions() and not in_action(request):
            model = self.opts.label_lower
            keys = queryset.values_list("pk", flat=True)
            self._mfa_verify(request, {("delete", model, str(pk), "", "", "") for pk in keys})
        super().delete_queryset(request, queryset)

    # --- what each view would do -------------------------------------------------------

    def _mfa_check_save(self, request: HttpRequest, object_id: str | None) -> HttpResponse | None:
        found = self._mfa_change_of_form(request, object_id)
        if found is None:
            return None
        change, obj = found
        return self._mfa_require(request, change, obj)

    def _mfa_change_of_form(
        self, request: HttpRequest, object_id: str | None
    ) -> tuple[ProtectedChange, Model | None] | None:
        """What the change form's POST would save, found as Django's view will find it
        (``ModelAdmin._changeform_view``); None where that view refuses the request or
        shows the form again, which needs no approval."""
        to_field = request.POST.get(TO_FIELD_VAR, request.GET.get(TO_FIELD_VAR))
        if to_field and not self.to_field_allowed(request, to_field):
            return None
        if "_saveasnew" in request.POST:
            object_id = None
        adding = object_id is None
        obj = None
        if adding:
            if not self.has_add_permission(request):
                return None
        else:
            obj = self.get_object(request, unquote(str(object_id)), to_field)
            if obj is None or not self.has_change_permission(request, obj):
                return None
        fieldsets = self.get_fieldsets(request, obj)
        form_class = self.get_form(
            request, obj, change=not adding, fields=flatten_fieldsets(fieldsets)
        )
        form = form_class(request.POST, request.FILES, instance=obj)
        formsets, inlines = self._create_formsets(request, form.instance, change=not adding)  # type: ignore[attr-defined]
        form_valid = form.is_valid()
        if not (all_valid(formsets) and form_valid):
            return None
        # The row as the database holds it: validation wrote the new values into obj.
        key = "" if adding else str(obj.pk)  # type: ignore[union-attr]
        stored = None if adding else stored_rows(self.model, [obj.pk]).get(key)  # type: ignore[union-attr]
        if not adding and stored is None:
            return None  # gone meanwhile: Django's view says so
        protection = Protection.of(self)
        fields: tuple[FieldChange, ...] = ()
        entries: set[Entry] = set()
        if protection.fields:
            fields = protection.changes(form, stored, adding=adding)
            entries |= RowChange(
                "add" if adding else "change", self.model, key, "", fields
            ).entries()
        rows = []
        for formset, inline in zip(formsets, inlines, strict=True):
            rows += row_changes(
                formset,
                Protection.of(inline),
                can_change=inline.has_change_permission(request, None if adding else obj),
            )
        change = ProtectedChange(
            "add" if adding else "change",
            self.model,
            keys=() if adding else (key,),
            fields=fields,
            rows=tuple(rows),
            entries=frozenset(entries | entries_of(rows)),
        )
        return change, stored

    def _mfa_check_delete(self, request: HttpRequest, object_id: str) -> HttpResponse | None:
        """The delete view's confirmation, as ``ModelAdmin._delete_view`` handles it."""
        if not request.POST:
            return None  # the confirmation page
        to_field = request.POST.get(TO_FIELD_VAR, request.GET.get(TO_FIELD_VAR))
        if to_field and not self.to_field_allowed(request, to_field):
            return None
        obj = self.get_object(request, unquote(object_id), to_field)
        if obj is None or not self.has_delete_permission(request, obj):
            return None
        _deleted, _counts, perms_needed, protected = self.get_deleted_objects([obj], request)
        if perms_needed or protected:
            return None  # Django refuses it
        key = str(obj.pk)
        change = ProtectedChange(
            "delete",
            self.model,
            keys=(key,),
            entries=frozenset({("delete", self.opts.label_lower, key, "", "", "")}),
        )
        return self._mfa_require(request, change, obj)

    def _mfa_check_list_edit(self, request: HttpRequest) -> HttpResponse | None:
        """The change list's editable columns, as ``ModelAdmin.changelist_view`` saves them."""
        protection = Protection.of(self)
        if not (protection.fields and self.list_editable and "_save" in request.POST):
            return None
        if IS_POPUP_VAR in request.GET or not self.has_change_permission(request):
            return None  # no editable columns in a popup; Django refuses the rest
        formset_class = self.get_changelist_formset(request)
        queryset = self._get_list_editable_queryset(request, formset_class.get_default_prefix())
        formset = formset_class(request.POST, request.FILES, queryset=queryset)
        if not formset.is_valid():
            return None
        rows = row_changes(formset, Protection(protection.fields), can_change=True)
        change = ProtectedChange(
            "change",
            self.model,
            keys=tuple(row.key for row in rows),
            rows=tuple(rows),
            entries=entries_of(rows),
        )
        return self._mfa_require(request, change, None)

    # --- the gate ------------------------------------------------------------------------

    def _mfa_gate_action(self, change: ProtectedChange) -> str:
        """The gate's action: ``admin.<app_label>.<model_name>.<kind>[.<action name>]``."""
        name = f"admin.{self.opts.app_label}.{self.opts.model_name}.{change.kind}"
        return f"{name}.{change.action}" if change.kind == "action" else name

    def _mfa_require(
        self, request: HttpRequest, change: ProtectedChange, obj: Model | None
    ) -> HttpResponse | None:
        """None if the operation may go ahead (nothing protected, or approved now);
        else the approval page, or the gate's other answer."""
        if not change.entries and change.kind in ("add", "change"):
            return None
        gate = Gate(
            self._mfa_gate_action(change),
            question=lambda request, *args, **kwargs: self._mfa_question(request, obj, change),
            bind=lambda request, *args, **kwargs: change.bound(),
            max_age=self.mfa_max_age,
            window=self.mfa_window,
            scope=self._mfa_scope(),
            # The approval is bound to exactly this change; a window it opens covers
            # the scope's operations, whatever they change (the admin's binding is
            # its own default, not a bind= the project chose).
            bind_window=False,
            question_hint=(
                f"Override get_mfa_question() of {qualname(self)} to return a shorter "
                "question: the default names the stored and the new value of every "
                "protected field and row the save changes, and these do not fit."
            ),
        )
        decision = gate.check(request)
        if not decision.allowed:
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "is_popup": IS_POPUP_VAR in request.POST or IS_POPUP_VAR in request.GET,
                # The admin's layout has its <main>: the page goes inside it.
                "landmark": "div",
            }
            return rendering.respond(
                request, decision, base_template=ADMIN_BASE_TEMPLATE, extra_context=context
            )
        _checked(request).update(change.entries)
        return None

    def _mfa_scope(self) -> str | None:
        if self.mfa_window is None:
            return None
        return self.mfa_scope or f"admin.{self.opts.app_label}.{self.opts.model_name}"

    def _mfa_question(
        self, request: HttpRequest, obj: Model | None, change: ProtectedChange
    ) -> str:
        """The hook's question, and what approving it also allows when it opens a window."""
        question = self.get_mfa_question(request, obj, change)
        if self.mfa_window is None:
            return question
        duration = format_duration(self.mfa_window)
        if self.mfa_scope:
            allows = _("Approving also allows %(scope)s for %(duration)s.") % {
                "scope": self.mfa_scope,
                "duration": duration,
            }
        else:
            allows = _("Approving also allows changes to %(models)s for %(duration)s.") % {
                "models": self.opts.verbose_name_plural,
                "duration": duration,
            }
        return f"{question} {allows}"

    def _mfa_verify(self, request: HttpRequest, entries: AbstractSet[Entry]) -> None:
        """Refuse a protected change this request did not check with the gate."""
        if not entries or in_action(request):
            return
        unchecked = entries - getattr(request, _CHECKED, frozenset())
        if unchecked:
            # Names only: the values may be account numbers.
            what = sorted({(operation, field) for operation, _model, _key, field, *_ in unchecked})
            logger.error(
                "MFA admin %s: refused a protected change the gate did not check: %s",
                self.opts.label_lower,
                ", ".join(f"{operation} {field}".strip() for operation, field in what),
            )
            raise PermissionDenied(
                _("This change needs approval in the HyperID Authenticator: submit it again.")
            )

    def _mfa_inlines_of(
        self, request: HttpRequest, parent: Model | None, formset: Any
    ) -> list[Any]:
        """The inlines whose formsets save like ``formset``: same model, same foreign key."""
        fk = getattr(formset, "fk", None)
        return [
            inline
            for inline in self.get_inline_instances(request, parent)
            if inline.model is formset.model and (fk is None or inline.fk_name in (None, fk.name))
        ]


def _checked(request: HttpRequest) -> set[Entry]:
    """What the gate approved during this request."""
    checked = getattr(request, _CHECKED, None)
    if checked is None:
        checked = set()
        setattr(request, _CHECKED, checked)
    return checked
