"""The identity provider's signing keys (its JWK Set at ``jwks_uri``), kept between sign-ins.

mozilla-django-oidc 5.0.2 fetches ``jwks_uri`` at every sign-in (``retrieve_matching_jwk`` in
its auth.py): a round trip to the provider on every login, and a login page that fails whenever
the provider's key endpoint blinks. Here a key set is kept an hour, as the discovery document is.

Keys rotate. OpenID Connect Core §10.1.1: "The verifier knows to go back to the jwks_uri
location to re-retrieve the keys when it sees an unfamiliar kid value." So a token whose
``kid`` is not among the kept keys makes one fresh read, however recent the last one (a
rotation may come a second after it); at most one such read in ``REFETCH_SECONDS`` per key set,
failed reads too, so tokens naming made-up kids cannot turn sign-in attempts into a stream of
reads at the provider.

A key matches as the library matches it: the token's ``kid``, and the key's ``alg`` when the key
names one. (The library explains why not PyJWT's ``PyJWKClient``: it does not compare ``alg``
when several keys share a ``kid``.)
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests
from django.core.exceptions import SuspiciousOperation

log = logging.getLogger(__name__)

KEEP_SECONDS = 3600.0
REFETCH_SECONDS = 10.0
TIMEOUT_SECONDS = 5.0

Keys = list[dict[str, Any]]

# jwks_uri -> (kept until, the keys); jwks_uri -> when an unfamiliar kid last made a fresh read.
_kept: dict[str, tuple[float, Keys]] = {}
_reread: dict[str, float] = {}
_lock = threading.Lock()
_clock = time.monotonic


def matching(jwks_uri: str, header: dict[str, Any]) -> dict[str, Any]:
    """The provider's key for a token with this JOSE ``header``; SuspiciousOperation if none.
    Raises requests' exceptions when the key set cannot be fetched."""
    with _lock:
        kept = _kept.get(jwks_uri)
        if kept is None or kept[0] <= _clock():
            found = _match(_fetch_and_keep(jwks_uri), header)  # just read: nothing newer
        else:
            found = _match(kept[1], header)
            if found is None and _may_reread(jwks_uri):
                log.info(
                    "identity provider key unfamiliar: reading its keys again",
                    extra={"jwks_uri": jwks_uri, "kid": header.get("kid")},
                )
                found = _match(_fetch_and_keep(jwks_uri), header)
    if found is None:
        raise SuspiciousOperation(f"no key of the provider's has kid {header.get('kid')!r}")
    return found


def forget() -> None:
    """Drop every kept key set (tests; a provider that moved)."""
    with _lock:
        _kept.clear()
        _reread.clear()


def _may_reread(jwks_uri: str) -> bool:
    """At most one fresh read for unfamiliar kids in REFETCH_SECONDS, counted from when it
    began, so a failed read counts too."""
    now = _clock()
    if now - _reread.get(jwks_uri, -REFETCH_SECONDS) < REFETCH_SECONDS:
        return False
    _reread[jwks_uri] = now
    return True


def _fetch_and_keep(jwks_uri: str) -> Keys:
    began = _clock()
    response = requests.get(jwks_uri, timeout=TIMEOUT_SECONDS, allow_redirects=False)
    response.raise_for_status()
    document = response.json()
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, dict) for key in keys):
        raise ValueError(f"{jwks_uri} did not answer a JWK Set")
    _kept[jwks_uri] = (began + KEEP_SECONDS, keys)
    log.info("identity provider keys fetched", extra={"jwks_uri": jwks_uri, "keys": len(keys)})
    return keys


def _match(keys: Keys, header: dict[str, Any]) -> dict[str, Any] | None:
    found = None
    for key in keys:
        if key.get("kid") != header.get("kid"):
            continue
        if "alg" in key and key["alg"] != header.get("alg"):
            continue
        found = key
    return found
