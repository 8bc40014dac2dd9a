"""A refused single sign-on: the reason, a page that says it, a WARNING that logs it.

Never a 500 or a traceback: whatever goes wrong between the provider's redirect and the
session, the person reads what happened and what to do, and no session is left behind.
"""

from __future__ import annotations

import logging

from django.contrib import auth
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from bulletin.conf import options

log = logging.getLogger(__name__)

# What the person reads, by reason.
MESSAGES = {
    "tampered": "The sign-in response from {provider} could not be verified: it was changed on "
    "the way or not signed by {provider}.",
    "expired": "The sign-in from {provider} has expired (or the clocks disagree). Try again.",
    "audience": "The sign-in from {provider} was meant for another application, not Bulletin.",
    "issuer": "The sign-in did not come from {provider}, the identity provider Bulletin trusts.",
    "nonce": "The sign-in from {provider} does not belong to this sign-in attempt. Try again.",
    "state": "This sign-in was not started here, or was already used. Start again from the "
    "login page.",
    "code": "{provider} did not accept the sign-in code. Start again from the login page.",
    "provider-error": "{provider} did not sign you in ({error}).",
    "unreachable": "{provider} cannot be reached right now, so single sign-on is unavailable.",
    "unverified": "{provider} has not verified your email address, so Bulletin cannot tell "
    "which employee you are. Ask IT to verify it.",
    "deactivated": "Your employee record in Bulletin is deactivated, so you cannot sign in. "
    "Ask HR if this is a mistake.",
    "inactive": "Your Bulletin login is disabled. Ask an administrator if this is a mistake.",
    "off": "Single sign-on is not set up for this Bulletin.",
}


class Refused(Exception):
    """A sign-in refused: ``reason`` is a key of MESSAGES, ``detail`` goes to the log only."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def refused_page(request: HttpRequest, refusal: Refused, error: str = "") -> HttpResponse:
    """Log the refusal, end any session, and answer 403 with the page that says why."""
    log.warning(
        "single sign-on refused: %s",
        refusal.reason,
        extra={"reason": refusal.reason, "detail": refusal.detail[:300]},
    )
    if request.user.is_authenticated:
        auth.logout(request)
    provider = options().oidc_provider_name
    text = MESSAGES[refusal.reason].format(provider=provider, error=error or "no reason given")
    context = {"reason": text, "provider": provider}
    status = 503 if refusal.reason == "unreachable" else 403
    return render(request, "bulletin/sso_refused.html", context, status=status)
