"""The API views: the signed-in user's requests, and HyperID's status-get for them.

Shared policy (:class:`MFAAPIView`): the project's authentication classes with
``IsAuthenticated``; only the user's own rows, anything else (another user's,
unknown, malformed ids) is the same 404; a per-user throttle per kind of call
(:mod:`.throttling`); JSON in, JSON out, whatever the project's DRF defaults say
about renderers, parsers, pagination, filters or versioning, because the answers
are a fixed contract (status-get's is HyperID's own).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.utils.translation import gettext, gettext_lazy
from rest_framework import status as http
from rest_framework.exceptions import NotFound, ParseError, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.parsers import BaseParser, FormParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import BaseThrottle

from .. import audit, services
from ..constants import TRANSACTION_ID_MAX, TRANSACTION_ID_MIN, Result
from ..exceptions import DependencyUnavailable, HyperIDError
from ..gate import rendering
from ..gate.decide import Decision
from ..models import MFARequest, MFARequestQuerySet, RequestStatus, State
from ..services import dependencies, pushes
from . import polling, schema
from .parsers import AnyBodyParser, FormFieldsParser, NonJSONBody, StrictJSONParser
from .serializers import (
    MFARequestDetailSerializer,
    MFARequestSerializer,
    MFAStatusGetAnswerSerializer,
)
from .throttling import CancelThrottle, ListThrottle, MFARateThrottle, PollThrottle

logger = logging.getLogger("hyperid_mfa")

NOT_FOUND = gettext_lazy("No such MFA request.")
#: Django's refusals of a body past DATA_UPLOAD_MAX_MEMORY_SIZE / _NUMBER_FIELDS / _FILES.
DJANGO_BODY_LIMITS = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


class MFARequestPagination(PageNumberPagination):
    """The app's own page size, so a project's global pagination settings cannot
    turn the list into an unbounded query or a different answer shape."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class MFAAPIView(GenericAPIView[MFARequest]):
    """What every endpoint of the API shares; see the module docstring."""

    permission_classes: Sequence[type[BasePermission]] = [IsAuthenticated]
    renderer_classes: Sequence[type[BaseRenderer]] = [JSONRenderer]
    parser_classes: Sequence[type[BaseParser]] = [StrictJSONParser]
    # A project-wide versioning scheme (namespace, URL path) would refuse or
    # reinterpret these URLs; the API has one version, its contract.
    versioning_class = None
    filter_backends = []
    pagination_class: type[BasePagination] | None = None
    serializer_class: type[BaseSerializer[Any]] = MFARequestSerializer
    lookup_field = "pk"
    schema = schema.view_schema()
    #: This endpoint's throttle, added to the project's default throttles.
    throttle_class: type[MFARateThrottle]

    def get_throttles(self) -> list[BaseThrottle]:
        return [*super().get_throttles(), self.throttle_class()]

    def get_queryset(self) -> MFARequestQuerySet:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular inspecting the view
            return MFARequest.objects.none()
        return MFARequest.objects.for_user(self.request.user)

    def get_object(self) -> MFARequest:
        # One answer for malformed, unknown and other users' ids: no existence oracle.
        try:
            pk = uuid.UUID(str(self.kwargs[self.lookup_field]))
        except ValueError:
            raise NotFound(NOT_FOUND) from None
        row = self.get_queryset().filter(pk=pk).first()
        if row is None:
            raise NotFound(NOT_FOUND)
        return row

    def handle_exception(self, exc: Exception) -> Response:
        # Django refuses oversized or overfull form bodies (DATA_UPLOAD_MAX_*) wherever
        # the body is read, DRF's authentication included; its own answer would be an
        # HTML 400. Answer in JSON.
        if isinstance(exc, DJANGO_BODY_LIMITS):
            exc = ParseError(gettext("The request body could not be read."))
        # A service the API needs failed (the database, the throttles' cache),
        # wherever it did, authentication included: the gate's answer, not a 500.
        refusal = dependencies.refusal_for(exc)
        if refusal is not None:
            return self.unavailable(refusal)
        return super().handle_exception(exc)

    def unavailable(self, refusal: DependencyUnavailable) -> Response:
        """503 ``mfa_unavailable`` with ``Retry-After``, and the one ERROR line."""
        logger.error("MFA API %s: %s", type(self).__name__, dependencies.describe(refusal))
        decision = Decision.refused(refusal)
        return Response(
            rendering.json_body(self.request, decision),
            status=decision.status,
            headers=rendering.headers(decision),
        )

    def detail_answer(
        self, mfa_request: MFARequest, error: HyperIDError | None = None
    ) -> dict[str, Any]:
        context = {
            **self.get_serializer_context(),
            "poll_interval": polling.poll_interval(mfa_request, error),
            "retry_after": _next_push_wait(self.request, mfa_request),
        }
        data: dict[str, Any] = MFARequestDetailSerializer(mfa_request, context=context).data
        return data


