"""An announcement's sender, chosen where HR and scripts write announcements: the HR form (a
select of BULLETIN_SENDERS, the default first, shown only when senders are configured), the
``announce`` command (``--sender``) and the REST API (``sender``). Anything else is refused
naming it, and an allowed one is stored as the settings write it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from bulletin import conf
from bulletin.domain.models import Announcement
from tests import factories
from tests.harness import Installation
from tests.test_api import Api, api_for
from tests.test_cli import one_line

pytestmark = pytest.mark.django_db

SENDERS = "People Team <people@example.com>, it@example.com"


@pytest.fixture
def senders(settings: Any) -> None:
    settings.BULLETIN = replace(conf.load({"BULLETIN_SENDERS": SENDERS}))


def hr_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_compose_form_offers_no_sender_choice_when_none_are_configured(ann: Any) -> None:
    page = hr_client(ann).get("/hr/new/").content.decode()
    assert 'id="sender-field"' not in page


def test_the_compose_form_lists_the_default_sender_first_then_the_allowed_ones(
    ann: Any, senders: None
) -> None:
    page = hr_client(ann).get("/hr/new/").content.decode()
    field = page[page.index('id="sender-field"') :]
    options = field[: field.index("</select>")]
    assert options.index("(the default)") < options.index("People Team &lt;people@example.com&gt;")
    assert "it@example.com" in options


def test_the_compose_form_saves_the_chosen_sender(ann: Any, senders: None) -> None:
    data = factories.compose_form(sender="People Team <people@example.com>")
    response = hr_client(ann).post("/hr/new/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Announcement.objects.get().sender == "People Team <people@example.com>"


def test_the_compose_form_refuses_a_sender_not_in_the_list(ann: Any, senders: None) -> None:
    response = hr_client(ann).post("/hr/new/", factories.compose_form(sender="ceo@example.com"))
    assert response.status_code == 400
    assert "ceo@example.com is not one of the allowed senders." in response.content.decode()
    assert not Announcement.objects.exists()


def api(django_user_model: Any) -> Api:
    from bulletin.domain.roles import ANNOUNCER
    from tests.test_api import user_with_role

    return api_for(user_with_role(django_user_model, "ann", ANNOUNCER))


def new_announcement(**fields: Any) -> dict[str, Any]:
    from bulletin.interfaces.api.examples import NEW_ANNOUNCEMENT

    return {**NEW_ANNOUNCEMENT, "audience": {"kind": "all"}, **fields}


def test_the_api_stores_an_allowed_sender_as_the_settings_write_it(
    django_user_model: Any, senders: None
) -> None:
    response = api(django_user_model).post(
        "/announcements", new_announcement(sender="PEOPLE@example.com")
    )
    assert response.status_code == 201, response.content
    assert Announcement.objects.get().sender == "People Team <people@example.com>"


def test_the_api_refuses_a_sender_not_allowed_naming_the_field(
    django_user_model: Any, senders: None
) -> None:
    client = api(django_user_model)
    response = client.post("/announcements", new_announcement(sender="ceo@example.com"))
    assert response.status_code == 422
    (problem,) = json.loads(response.content)["detail"]
    assert problem["field"] == "sender" and "ceo@example.com" in problem["message"]
    created = client.post("/announcements", new_announcement())
    pk = json.loads(created.content)["id"]
    changed = client.patch(f"/announcements/{pk}", {"sender": "ceo@example.com"})
    assert changed.status_code == 422
    assert json.loads(changed.content)["detail"][0]["field"] == "sender"
    assert client.patch(f"/announcements/{pk}", {"sender": "it@example.com"}).status_code == 200
    assert Announcement.objects.get(pk=pk).sender == "it@example.com"


@pytest.mark.slow
def test_announce_refuses_a_sender_not_allowed_with_one_line_and_stores_an_allowed_one(
    installation: Installation, tmp_path: Path
) -> None:
    installation.env["BULLETIN_SENDERS"] = SENDERS
    body = tmp_path / "body.md"
    body.write_text("Hello", encoding="utf-8")
    common = ("announce", "--title", "T", "--body-file", str(body), "--cron", "0 9 * * 1")
    refused = installation.run(*common, "--tz", "UTC", "--sender", "ceo@x.example", check=False)
    assert refused.returncode != 0
    assert "--sender" in one_line(refused.stderr) and "ceo@x.example" in refused.stderr
    made = installation.run(*common, "--tz", "UTC", "--sender", "it@example.com")
    pk = int(made.stdout.strip().split()[0])
    stored = installation.sql("SELECT sender FROM bulletin_announcement WHERE id = ?", (pk,))
    assert stored == [("it@example.com",)]


def test_the_hr_email_preview_says_why_an_email_cannot_be_sent_from_a_removed_sender(
    ann: Any, senders: None
) -> None:
    item = factories.fired(title="T", sender="old@example.com")
    response = hr_client(ann).get(f"/hr/{item.pk}/email-preview/")
    assert response.status_code == 409
    assert "old@example.com" in response.content.decode()
    assert "is not one of BULLETIN_SENDERS" in response.content.decode()
