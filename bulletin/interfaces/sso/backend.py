"""The authentication backends: single sign-on, and the switch that keeps passwords for
superusers when ``BULLETIN_PASSWORD_LOGIN=false``.

``SingleSignOn`` is mozilla-django-oidc's backend with what version 5.0.2 leaves unchecked
checked here (read in its auth.py):

- ``_verify_jws`` decodes with ``options={"verify_aud": False}`` and no ``issuer``: an ID token
  minted for another application, or by another issuer, would pass. Checked here: ``aud``
  contains the client id, ``azp`` is it when there are several audiences (Core §3.1.3.7, 3-5),
  ``iss`` is the configured issuer, and ``exp``, ``iat``, ``sub`` are present.
- It turns only ``jwt.DecodeError`` into a refusal; an expired token raised
  ``ExpiredSignatureError`` through the view (a 500). Every ``InvalidTokenError`` is a refusal.
- It accepts whatever ``alg`` equals one setting; here the algorithm must be one the
  discovery document offers and Bulletin verifies (RS256, ES256), so never ``none`` or HS256.
- The userinfo response is used without comparing its ``sub`` to the ID token's (Core §5.3.2
  says it MUST be); checked here.

The library does check ``state`` (the callback view), the ``nonce`` (kept here as it was),
and sends the PKCE ``code_verifier``; PyJWT checks the signature, ``exp`` and ``iat``. The
provider's keys are kept between sign-ins (``sso.keys``), where the library fetches them each time.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any
from urllib.parse import quote

import jwt
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from requests.auth import HTTPBasicAuth

from bulletin.conf import options
from bulletin.domain.models import Employee
from bulletin.interfaces.sso import claims as sso_claims
from bulletin.interfaces.sso import config, discovery, keys
from bulletin.interfaces.sso.refusals import Refused

log = logging.getLogger(__name__)

# Seconds of clock difference allowed between the provider and Bulletin for exp and iat.
LEEWAY_SECONDS = 60
TIMEOUT_SECONDS = 10
# Django's username is at most 150 characters; longer subjects are hashed.
SUBJECT_PREFIX = "oidc:"


def subject_username(subject: str) -> str:
    """The stable username of a provider's ``sub``: it never changes, unlike the address."""
    if len(subject) <= 150 - len(SUBJECT_PREFIX):
        return SUBJECT_PREFIX + subject
    return SUBJECT_PREFIX + hashlib.sha256(subject.encode()).hexdigest()


