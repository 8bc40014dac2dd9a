"""The email's look and senders as settings: BULLETIN_ORG_NAME, _LOGO_URL, _BRAND_COLOR,
_EMAIL_FOOTER and _SENDERS are read into one canonical form, and a bad value is one
ImproperlyConfigured naming its variable."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from bulletin import conf
from bulletin.conf_email import SenderNotAllowed, allowed_sender


def refused(variable: str, value: str) -> str:
    with pytest.raises(ImproperlyConfigured) as caught:
        conf.load({variable: value})
    message = str(caught.value)
    assert variable in message
    return message


def test_unset_look_is_a_plain_bulletin_email_from_the_default_sender_only() -> None:
    chosen = conf.load({})
    assert chosen.org_name == "Bulletin"
    assert chosen.logo_url == "" and chosen.email_footer == ""
    assert chosen.brand_color == "#1f4e8c"
    assert chosen.sender_list() == ()


def test_senders_split_on_commas_and_lines_and_keep_quoted_commas_in_names() -> None:
    raw = 'People Team <people@example.com>, it@example.com\n"Safety, Facilities" <s@example.com>'
    assert conf.load({"BULLETIN_SENDERS": raw}).sender_list() == (
        "People Team <people@example.com>",
        "it@example.com",
        '"Safety, Facilities" <s@example.com>',
    )


def test_a_repeated_sender_is_listed_once() -> None:
    raw = "it@example.com\r\nit@example.com"
    assert conf.load({"BULLETIN_SENDERS": raw}).sender_list() == ("it@example.com",)


@pytest.mark.parametrize(
    "raw", ["people", "People Team <people>", "a@example.com, not an address", "x@@example.com"]
)
def test_a_sender_that_is_not_an_address_is_refused_naming_it(raw: str) -> None:
    message = refused("BULLETIN_SENDERS", raw)
    assert "not an email address" in message or "cannot read" in message


def test_brand_colour_must_be_six_hex_digits_and_is_kept_lower_case() -> None:
    assert conf.load({"BULLETIN_BRAND_COLOR": " #AABBCC "}).brand_color == "#aabbcc"
    for bad in ("blue", "#abc", "#12345g", "rgb(0,0,0)", "#1f4e8c;background:url(x)"):
        assert "#rrggbb" in refused("BULLETIN_BRAND_COLOR", bad)


def test_logo_url_must_be_absolute_http_and_cannot_break_out_of_an_attribute() -> None:
    good = "https://cdn.example.com/logo.png"
    assert conf.load({"BULLETIN_LOGO_URL": good}).logo_url == good
    for bad in ("/static/logo.png", "javascript:alert(1)", 'https://x.example/a"onerror=x'):
        refused("BULLETIN_LOGO_URL", bad)


def test_org_name_with_a_line_break_is_refused_so_it_can_never_reach_a_header() -> None:
    refused("BULLETIN_ORG_NAME", "Acme\r\nBcc: everyone@example.com")
    refused("BULLETIN_ORG_NAME", "x" * 101)
    assert conf.load({"BULLETIN_ORG_NAME": "  Acme & Co  "}).org_name == "Acme & Co"


def test_footer_keeps_its_lines_and_refuses_other_control_characters() -> None:
    chosen = conf.load({"BULLETIN_EMAIL_FOOTER": "Acme Ltd\r\n1 Main St\r\n"})
    assert chosen.email_footer == "Acme Ltd\n1 Main St"
    refused("BULLETIN_EMAIL_FOOTER", "Acme\x00Ltd")


def test_an_allowed_sender_is_matched_by_address_and_sent_as_configured() -> None:
    listed = ("People Team <people@example.com>", "it@example.com")
    assert allowed_sender("PEOPLE@example.com", listed) == listed[0]
    assert allowed_sender("Old Name <people@example.com>", listed) == listed[0]
    with pytest.raises(SenderNotAllowed, match=re.escape("ceo@example.com")):
        allowed_sender("ceo@example.com", listed)
    with pytest.raises(SenderNotAllowed, match="none configured"):
        allowed_sender("people@example.com", ())