#: The states of a request that ended without approval: the user may ask again.
ENDED_UNAPPROVED = frozenset({State.DENIED, State.EXPIRED, State.CANCELED, State.FAILED})


def _next_push_wait(request: Request, mfa_request: MFARequest) -> int | None:
    """For a request that ended without approval, the seconds until its user may be
    sent a new push (the page counts them down before it offers to ask again)."""
    if mfa_request.state not in ENDED_UNAPPROVED:
        return None
    return pushes.next_push_wait(request.user)


def _refreshed(request: Request, mfa_request: MFARequest) -> tuple[MFARequest, HyperIDError | None]:
    """The request brought up to date if it is pending, and the failure that kept it
    from being, if any (the request then stays pending, the failure recorded on it).

    A poll is someone waiting for the answer: the service's watched interval applies
    (WATCHED_REFRESH_INTERVAL), coalesced as every refresh is, so one HyperID call
    per interval however many clients poll, and none at all once the request is
    finished.
    """
    if mfa_request.is_terminal:
        return mfa_request, None
    error: HyperIDError | None = None
    try:
        with audit.request_context(request):
            mfa_request = services.refresh_request(mfa_request, watched=True)
    except HyperIDError as err:
        error = err
    polling.record_check(mfa_request, error)
    return mfa_request, error


@schema.document_list
class RequestListView(ListModelMixin, MFAAPIView):
    """The user's own requests, newest first, as last known (the list asks HyperID
    nothing; the detail endpoint refreshes a pending request)."""

    throttle_class = ListThrottle
    pagination_class = MFARequestPagination

    def get_queryset(self) -> MFARequestQuerySet:
        rows = super().get_queryset().order_by("-created_at", "-pk")
        if getattr(self, "swagger_fake_view", False):
            return rows
        state = self.request.query_params.get("state", "")
        if state:
            try:
                rows = rows.in_state(state)
            except ValueError:
                raise ValidationError(
                    {
                        "state": [
                            gettext("Unknown state; use one of: %(states)s.")
                            % {"states": ", ".join(State.values)}
                        ]
                    }
                ) from None
        return rows

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)


@schema.document_detail
class RequestDetailView(MFAAPIView):
    """One of the user's requests; a pending one is first brought up to date."""

    throttle_class = PollThrottle
    serializer_class = MFARequestDetailSerializer

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        mfa_request, error = _refreshed(request, self.get_object())
        # HyperID's trouble is not the client's error: the request is answered as it
        # stands, still pending, and the client is asked to wait longer.
        return Response(self.detail_answer(mfa_request, error))


