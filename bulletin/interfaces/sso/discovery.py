"""The identity provider's discovery document, fetched when first needed and kept a while.

OpenID Connect Discovery 1.0 §4: the document lives at ``<issuer>/.well-known/openid-
configuration`` (any trailing "/" of the issuer removed first), and §4.3: its ``issuer`` must be
identical to the issuer it was fetched for, or it must not be used. §3 lists what it must hold:
``authorization_endpoint``, ``token_endpoint``, ``jwks_uri`` among others.

Never fetched at start-up: a provider that is down must not stop Bulletin. A document is kept
an hour (providers rotate endpoints rarely; their keys are kept by ``sso.keys``, which fetches
them again when a token names an unfamiliar key); a failure is kept half a minute, so a login
page under load does not hammer a provider that is down, and logged once per try.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from bulletin.interfaces.sso import keys

log = logging.getLogger(__name__)

KEEP_SECONDS = 3600.0
KEEP_FAILURE_SECONDS = 30.0
TIMEOUT_SECONDS = 5.0
# The ID token algorithms Bulletin verifies. RS256 is the one every provider must offer (Core
# §15.1); ES256 costs nothing more with PyJWT and cryptography.
SUPPORTED_ALGORITHMS = ("RS256", "ES256")
REQUIRED = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class DiscoveryError(Exception):
    """The document could not be fetched or is not one Bulletin may use (says why)."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str  # "" when the provider has none
    end_session_endpoint: str  # "" when the provider offers no RP-initiated logout
    algorithms: tuple[str, ...]  # of SUPPORTED_ALGORITHMS, those the provider signs with
    token_auth_methods: tuple[str, ...]


_kept: dict[str, tuple[float, Provider | DiscoveryError]] = {}
_lock = threading.Lock()


def provider(issuer: str) -> Provider:
    """The checked document for ``issuer``, kept or fetched now; DiscoveryError if unusable."""
    with _lock:
        now = time.monotonic()
        kept = _kept.get(issuer)
        if kept is None or kept[0] <= now:
            kept = _fetch_and_keep(issuer, now)
    if isinstance(kept[1], DiscoveryError):
        raise kept[1]
    return kept[1]


def forget() -> None:
    """Drop every kept document, failure and key set (tests; a provider that moved)."""
    with _lock:
        _kept.clear()
    keys.forget()


def document_url(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def _fetch_and_keep(issuer: str, now: float) -> tuple[float, Provider | DiscoveryError]:
    try:
        found: Provider | DiscoveryError = _checked(issuer, _fetch(issuer))
        kept = (now + KEEP_SECONDS, found)
        log.info("identity provider discovered", extra={"issuer": issuer})
    except DiscoveryError as exc:
        found = exc
        kept = (now + KEEP_FAILURE_SECONDS, found)
        log.warning(
            "single sign-on unavailable: %s", exc, extra={"issuer": issuer, "problem": str(exc)}
        )
    _kept[issuer] = kept
    return kept


def _fetch(issuer: str) -> Any:
    url = document_url(issuer)
    try:
        response = requests.get(url, timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as exc:
        raise DiscoveryError(f"cannot reach {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise DiscoveryError(f"{url} answered {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise DiscoveryError(f"{url} did not answer JSON") from None


def _checked(issuer: str, document: Any) -> Provider:
    if not isinstance(document, dict):
        raise DiscoveryError("the discovery document is not a JSON object")
    if document.get("issuer") != issuer:
        raise DiscoveryError(
            f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r} "
            "(OpenID Connect Discovery §4.3): set OIDC_ISSUER to exactly the provider's issuer"
        )
    for name in REQUIRED:
        if not _is_url(document.get(name)):
            raise DiscoveryError(f"the discovery document has no usable {name}")
    # §3: id_token_signing_alg_values_supported is required, and must include RS256.
    offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(name for name in SUPPORTED_ALGORITHMS if name in offered)
    if not algorithms:
        raise DiscoveryError(f"the provider signs ID tokens with {offered}, not RS256 or ES256")
    return Provider(
        issuer=issuer,
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        jwks_uri=document["jwks_uri"],
        userinfo_endpoint=_optional_url(document, "userinfo_endpoint"),
        end_session_endpoint=_optional_url(document, "end_session_endpoint"),
        algorithms=algorithms,
        # §3: "If omitted, the default is client_secret_basic".
        token_auth_methods=tuple(
            document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        ),
    )


def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _optional_url(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    return str(value) if _is_url(value) else ""
