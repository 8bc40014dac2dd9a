"""Django's error pages with DEBUG off, as people meet them: a 404 for a mistyped or stale link,
a 403 from any view that refuses (and the HR screens' own 403, which says the same), and a 500
that renders even when nothing else works: each says what happened and what to do next, links
home and is styled by Bulletin's stylesheet."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import path
from django.views.defaults import server_error

from bulletin import urls as bulletin_urls
from bulletin.domain import roles
from tests import factories

pytestmark = pytest.mark.django_db

ROLE_ADVICE = "ask an administrator for the Announcer or Approver role"


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug, for the 500 page to report")


def refused(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("not for you")


# This module is the URLconf of the tests marked below: Bulletin's own URLs plus two that fail
# on purpose, so no production URL ever raises.
urlpatterns = [
    *bulletin_urls.urlpatterns,
    path("test-only/broken/", broken),
    path("test-only/refused/", refused),
]
with_failing_urls = pytest.mark.urls(__name__)


@pytest.fixture(autouse=True)
def debug_off(settings: Any) -> None:
    settings.DEBUG = False


def text(response: Any) -> str:
    return response.content.decode()


def names(response: Any) -> list[str]:
    return [template.name for template in response.templates]


def assert_styled_with_a_way_home(response: Any) -> None:
    page = text(response)
    assert "bulletin/inbox.css" in page
    assert '<a class="error-button" href="/">Go to the home page</a>' in page


def test_an_unknown_address_shows_the_404_page_that_says_to_check_the_link(client: Client) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "404.html" in names(response)
    assert "We can\u2019t find that page" in text(response)
    assert "Check the link" in text(response)
    assert_styled_with_a_way_home(response)


def test_an_announcement_page_that_does_not_exist_shows_the_same_404_page(
    client: Client, eve: Any
) -> None:
    factories.employees(1, prefix="eve", user=eve)
    client.force_login(eve)
    response = client.get("/inbox/999999/")
    assert response.status_code == 404
    assert "404.html" in names(response)


@with_failing_urls
def test_a_view_that_refuses_shows_the_403_page_naming_the_roles_to_ask_for(
    client: Client, eve: Any
) -> None:
    client.force_login(eve)
    response = client.get("/test-only/refused/")
    assert response.status_code == 403
    assert "403.html" in names(response)
    assert "You can\u2019t do that here" in text(response)
    assert ROLE_ADVICE in text(response)
    assert "<strong>eve</strong>" in text(response)
    assert_styled_with_a_way_home(response)


def test_the_admin_refusing_a_staff_member_shows_the_403_page(client: Client) -> None:
    client.force_login(factories.person("sam", is_staff=True))
    response = client.get("/admin/bulletin/announcement/")
    assert response.status_code == 403
    assert "403.html" in names(response)
    assert ROLE_ADVICE in text(response)


def test_the_hr_screens_own_403_page_gives_the_same_advice_and_what_is_missing(
    client: Client, eve: Any
) -> None:
    client.force_login(eve)
    response = client.get("/hr/")
    assert response.status_code == 403
    assert "bulletin/hr/forbidden.html" in names(response)
    assert "You can\u2019t do that here" in text(response)
    assert "see announcements" in text(response)
    assert ROLE_ADVICE in text(response)
    assert_styled_with_a_way_home(response)


@with_failing_urls
def test_an_unexpected_error_shows_the_500_page_saying_to_try_again(client: Client) -> None:
    client.raise_request_exception = False
    response = client.get("/test-only/broken/")
    assert response.status_code == 500
    assert "500.html" in names(response)
    assert "Something went wrong on our side" in text(response)
    assert "Try again in a minute" in text(response)
    assert_styled_with_a_way_home(response)
    assert "a bug, for the 500 page" not in text(response)


def test_the_500_page_renders_without_a_request_context_or_the_database(
    django_assert_num_queries: Any,
) -> None:
    """Whatever broke (the database, a context processor), the 500 page itself cannot fail."""
    request = RequestFactory().get("/")  # no session, no user: nothing a processor could read
    with django_assert_num_queries(0):
        response = server_error(request)
    assert response.status_code == 500
    assert "Something went wrong on our side" in text(response)


@pytest.mark.parametrize("role", [roles.ANNOUNCER, roles.APPROVER])
def test_the_roles_the_403_page_names_are_the_ones_that_open_the_hr_screens(
    client: Client, role: str
) -> None:
    client.force_login(factories.person("robin", role))
    assert client.get("/hr/").status_code == 200