@schema.document_cancel
class RequestCancelView(MFAAPIView):
    """Cancel one of the user's pending requests, here and at HyperID."""

    throttle_class = CancelThrottle
    serializer_class = MFARequestDetailSerializer
    # Cancel reads no field, so every media type is accepted and the body ignored
    # (no 415). The form parsers are there for session authentication's CSRF check,
    # which reads the csrfmiddlewaretoken field of a plain HTML form or a FormData;
    # fetch() sends JSON or nothing with an X-CSRFToken header. Malformed JSON stays a
    # 400, as everywhere in this API.
    parser_classes = [StrictJSONParser, FormParser, FormFieldsParser, AnyBodyParser]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Cancel takes no fields, but the body is read all the same: session
        # authentication's CSRF check reads it, and a malformed one must be the same
        # 400 however the client authenticated.
        request.data  # noqa: B018
        mfa_request = self.get_object()
        if mfa_request.is_pending:
            with audit.request_context(request):
                mfa_request = services.cancel_request(mfa_request)
        # Canceling a canceled request succeeds again, so a retried POST (a double
        # click, a lost answer) is harmless; any other outcome cannot be undone.
        if mfa_request.status != RequestStatus.CANCELED:
            return Response(
                {
                    "detail": gettext("This MFA request has already finished: %(state)s.")
                    % {"state": mfa_request.state},
                    "state": mfa_request.state,
                    "retry_after": _next_push_wait(request, mfa_request),
                },
                status=http.HTTP_409_CONFLICT,
            )
        return Response(self.detail_answer(mfa_request))


# --- status-get: HyperID's contract --------------------------------------------------------


def _transaction_id(body: object) -> int | None:
    """The body's transaction_id if HyperID would accept it, else None (answer -2)."""
    if type(body) is not dict:  # not JSON (NonJSONBody), or an array, string, null...
        return None
    value = body.get("transaction_id")
    if type(value) is not int:  # refuses bool, float (even 3.0), str, null, containers
        return None
    return value if TRANSACTION_ID_MIN <= value <= TRANSACTION_ID_MAX else None


def _answer(result: int, transaction_id: int | None) -> Response:
    return Response(
        {
            "result": result,
            "transaction_id": transaction_id,
            "transaction_status": None,
            "transaction_complete_result": None,
        }
    )


def _answer_row(mfa_request: MFARequest) -> Response:
    if mfa_request.status == RequestStatus.FAILED:
        # HyperID itself answered -6 for this transaction: so do we.
        return _answer(Result.TRANSACTION_NOT_FOUND, mfa_request.transaction_id)
    return Response(
        {
            "result": Result.SUCCESS,
            "transaction_id": mfa_request.transaction_id,
            "transaction_status": mfa_request.status,
            # Meaningful only for a completed transaction; elsewhere 0, as HyperID
            # sends it, so that clients decoding it as an integer keep working.
            "transaction_complete_result": mfa_request.complete_result or 0,
        }
    )


@schema.document_status_get
class StatusGetView(MFAAPIView):
    """HyperID's status-get for the signed-in user's own transactions.

    HTTP 200 with HyperID's response and result codes, so a front end written against
    HyperID's documentation works unchanged; the user's HyperID token stays here.
    """

    throttle_class = PollThrottle
    serializer_class = MFAStatusGetAnswerSerializer
    # AnyBodyParser: any other media type is HyperID's -2, not DRF's 415.
    parser_classes = [StrictJSONParser, AnyBodyParser]

    body: object = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Read the body before DRF authenticates: the CSRF check of session
        # authentication reads it too, and would turn malformed JSON into a 400
        # before the view could answer -2. After a failed parse DRF keeps an empty
        # body, so authentication, permissions and throttles run as usual.
        try:
            self.body = request.data
        except ParseError:
            self.body = NonJSONBody()
        super().initial(request, *args, **kwargs)

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        transaction_id = _transaction_id(self.body)
        if transaction_id is None:
            return _answer(Result.INVALID_PARAMETERS, None)
        mfa_request = self.get_queryset().filter(transaction_id=transaction_id).first()
        if mfa_request is None:
            # Also for another user's transaction: the answer must not tell them apart.
            return _answer(Result.TRANSACTION_NOT_FOUND, transaction_id)
        mfa_request, error = _refreshed(request, mfa_request)
        if error is not None:
            return _answer(error.status_get_result, transaction_id)
        return _answer_row(mfa_request)
