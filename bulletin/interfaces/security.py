"""Login throttling (django-axes): whose address a login comes from, and what a person sees
once locked out."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def locked_out(
    request: HttpRequest, response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """429 Too Many Requests, saying for how long, with ``Retry-After`` (axes'
    ``AXES_LOCKOUT_CALLABLE``; each further try restarts the wait). Axes itself logs the
    lockout, with the username and address masked."""
    cool_off = get_cool_off(request)
    minutes = round(cool_off.total_seconds() / 60) if cool_off else None
    username = get_client_username(request, credentials) or ""
    context = {"username": username, "minutes": minutes, "limit": settings.AXES_FAILURE_LIMIT}
    page = render(request, "bulletin/locked_out.html", context, status=429)
    if cool_off:
        page["Retry-After"] = str(int(cool_off.total_seconds()))
    return page


def client_address(request: HttpRequest) -> str | None:
    """The address a login is counted against (axes' ``AXES_CLIENT_IP_CALLABLE``).

    Each of the ``PROXY_COUNT`` proxies appends the address it was called from to
    X-Forwarded-For, so the client's is the PROXY_COUNT-th from the right; anything further
    left was written by the client and proves nothing.
    """
    proxies: int = settings.PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR")
    if not proxies:
        return remote
    chain = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    chain = [hop for hop in chain if hop]
    return chain[-proxies] if len(chain) >= proxies else remote
