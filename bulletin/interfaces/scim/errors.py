"""SCIM's answers: every response ``application/scim+json`` (RFC 7644 §3.1), every error in
RFC 7644 §3.12's schema (``urn:ietf:params:scim:api:messages:2.0:Error``, ``status`` a string,
``scimType`` where the RFC gives one, ``detail`` naming the attribute at fault), whatever went
wrong: a bad request, a refused token, a route that does not exist, or a bug (a 500 in the same
shape, logged with its traceback), never an HTML page."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from pydantic import ValidationError
from scim2_models import Error, SCIMException

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/scim+json"


class ScimProblem(SCIMException):
    """An error with any status and scimType (401, 403, 405, 412 have no class of their own
    in scim2-models that carries both)."""

    def __init__(self, status: int, detail: str, scim_type: str = "") -> None:
        super().__init__(detail=detail)
        self.status, self.scim_type = status, scim_type


def scim_json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    response = HttpResponse(json.dumps(payload), status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(error: Error) -> Any:
    payload = error.model_dump()
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if error.status == 401 else None
    return scim_json(payload, int(error.status or 400), headers)


def from_exception(exc: SCIMException) -> Any:
    return error_response(exc.to_error())


def from_validation(exc: ValidationError) -> Any:
    """The first problem pydantic found, as scim2-models words it (the attribute's path in
    ``detail``; ``invalidValue``, or the scimType a SCIM check raised)."""
    return error_response(Error.from_validation_errors(exc)[0])


def answers_in_scim(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view's SCIM exceptions and validation errors become SCIM errors; anything else
    is a 500 in SCIM's shape, logged."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except SCIMException as exc:
            return from_exception(exc)
        except ValidationError as exc:
            return from_validation(exc)
        except Exception:
            log.exception("scim request failed", extra={"path": request.path})
            return error_response(Error(status=500, detail="internal error"))

    return wrapped
