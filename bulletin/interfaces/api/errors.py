"""Every error the API returns is JSON with a ``detail`` member.

* 422 — input that cannot be accepted: ``{"detail": [{"field": …, "message": …}, …]}``, one
  item per problem (``index`` too when the body is a list). ``field`` is the service's name for
  the input (the model field, e.g. ``cron``, ``at_local``, ``audience_values`` for
  ``audience.values``, also for a problem with one of its items), or the body member's name
  where it has no model field (``misfire_grace_minutes``, or an unknown member), or null when
  the problem is the request as a whole.
* 409 — the request is fine but the announcement's state forbids it (the service raises a
  ValidationError without field names for those): ``{"detail": "…"}``.
* 400 — a body that is not JSON at all: ``{"detail": "the request body is not valid JSON: …"}``
  naming where it breaks.
* 413 — a body larger than Django's DATA_UPLOAD_MAX_MEMORY_SIZE.
* 401, 403, 404, 405 — ``{"detail": "…"}``: a path under /api/v1/ that names no endpoint
  (``/announcements/abc`` too: ids are integers) is a 404, a method the endpoint lacks a 405.
* 500 — ``{"detail": "internal error"}``; the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from bulletin.interfaces.api.schemas import MODEL_NAMES
from bulletin.scheduling.rules import ScheduleError

log = logging.getLogger(__name__)

# The model's misfire_grace is set through the body's misfire_grace_minutes.
API_NAMES = {"misfire_grace": "misfire_grace_minutes"}


class Problems(Exception):
    """422 with these problems, raised by an endpoint that checks input the schema cannot."""

    def __init__(self, problems: Sequence[dict[str, Any]]) -> None:
        super().__init__(problems)
        self.problems = list(problems)


def problem(field: str | None, message: str, index: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"field": field, "message": message}
    if index is not None:
        item["index"] = index
    return item


def _field_of(path: Sequence[Any]) -> tuple[str | None, int | None, str]:
    """The problem's field, the body's list index, and where inside a list member it is
    (``audience.values.1`` is ``audience_values``, its item 1, as the service names it)."""
    index = path[0] if path and isinstance(path[0], int) else None
    rest = tuple(str(part) for part in path[1 if index is not None else 0 :])
    if not rest:
        return None, index, ""
    if rest[:2] in MODEL_NAMES and len(rest) > 2:
        return MODEL_NAMES[rest[:2]], index, f"item {'.'.join(rest[2:])}: "
    return MODEL_NAMES.get(rest) or ".".join(rest), index, ""


def _pydantic_message(error: dict[str, Any], path: Sequence[Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing" and not path:
        return "a JSON body is required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def pydantic_problems(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """ninja's errors (loc = source, then the body parameter's name, then the path) reshaped."""
    found = []
    for error in errors:
        source, *path = error["loc"]
        if source == "body" and path:
            path = path[1:]  # the view's parameter name says nothing to the client
        field, index, where = _field_of(path)
        found.append(problem(field, where + _pydantic_message(error, path), index))
    return found


def service_problems(exc: DjangoValidationError) -> list[dict[str, Any]]:
    return [
        problem(None if name == NON_FIELD_ERRORS else API_NAMES.get(name, name), message)
        for name, messages in exc.message_dict.items()
        for message in messages
    ]


def install(api: NinjaAPI) -> None:
    def reply(request: HttpRequest, status: int, detail: Any) -> HttpResponse:
        return api.create_response(request, {"detail": detail}, status=status)

    @api.exception_handler(NinjaValidationError)
    def invalid_input(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        return reply(request, 422, pydantic_problems(exc.errors))

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # ninja answers a body it cannot parse with a bare "Cannot parse request body".
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            return reply(request, 400, f"the request body is not valid JSON: {exc.__cause__}")
        return reply(request, exc.status_code, str(exc))

    @api.exception_handler(Problems)
    def bad_input(request: HttpRequest, exc: Problems) -> HttpResponse:
        return reply(request, 422, exc.problems)

    @api.exception_handler(DjangoValidationError)
    def refused(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        if hasattr(exc, "error_dict"):
            return reply(request, 422, service_problems(exc))
        return reply(request, 409, "; ".join(exc.messages))

    @api.exception_handler(ScheduleError)
    def bad_schedule(request: HttpRequest, exc: ScheduleError) -> HttpResponse:
        return reply(request, 422, [problem(None, str(exc))])

    @api.exception_handler(PermissionDenied)
    def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        log.info("api request forbidden", extra={"path": request.path, "reason": str(exc)})
        return reply(request, 403, str(exc) or "forbidden")

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = reply(request, 401, "a valid API token is required (Authorization: Bearer …)")
        response["WWW-Authenticate"] = 'Bearer realm="bulletin"'
        return response

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return reply(request, 413, f"the request body is larger than {limit} bytes")

    @api.exception_handler(Exception)
    def crashed(request: HttpRequest, exc: Exception) -> HttpResponse:
        log.exception("api request failed", extra={"path": request.path})
        return reply(request, 500, "internal error")


@csrf_exempt
def no_endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Django's own 404 page is HTML; under /api/v1/ a client is promised JSON."""
    detail = f"no endpoint {request.method} {request.path} (ids are whole numbers)"
    return JsonResponse({"detail": detail}, status=404)


def json_not_allowed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """ninja answers a method an endpoint lacks with a plain-text 405; this keeps its Allow."""

    @wraps(view)
    def answered(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code != 405 or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        allowed = response.get("Allow", "")
        detail = f"{request.method} is not allowed here (allowed: {allowed})"
        answer = JsonResponse({"detail": detail}, status=405)
        answer["Allow"] = allowed
        return answer

    return answered