class SingleSignOn(config.LibrarySettings, OIDCAuthenticationBackend):
    """Authorization code flow callback → a Django user, or ``Refused`` with the reason."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library's __init__ reads the provider's endpoints from settings; here they come
        # from discovery at each sign-in, and Django builds every backend for every password
        # login too, so nothing is read or fetched here.
        self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:  # type: ignore[override]
        if request is None or "nonce" not in kwargs or not config.enabled():
            return None  # a password login, or SSO is off: not for this backend
        try:
            self._configure(discovery.provider(options().oidc_issuer))
            return super().authenticate(request, **kwargs)
        except (discovery.DiscoveryError, requests.RequestException) as exc:
            raise Refused("unreachable", f"{type(exc).__name__}: {exc}") from None
        except (SuspiciousOperation, KeyError, ValueError) as exc:
            # No key of the provider's matches the token's kid, or a response of the wrong
            # shape: nothing here can be trusted.
            raise Refused("tampered", f"{type(exc).__name__}: {exc}") from None

    def _configure(self, found: discovery.Provider) -> None:
        self.provider = found
        self.OIDC_OP_TOKEN_ENDPOINT = found.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = found.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = found.jwks_uri
        self.OIDC_RP_CLIENT_ID = options().oidc_client_id
        self.OIDC_RP_CLIENT_SECRET = self.get_settings("OIDC_RP_CLIENT_SECRET")
        self.OIDC_RP_IDP_SIGN_KEY = None

    def get_token(self, payload: dict[str, Any]) -> Any:
        """The token request, authenticated as the provider asks: client_secret_basic unless
        it offers only client_secret_post (Discovery §3; RFC 6749 §2.3.1 form-encodes both
        halves of the Basic credentials)."""
        auth = None
        if "client_secret_basic" in self.provider.token_auth_methods:
            auth = HTTPBasicAuth(
                quote(payload.pop("client_id"), safe=""),
                quote(payload.pop("client_secret"), safe=""),
            )
        response = requests.post(
            self.OIDC_OP_TOKEN_ENDPOINT, data=payload, auth=auth, timeout=TIMEOUT_SECONDS
        )
        if response.status_code != 200:
            raise Refused(
                "code", f"token endpoint answered {response.status_code}: {response.text[:200]}"
            )
        return response.json()

    def retrieve_matching_jwk(self, token: str) -> Any:
        """The provider's key for the token, from the key set kept between sign-ins (the
        library fetches it at every sign-in; see sso.keys)."""
        try:
            header = jwt.get_unverified_header(token)
            return jwt.PyJWK(keys.matching(self.OIDC_OP_JWKS_ENDPOINT, header))
        except jwt.PyJWTError as exc:  # not a JWT, or a key PyJWT cannot use: nothing to trust
            raise Refused("tampered", f"{type(exc).__name__}: {exc}") from None

    def verify_token(self, token: str, **kwargs: Any) -> Any:
        key = self.retrieve_matching_jwk(token)
        payload = self._verify_jws(token, key)
        # Only the ID token carries the nonce (the library passes it for the ID token only).
        if "nonce" in kwargs and payload.get("nonce") != kwargs["nonce"]:
            raise Refused("nonce", "the ID token's nonce is not the one this sign-in sent")
        return payload

    def _verify_jws(self, payload: Any, key: Any) -> Any:
        try:
            algorithm = jwt.get_unverified_header(payload).get("alg")
            if algorithm not in self.provider.algorithms:
                raise Refused("tampered", f"ID token signed with {algorithm!r}")
            claims = jwt.decode(
                payload,
                key,
                algorithms=[algorithm],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=self.provider.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise Refused(_refusal_of(exc), f"{type(exc).__name__}: {exc}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise Refused("audience", f"several audiences and azp {claims.get('azp')!r}")
        return claims

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        """The ID token's claims, with the userinfo endpoint's on top when there is one."""
        if not self.OIDC_OP_USER_ENDPOINT:
            return dict(payload)
        info = super().get_userinfo(access_token, id_token, payload)
        if info.get("sub") != payload["sub"]:
            raise Refused("tampered", "userinfo sub differs from the ID token's (Core §5.3.2)")
        return {**payload, **info}

    def get_or_create_user(self, access_token: str, id_token: str, payload: Any) -> Any:
        found = self.get_userinfo(access_token, id_token, payload)
        email = sso_claims.verified_email(found)
        if not email:
            raise Refused("unverified", f"email {found.get('email')!r} not verified")
        _refuse_deactivated(email)
        user = _find_or_create(found["sub"], email, found)
        if not user.is_active:
            raise Refused("inactive", f"user {user.pk} is not active")
        _follow_groups(user, found)
        log.info("signed in with single sign-on", extra={"user_id": user.pk})
        return user


def _refusal_of(exc: jwt.InvalidTokenError) -> str:
    kinds: list[tuple[type[Exception], str]] = [
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.ImmatureSignatureError, "expired"),
        (jwt.InvalidAudienceError, "audience"),
        (jwt.InvalidIssuerError, "issuer"),
    ]
    return next((name for kind, name in kinds if isinstance(exc, kind)), "tampered")


def _refuse_deactivated(email: str) -> None:
    people = Employee.objects.filter(email__iexact=email)
    if people.exists() and not people.filter(active=True).exists():
        raise Refused("deactivated", f"employee {people.values_list('pk', flat=True).first()}")


def _find_or_create(subject: str, email: str, found: dict[str, Any]) -> User:
    """The user of this subject; else the one of the employee with this address, or the one
    login with it (never a superuser: theirs is the break-glass password); else a new one."""
    username = subject_username(subject)
    user = User.objects.filter(username=username).first() or _by_address(username, email)
    if user is None:
        user = User.objects.create_user(username, email=email)  # no usable password
        log.info("user created at first single sign-on", extra={"user_id": user.pk})
    linked = Employee.objects.filter(user=user).first()
    if linked is not None and not linked.active:
        raise Refused("deactivated", f"employee {linked.pk}")
    _update(user, email, found)
    return user


def _by_address(username: str, email: str) -> User | None:
    others = User.objects.filter(is_superuser=False).exclude(username__startswith=SUBJECT_PREFIX)
    employee = Employee.objects.filter(email__iexact=email, active=True, user__isnull=False)
    by_employee = others.filter(pk__in=employee.values("user")).first()
    if by_employee is not None:
        return by_employee
    same_address = list(others.filter(email__iexact=email)[:2])
    return same_address[0] if len(same_address) == 1 else None


def _update(user: User, email: str, found: dict[str, Any]) -> None:
    user.email = email  # the provider's address wins: it may have changed since last time
    user.first_name = str(found.get("given_name") or found.get("name") or "")[:150]
    user.last_name = str(found.get("family_name") or "")[:150]
    user.save(update_fields=["email", "first_name", "last_name"])


def _follow_groups(user: User, found: dict[str, Any]) -> None:
    table = config.group_roles(options().oidc_group_roles)
    if not table:
        return
    try:
        groups = sso_claims.groups_in(found, options().oidc_groups_claim)
    except sso_claims.GroupsUnknown:
        log.warning(
            "groups claim left out of the token (too many groups): roles kept as they were",
            extra={"user_id": user.pk, "claim": options().oidc_groups_claim},
        )
        return
    sso_claims.follow_groups(user, groups, table)


class PasswordSwitch:
    """With ``BULLETIN_PASSWORD_LOGIN=false`` a password signs in superusers only: the
    break-glass path when the provider is down. Listed before ModelBackend, it stops every
    other password login there (PermissionDenied ends Django's authenticate()), on the login
    page and the admin's alike. Not a BaseBackend: without ``get_user`` Django never picks it
    as a session's backend (the test client's force_login takes the first that has one)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if options().password_login or username is None or password is None:
            return None
        if User.objects.filter(username=username, is_superuser=True).exists():
            return None  # ModelBackend checks the password
        log.warning("password sign-in refused: passwords are for superusers only")
        raise PermissionDenied("password login is off")
