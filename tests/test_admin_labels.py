"""The Django admin speaks in words: model names as people say them ("API tokens", not
"Api tokens"), and the login lockout section (django-axes) only for superusers: an
Administrator who manages Bulletin's data has no business clearing lockouts."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from bulletin.domain import roles
from tests import factories

pytestmark = pytest.mark.django_db

EXPECTED_PLURALS = {
    "ApiToken": "API tokens",
    "InboxItem": "inbox items",
    "DeliveryCount": "delivery counts",
    "AttemptCount": "attempt counts",
    "Delivery": "deliveries",
    "Tally": "tallies",
    "ChannelOptOut": "channel opt-outs",
    "Engagement": "readings and acknowledgements",
    "AuditEvent": "audit events",
    "AnnouncementVersion": "announcement versions",
}


@pytest.mark.parametrize(("model", "plural"), EXPECTED_PLURALS.items())
def test_each_model_is_named_in_words(model: str, plural: str) -> None:
    assert apps.get_model("bulletin", model)._meta.verbose_name_plural == plural


def test_no_model_keeps_a_plural_or_acronym_django_made_up_from_its_class() -> None:
    """Django's made-up plural adds an "s" ("tallys") and lower-cases acronyms ("api token")."""
    for model in apps.get_app_config("bulletin").get_models():
        plural = str(model._meta.verbose_name_plural)
        assert not plural.endswith("ys"), model.__name__
        assert "api " not in plural, model.__name__


def test_the_admin_index_lists_api_tokens_and_inbox_items_in_words(admin_client: Client) -> None:
    page = admin_client.get("/admin/").content.decode()
    assert ">API tokens<" in page
    assert ">Inbox items<" in page
    assert "Api tokens" not in page


def administrator(client: Client) -> Any:
    user = factories.person("adele", roles.ADMINISTRATOR, is_staff=True)
    client.force_login(user)
    return user


def test_an_administrator_who_is_not_a_superuser_does_not_see_the_login_lockouts(
    client: Client,
) -> None:
    administrator(client)
    response = client.get("/admin/")
    assert response.status_code == 200
    page = response.content.decode()
    assert ">Announcements<" in page  # Bulletin's own data, so the page did render
    assert "Axes" not in page
    assert "Access attempts" not in page
    assert client.get("/admin/axes/accessattempt/").status_code == 403


def test_a_superuser_sees_the_login_lockouts(admin_client: Client) -> None:
    page = admin_client.get("/admin/").content.decode()
    assert "Axes" in page
    assert "Access attempts" in page
