"""OpenAPI documentation of the API, through drf-spectacular when it is installed.

drf-spectacular is optional (the ``openapi`` extra). Without it the decorators below
return the views unchanged and :func:`view_schema` is DRF's default, so the app
imports and serves the API all the same.

With it, the views carry drf-spectacular's ``AutoSchema`` themselves (the project's
``DEFAULT_SCHEMA_CLASS`` when that is a drf-spectacular schema, so its
customisations apply), which means the endpoints are documented in any
drf-spectacular schema of the project, whether or not the project made
drf-spectacular its default schema class. Two ways to serve a schema:

- the project's own ``SpectacularAPIView`` (its routes include this app's, with the
  prefix the project mounted them under), or
- :func:`schema_view`, a schema of this app alone::

      from hyperid_mfa.api.schema import schema_view

      urlpatterns = [
          path("mfa/", include("hyperid_mfa.urls")),
          path("mfa/schema/", schema_view(mount="mfa/"), name="hyperid-mfa-schema"),
      ]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rest_framework.schemas.inspectors import DefaultSchema, ViewInspector
from rest_framework.settings import api_settings

from .. import __version__
from ..exceptions import MissingExtra
from ..models import State
from .serializers import (
    MFACancelConflictSerializer,
    MFAErrorSerializer,
    MFARequestDetailSerializer,
    MFARequestSerializer,
    MFAStateFilterErrorSerializer,
    MFAStatusGetAnswerSerializer,
    MFAStatusGetRequestSerializer,
)

try:
    from drf_spectacular.openapi import AutoSchema
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import (
        OpenApiExample,
        OpenApiParameter,
        OpenApiResponse,
        extend_schema,
    )
except ImportError:  # the optional "openapi" extra is not installed
    HAVE_SPECTACULAR = False
else:
    HAVE_SPECTACULAR = True

V = TypeVar("V", bound=type)

TAGS = ["hyperid-mfa"]


def view_schema() -> ViewInspector:
    """The schema inspector of the API views (see the module docstring)."""
    if not HAVE_SPECTACULAR:
        return DefaultSchema()
    configured = api_settings.DEFAULT_SCHEMA_CLASS
    base = (
        configured
        if isinstance(configured, type) and issubclass(configured, AutoSchema)
        else AutoSchema
    )

    def get_operation_id(self: Any) -> str:
        # Fixed names, not derived from the path: they must not change with the
        # prefix a project mounts the app under (generated clients name methods so).
        named = getattr(self.view, "openapi_operation_id", None)
        return named if isinstance(named, str) else base.get_operation_id(self)

    schema_class = type("HyperIDMFAAutoSchema", (base,), {"get_operation_id": get_operation_id})
    inspector: ViewInspector = schema_class()
    return inspector


def schema_view(mount: str = "mfa/", **initkwargs: Any) -> Callable[..., Any]:
    """A view serving the OpenAPI schema of this app's endpoints alone.

    ``mount`` is the prefix under which the project includes ``hyperid_mfa.urls``,
    so the paths in the schema are the real ones. Other keyword arguments go to
    ``SpectacularAPIView.as_view()`` (``custom_settings``, ``permission_classes``...).
    Needs drf-spectacular (``pip install "django-hyperid-mfa[openapi]"``).
    """
    if not HAVE_SPECTACULAR:
        raise MissingExtra("openapi", "hyperid_mfa.api.schema.schema_view", "drf_spectacular")
    from django.urls import include, path
    from drf_spectacular.views import SpectacularAPIView

    initkwargs.setdefault(
        "custom_settings",
        {
            "TITLE": "django-hyperid-mfa",
            "DESCRIPTION": "HyperID push-MFA requests of the signed-in user.",
            "VERSION": __version__,
        },
    )
    view: Callable[..., Any] = SpectacularAPIView.as_view(
        patterns=[path(mount, include("hyperid_mfa.urls"))], **initkwargs
    )
    return view


# --- the operations -----------------------------------------------------------------------


def _errors(*codes: int) -> dict[int, Any]:
    descriptions = {
        400: "The request could not be read (body, query).",
        401: "Not signed in (when the project's first authentication class sends a "
        "WWW-Authenticate challenge, as basic or token authentication do).",
        403: "Not signed in (session authentication), or the CSRF check failed.",
        404: "No such request among the user's own: unknown, malformed or someone else's id.",
        429: "Throttled; the Retry-After header says how many seconds to wait.",
    }
    return {
        code: OpenApiResponse(MFAErrorSerializer, description=descriptions[code]) for code in codes
    }


_REQUEST_ID = (
    None
    if not HAVE_SPECTACULAR
    else OpenApiParameter(
        # drf-spectacular names a "pk" path parameter "id" (SCHEMA_COERCE_PATH_PK).
        "id",
        OpenApiTypes.UUID,
        OpenApiParameter.PATH,
        description="The request's id (a UUID).",
    )
)


def _document(operation_id: str, **kwargs: Any) -> Callable[[V], V]:
    def decorate(view: V) -> V:
        # Not extend_schema(operation_id=...): drf-spectacular reports that as an
        # error on a view class (it would repeat the id on every method of a
        # viewset); the views' own schema class reads this attribute instead.
        view.openapi_operation_id = operation_id  # type: ignore[attr-defined]
        decorated: V = extend_schema(tags=TAGS, **kwargs)(view)
        return decorated

    return decorate


def _example(name: str, value: Any, **kwargs: Any) -> Any:
    return OpenApiExample(name, value=value, **kwargs)


def document_list(view: V) -> V:
    if not HAVE_SPECTACULAR:
        return view
    return _document(
        "hyperid_mfa_request_list",
        summary="Your MFA requests",
        description="The signed-in user's requests, newest first, paginated, as last "
        "known: listing asks HyperID nothing (the detail endpoint refreshes).",
        parameters=[
            OpenApiParameter(
                "state",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=list(State.values),
                description="Only requests in this state.",
            )
        ],
        responses={
            200: MFARequestSerializer(many=True),
            400: OpenApiResponse(MFAStateFilterErrorSerializer, description="Unknown state."),
            **_errors(401, 403),
            404: OpenApiResponse(MFAErrorSerializer, description="No such page."),
            **_errors(429),
        },
    )(view)


def document_detail(view: V) -> V:
    if not HAVE_SPECTACULAR:
        return view
    return _document(
        "hyperid_mfa_request_retrieve",
        summary="One of your MFA requests",
        description="A pending request is first brought up to date with HyperID (at "
        "most one HyperID call per MIN_REFRESH_INTERVAL, however many clients poll). "
        "When HyperID cannot be asked, the request is answered as it stands, still "
        "pending, with a longer poll_interval. Poll again after poll_interval seconds.",
        parameters=[_REQUEST_ID],
        responses={200: MFARequestDetailSerializer, **_errors(401, 403, 404, 429)},
    )(view)


def document_cancel(view: V) -> V:
    if not HAVE_SPECTACULAR:
        return view
    return _document(
        "hyperid_mfa_request_cancel",
        summary="Cancel one of your MFA requests",
        description="Cancels a pending request here, then withdraws its push at HyperID "
        "(best effort). Canceling a canceled request succeeds again; a request that "
        "finished otherwise (approved, denied, expired...) answers 409 with its state. "
        "No body is needed.",
        parameters=[_REQUEST_ID],
        request=None,
        responses={
            200: MFARequestDetailSerializer,
            **_errors(400, 401, 403, 404),
            409: OpenApiResponse(
                MFACancelConflictSerializer, description="The request had already finished."
            ),
            **_errors(429),
        },
    )(view)


def document_status_get(view: V) -> V:
    if not HAVE_SPECTACULAR:
        return view
    answers = [
        ("approved", 0, 1234, 1, 0),
        ("denied", 0, 1234, 1, 1),
        ("pending", 0, 1234, 0, 0),
        ("expired", 0, 1234, 2, 0),
        ("HyperID unavailable", -1, 1234, None, None),
        ("invalid parameters", -2, None, None, None),
        ("not found", -6, 1234, None, None),
    ]
    return _document(
        "hyperid_mfa_status_get",
        summary="HyperID status-get, for your own transactions",
        description="HyperID's status-get, answered for the signed-in user: HTTP 200 "
        "with HyperID's result codes. 0 success; -1 HyperID unavailable; -2 invalid "
        "parameters (transaction_id missing, not an integer, out of 1..2**63-1, or a "
        "body that is not a JSON object); -3 HyperID denied access; -4/-5 the user's "
        "HyperID token expired/invalid and could not be refreshed (sign in again); "
        "-6 not found (also for a transaction of another user). transaction_status: "
        "0 pending, 1 completed, 2 expired, 4 canceled; transaction_complete_result "
        "(0 approved, 1 denied) is meaningful only when the status is 1.",
        request={"application/json": MFAStatusGetRequestSerializer},
        responses={200: MFAStatusGetAnswerSerializer, **_errors(401, 403, 429)},
        examples=[
            _example("request", {"transaction_id": 1234}, request_only=True),
            *(
                _example(
                    name,
                    {
                        "result": result,
                        "transaction_id": transaction_id,
                        "transaction_status": status,
                        "transaction_complete_result": outcome,
                    },
                    response_only=True,
                )
                for name, result, transaction_id, status, outcome in answers
            ),
        ],
    )(view)
