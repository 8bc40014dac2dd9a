"""The identity provider's keys, kept between sign-ins and read again when it rotates them
(bulletin.interfaces.sso.keys), against a real loopback HTTP server serving real RSA keys.
The whole sign-in with a rotation at the real provider is test_sso_browser's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import SuspiciousOperation
from jwt.algorithms import RSAAlgorithm

from bulletin.interfaces.sso import keys
from bulletin.interfaces.sso.backend import SingleSignOn
from bulletin.interfaces.sso.refusals import Refused
from tests.http_receiver import HttpReceiver, Reply


def key_pair(kid: str, **extra: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    """A new RSA key, and its public half as a provider publishes it."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    found = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**found, "kid": kid, "use": "sig", **extra}


def public_jwk(kid: str, **extra: str) -> dict[str, Any]:
    return key_pair(kid, **extra)[1]


def signed_by(private: rsa.RSAPrivateKey, kid: str) -> str:
    return jwt.encode({"sub": "eve"}, private, algorithm="RS256", headers={"kid": kid})


FIRST = public_jwk("key-1", alg="RS256")
SECOND = public_jwk("key-2", alg="RS256")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    keys.forget()
    moved = Clock()
    monkeypatch.setattr(keys, "_clock", moved)
    yield moved
    keys.forget()


@pytest.fixture
def provider() -> Iterator[HttpReceiver]:
    with HttpReceiver(default=Reply(404)) as receiver:
        receiver.route("/jwks", Reply.json(200, {"keys": [FIRST]}))
        yield receiver


def header(kid: str, alg: str = "RS256") -> dict[str, str]:
    return {"alg": alg, "kid": kid, "typ": "JWT"}


def test_a_key_set_is_read_once_and_kept_for_the_next_sign_ins(
    provider: HttpReceiver, clock: Clock
) -> None:
    for _ in range(3):
        assert keys.matching(provider.url("/jwks"), header("key-1")) == FIRST
        clock.now += 60
    assert len(provider.requests) == 1


def test_a_kept_key_set_is_read_again_after_an_hour(provider: HttpReceiver, clock: Clock) -> None:
    keys.matching(provider.url("/jwks"), header("key-1"))
    clock.now += keys.KEEP_SECONDS - 1
    keys.matching(provider.url("/jwks"), header("key-1"))
    assert len(provider.requests) == 1
    clock.now += 1
    keys.matching(provider.url("/jwks"), header("key-1"))
    assert len(provider.requests) == 2


def test_an_unfamiliar_kid_reads_the_key_set_again_and_finds_the_rotated_key(
    provider: HttpReceiver, clock: Clock
) -> None:
    keys.matching(provider.url("/jwks"), header("key-1"))
    provider.route("/jwks", Reply.json(200, {"keys": [FIRST, SECOND]}))  # rotated
    clock.now += 1  # however soon after the last read

    assert keys.matching(provider.url("/jwks"), header("key-2")) == SECOND
    assert keys.matching(provider.url("/jwks"), header("key-1")) == FIRST  # still published
    assert len(provider.requests) == 2


def test_made_up_kids_read_the_key_set_at_most_once_in_ten_seconds(
    provider: HttpReceiver, clock: Clock
) -> None:
    keys.matching(provider.url("/jwks"), header("key-1"))
    for made_up in ("forged-1", "forged-2", "forged-3"):
        with pytest.raises(SuspiciousOperation, match=repr(made_up)):
            keys.matching(provider.url("/jwks"), header(made_up))
        clock.now += 1
    assert len(provider.requests) == 2  # the first read and one fresh read, not four
    clock.now += keys.REFETCH_SECONDS
    with pytest.raises(SuspiciousOperation):
        keys.matching(provider.url("/jwks"), header("forged-4"))
    assert len(provider.requests) == 3


def test_a_fresh_read_that_failed_still_counts_against_the_ten_seconds(
    provider: HttpReceiver, clock: Clock
) -> None:
    keys.matching(provider.url("/jwks"), header("key-1"))
    provider.route("/jwks", Reply(503))
    with pytest.raises(requests.HTTPError):
        keys.matching(provider.url("/jwks"), header("forged-1"))
    clock.now += 1
    with pytest.raises(SuspiciousOperation):
        keys.matching(provider.url("/jwks"), header("forged-2"))
    assert len(provider.requests) == 2
    assert keys.matching(provider.url("/jwks"), header("key-1")) == FIRST  # the kept set stays


def test_the_kid_read_the_first_time_is_not_read_again_at_once(
    provider: HttpReceiver, clock: Clock
) -> None:
    with pytest.raises(SuspiciousOperation):
        keys.matching(provider.url("/jwks"), header("forged"))
    assert len(provider.requests) == 1  # just read: reading again could find nothing new


def test_a_key_of_another_algorithm_under_the_same_kid_is_not_used(
    provider: HttpReceiver, clock: Clock
) -> None:
    provider.route("/jwks", Reply.json(200, {"keys": [public_jwk("key-1", alg="PS256"), FIRST]}))
    assert keys.matching(provider.url("/jwks"), header("key-1")) == FIRST
    with pytest.raises(SuspiciousOperation):
        keys.matching(provider.url("/jwks"), header("key-1", alg="PS384"))


def test_the_matched_key_verifies_the_token_it_was_matched_for(
    provider: HttpReceiver, clock: Clock
) -> None:
    private, published = key_pair("key-3")
    provider.route("/jwks", Reply.json(200, {"keys": [FIRST, published]}))
    token = signed_by(private, "key-3")

    found = keys.matching(provider.url("/jwks"), jwt.get_unverified_header(token))
    assert jwt.decode(token, jwt.PyJWK(found), algorithms=["RS256"]) == {"sub": "eve"}


@pytest.mark.parametrize(
    "reply",
    [Reply(500), Reply(200, b"<html>"), Reply.json(200, []), Reply.json(200, {"keys": "none"})],
)
def test_a_key_set_that_cannot_be_read_is_an_error_and_nothing_is_kept(
    provider: HttpReceiver, clock: Clock, reply: Reply
) -> None:
    provider.route("/jwks", reply)
    with pytest.raises((requests.RequestException, ValueError)):
        keys.matching(provider.url("/jwks"), header("key-1"))
    provider.route("/jwks", Reply.json(200, {"keys": [FIRST]}))
    assert keys.matching(provider.url("/jwks"), header("key-1")) == FIRST


PRIVATE, _ = key_pair("key-1")


@pytest.mark.parametrize(
    ("token", "published"),
    [
        ("not-a-jwt", [FIRST]),  # the provider answered something that is not a JWT
        (signed_by(PRIVATE, "key-1"), [{"kid": "key-1", "kty": "no-such-type"}]),  # unusable key
    ],
)
def test_a_token_or_key_that_cannot_be_read_is_a_refusal_not_an_error_page(
    provider: HttpReceiver, clock: Clock, token: str, published: list[Any]
) -> None:
    provider.route("/jwks", Reply.json(200, {"keys": published}))
    backend = SingleSignOn()
    backend.OIDC_OP_JWKS_ENDPOINT = provider.url("/jwks")

    with pytest.raises(Refused) as refused:
        backend.retrieve_matching_jwk(token)
    assert refused.value.reason == "tampered"
