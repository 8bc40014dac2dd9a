"""/healthz for load balancers and /metrics for Prometheus: no login, no session, never cached."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from bulletin.conf import options, secret
from bulletin.interfaces.health import Lag, lag
from bulletin.interfaces.metrics import exposition

log = logging.getLogger(__name__)

METRICS_TOKEN = "BULLETIN_METRICS_TOKEN"


def _ping() -> Lag:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return lag()


def _warnings(behind: Lag, limit: int) -> list[str]:
    found = []
    if behind.planner_lag_seconds > limit:
        found.append(f"planner lag {behind.planner_lag_seconds:.0f}s is over {limit}s")
    if behind.oldest_due_age_seconds > limit:
        found.append(
            f"oldest due delivery waited {behind.oldest_due_age_seconds:.0f}s (> {limit}s)"
        )
    return found


def _report(behind: Lag) -> dict[str, Any]:
    limit = options().health_max_lag_seconds
    warnings = _warnings(behind, limit)
    oldest = None
    if behind.oldest_due_id is not None and behind.oldest_due_at is not None:
        oldest = {
            "id": behind.oldest_due_id,
            "due_at": behind.oldest_due_at.isoformat(),
            "age_seconds": behind.oldest_due_age_seconds,
        }
    return {
        "status": "warn" if warnings else "ok",
        "database": "ok",
        "planner_lag_seconds": behind.planner_lag_seconds,
        "oldest_due_delivery": oldest,
        "max_lag_seconds": limit,
        "warnings": warnings,
    }


@login_not_required
@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers, 503 when it does not.

    Lag over the threshold is a warning in the body, never a 503: a lagging planner or
    dispatcher is not fixed by taking a web node out of rotation (every node shares the one
    database), and failing them all would take HR's admin down with it. Alert on the figures.
    """
    try:
        behind = _ping()
    except DatabaseError as exc:
        # The error's text can name the host, user or file; it goes to the log, not the body.
        log.warning("health check: database unreachable", extra={"error": repr(exc)})
        problem = f"database unreachable ({type(exc).__name__})"
        body = {"status": "error", "database": "unreachable", "problems": [problem]}
        return JsonResponse(body, status=503)
    return JsonResponse(_report(behind))


def _authorised(request: HttpRequest, token: str) -> bool:
    given = request.headers.get("Authorization", "")
    scheme, _, credential = given.partition(" ")
    # compare_digest: the time taken does not tell a guesser how much of the token matched.
    match = hmac.compare_digest(credential.strip().encode(), token.encode())
    return scheme.lower() == "bearer" and match


@login_not_required
@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition. Open unless BULLETIN_METRICS_TOKEN(_FILE) is set."""
    token = secret(METRICS_TOKEN)
    if token and not _authorised(request, token):
        remote = {"remote_addr": request.META.get("REMOTE_ADDR", "")}
        log.warning("metrics scrape refused: missing or wrong bearer token", extra=remote)
        refused = HttpResponse(
            "a bearer token is required\n", status=401, content_type="text/plain"
        )
        refused["WWW-Authenticate"] = 'Bearer realm="bulletin metrics"'
        return refused
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
