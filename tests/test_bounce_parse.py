"""Reading returned messages: a table of real-world shapes (tests/bounce_samples/), and input
that is anything but a bounce."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bulletin import conf
from bulletin.channels import verp
from bulletin.channels.bounce_parse import parse
from bulletin.channels.bounce_report import BounceKind

SAMPLES = Path(__file__).parent / "bounce_samples"
# The samples carry the placeholder key "<id>-aaaaaaaaaaaa"; signed() puts a real one there.
PLACEHOLDER = re.compile(rb"\+(\d+)-aaaaaaaaaaaa@")
HARD, SOFT, COMPLAINT = BounceKind.HARD, BounceKind.SOFT, BounceKind.COMPLAINT
AUTO_REPLY, UNREADABLE = BounceKind.AUTO_REPLY, BounceKind.UNREADABLE


def sample(name: str) -> bytes:
    return signed((SAMPLES / name).read_bytes())


def signed(raw: bytes) -> bytes:
    """The sample as this installation would receive it: each placeholder key made real."""
    return PLACEHOLDER.sub(lambda found: f"+{verp.key_for(int(found[1]))}@".encode(), raw)


@pytest.fixture(autouse=True)
def bounce_address(settings: Any) -> None:
    settings.BULLETIN = replace(conf.load({}), bounce_address="bounces@example.com")


def mid(number: int) -> str:
    return f"<7.{number}.email@bulletin.example.com>"


# sample, kind, recipient, status, returned Message-ID, delivery the VERP key names
TABLE = [
    ("postfix_user_unknown.eml", HARD, "nobody@example.net", "5.1.1", mid(101), 101),
    ("postfix_delayed.eml", SOFT, "slow@example.net", "4.4.1", mid(102), 102),
    ("exim_failed.eml", HARD, "gone@example.org", "5.1.1", mid(103), 103),
    ("office365_ndr.eml", HARD, "former.employee@contoso.example.com", "5.1.10", mid(104), 104),
    ("gmail_failure.eml", HARD, "no.such.person@example.net", "5.1.1", mid(105), 105),
    ("ses_bounce.eml", HARD, "left.company@example.net", "5.1.1", mid(106), None),
    ("arf_complaint.eml", COMPLAINT, "ann.complainer@example.net", "", mid(107), 107),
    ("out_of_office.eml", AUTO_REPLY, "ann.away@example.net", "", "", 108),
    ("mailbox_full_422.eml", SOFT, "full@example.net", "4.2.2", mid(109), 109),
    ("mailbox_full_522_cr.eml", SOFT, "stuffed@example.jp", "5.2.2", mid(110), 110),
    ("mangled_dsn.eml", UNREADABLE, "", "", "", 111),
    ("forged_verp.eml", HARD, "victim@example.com", "5.1.1", mid(42), None),
]


@pytest.mark.parametrize(
    ("name", "kind", "recipient", "status", "message_id", "delivery_id"),
    TABLE,
    ids=[row[0] for row in TABLE],
)
def test_each_real_world_sample_reads_as_what_it_is(
    name: str,
    kind: BounceKind,
    recipient: str,
    status: str,
    message_id: str,
    delivery_id: int | None,
) -> None:
    report = parse(sample(name), source="maildir")
    found = (report.kind, report.recipient, report.status, report.message_id, report.delivery_id)
    assert found == (kind, recipient, status, message_id, delivery_id)
    assert report.source == "maildir"


def test_every_sample_in_the_folder_is_in_the_table() -> None:
    assert sorted(path.name for path in SAMPLES.glob("*.eml")) == sorted(row[0] for row in TABLE)


def test_a_forged_key_is_refused_and_names_no_delivery() -> None:
    report = parse(sample("forged_verp.eml"), source="pipe")
    assert report.delivery_id is None
    assert "signature" in report.key_refused


def test_an_unsigned_placeholder_key_is_refused_too() -> None:
    report = parse((SAMPLES / "postfix_user_unknown.eml").read_bytes(), source="pipe")
    assert (report.delivery_id, report.kind) == (None, HARD)
    assert "signature" in report.key_refused


def test_the_envelope_recipient_the_mta_gives_wins_over_the_headers() -> None:
    report = parse(
        sample("postfix_user_unknown.eml"), source="pipe", envelope_to=verp.return_path(555)
    )
    assert report.delivery_id == 555


def test_a_forged_envelope_recipient_is_refused_even_when_a_header_holds_a_good_key() -> None:
    report = parse(
        sample("postfix_user_unknown.eml"),
        source="pipe",
        envelope_to="bounces+101-bbbbbbbbbbbb@example.com",
    )
    assert report.delivery_id is None and report.key_refused


def test_a_complaint_finds_its_key_in_the_reports_original_mail_from() -> None:
    raw = sample("arf_complaint.eml")
    assert b"Delivered-To: fbl@example.com" in raw  # the loop's address carries no key
    assert parse(raw, source="imap").delivery_id == 107


def test_the_server_words_come_without_the_diagnostic_type() -> None:
    report = parse(sample("office365_ndr.eml"), source="pipe")
    assert report.diagnostic.startswith("550 5.1.10 RESOLVER.ADR.RecipientNotFound")
    assert len(parse(sample("gmail_failure.eml"), source="pipe").diagnostic) <= 1000


def test_postfixs_auto_submitted_header_does_not_make_its_dsn_an_auto_reply() -> None:
    raw = sample("postfix_user_unknown.eml")
    assert b"Auto-Submitted: auto-replied" in raw
    assert parse(raw, source="pipe").kind == HARD


def test_a_report_saying_the_message_was_delivered_is_ignored() -> None:
    raw = sample("postfix_delayed.eml").replace(b"Action: delayed", b"Action: relayed")
    assert parse(raw, source="pipe").kind == AUTO_REPLY


def test_a_not_spam_feedback_report_is_no_complaint() -> None:
    raw = sample("arf_complaint.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    assert parse(raw, source="pipe").kind == AUTO_REPLY


PLAIN = b"From: Ann <ann@example.net>\nTo: bounces@example.com\n"


@pytest.mark.parametrize(
    "marks",
    [
        b"Subject: Re: Office closed\nX-Autoreply: yes\n",
        b"Subject: Re: Office closed\nX-Autorespond: Ann is away\n",
        b"Subject: Re: Office closed\nPrecedence: auto_reply\n",
        b"Subject: Out of Office: Office closed Friday\n",
        b"Subject: Automatic reply: Office closed Friday\n",
        b"Subject: Re: Office closed\nAuto-Submitted: auto-generated\n",
    ],
)
def test_automatic_replies_are_recognised_by_any_of_their_marks(marks: bytes) -> None:
    report = parse(PLAIN + marks + b"\nI am away.\n", source="pipe")
    assert (report.kind, report.recipient) == (AUTO_REPLY, "ann@example.net")


def test_a_persons_own_reply_is_unreadable_not_ignored() -> None:
    raw = PLAIN + b"Subject: Re: Office closed\nAuto-Submitted: no\n\nThanks!\n"
    assert parse(raw, source="pipe").kind == UNREADABLE


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe" * 1000,
        b"not a message at all",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n",
        b"Content-Type: multipart/report; boundary=\n\n--\n--\n",
        b"Content-Type: message/delivery-status\n\n\n\n",
        b"Subject: =?utf-8?q?=ZZ=ZZ?= =?bogus?b?////?=\nFrom: <<<@@@>>>\n\n",
        b"Content-Type: text/plain; charset=no-such-charset\nX-Failed-Recipients: a@b\n\n\xff",
        b"Message-ID: <unterminated\nTo: ,,,@,,,\nDate: yesterday\n\n" + bytes(range(256)),
    ],
)
def test_garbage_is_unreadable_and_never_raises(raw: bytes) -> None:
    report = parse(raw, source="pipe")
    assert report.kind in (UNREADABLE, AUTO_REPLY, HARD, SOFT)
    if report.kind == UNREADABLE:
        assert report.note


def test_every_cut_of_every_sample_reads_without_raising() -> None:
    for path in SAMPLES.glob("*.eml"):
        raw = path.read_bytes()
        for end in range(0, len(raw), 97):
            parse(raw[:end], source="pipe")


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_at_all_read_without_raising(raw: bytes) -> None:
    assert parse(raw, source="pipe").source == "pipe"


def test_a_message_over_the_limit_is_unreadable_with_the_reason(settings: Any) -> None:
    limit = conf.load({}).bounce_max_bytes
    assert limit == 10 * 1024 * 1024
    huge = sample("postfix_user_unknown.eml") + b"x" * (limit + 1)
    report = parse(huge[: limit + 1], source="pipe")
    assert report.kind == UNREADABLE
    assert "BULLETIN_BOUNCE_MAX_BYTES" in report.note
    assert report.delivery_id is None  # not even read for its key


def test_a_message_at_the_limit_is_read(settings: Any) -> None:
    raw = sample("postfix_user_unknown.eml")
    settings.BULLETIN = replace(settings.BULLETIN, bounce_max_bytes=len(raw))
    assert parse(raw, source="pipe").kind == HARD
    assert parse(raw + b"\n", source="pipe").kind == UNREADABLE


def test_no_text_of_a_report_carries_a_nul_or_control_character() -> None:
    raw = sample("postfix_user_unknown.eml").replace(
        b"Diagnostic-Code: smtp; 550", b"Diagnostic-Code: smtp; \x00\x1b550"
    )
    report = parse(raw, source="pipe\x00")
    assert "\x00" not in report.diagnostic + report.source and "\x1b" not in report.diagnostic
    assert report.diagnostic.startswith("550 5.1.1")
