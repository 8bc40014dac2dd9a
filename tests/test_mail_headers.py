"""Email headers at the limits the mail RFCs set, read back by the standard library's strict
parser.

RFC 5322 section 2.1.1: lines SHOULD be at most 78 characters. RFC 2047 section 2: an
encoded-word MUST NOT be more than 75, and a line holding one is limited to 76. Python's
``email.header.Header`` wrote 76-character words for every long non-ASCII subject or name (and,
after ``To: ``, lines of up to 82 characters), which is why Bulletin cuts the words itself
(bulletin.channels.headers).
"""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulletin.channels.headers import encoded_words
from bulletin.channels.mime import (
    ONE_CLICK,
    email_bytes,
    list_headers,
    list_id,
    recipient_address,
    sender_address,
)
from tests.strategies import properties

ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# Any one-line text, including the scripts and symbols people put in titles and names.
ONE_LINE = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=200
).filter(str.strip)
UNSUBSCRIBE = "https://bulletin.example.com/unsubscribe/12.34:q-NBPhJk_IKHcAbhDxJik8vlvCS4yZ/"

SCRIPTS = {
    "ascii-long": "Quarterly all-hands: the new office, the parking rules and the canteen " * 3,
    "ascii-one-long-word": "x" * 120,
    "latin-1": "Fête de l'été à Montréal: déjà-vu, Æsir, Øresund, Zoë Ångström " * 2,
    "cjk": "東京オフィスの年末年始の営業についてのお知らせ、および新しい駐車場の規則" * 2,
    "emoji": "🎉 Party on Friday 🥳 bring 🍕 and 👨‍👩‍👧‍👦 " * 3,
    "rtl": "שלום לכולם, המשרד סגור ביום שישי — مرحبا بالجميع، المكتب مغلق يوم الجمعة",
    "looks-encoded": "=?utf-8?q?not_an_encoded_word?= but plain text",
    "edge-spaces": "  two leading, double  inside, trailing  ",
}


def wire(
    subject: str,
    name: str,
    unsubscribe: str = UNSUBSCRIBE,
    message_id: str = "<42.7.email@bulletin.example>",
) -> bytes:
    return email_bytes(
        sender=sender_address("Bulletin <bulletin@example.com>"),
        recipient=recipient_address(name, "ana@example.com"),
        subject=subject,
        message_id=message_id,
        text="Hello",
        html="<p>Hello</p>",
        listed=list_headers(list_id("bulletin.example.com"), unsubscribe),
    )


def strictly_parsed(data: bytes) -> EmailMessage:
    """The message as ``email.policy.strict`` reads it, asserting it found no defect in the
    message, any part or any header."""
    parsed = BytesParser(policy=email.policy.strict).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    for part in parsed.walk():
        assert not part.defects, part.defects
        for name, value in part.items():
            assert not getattr(value, "defects", ()), (name, value.defects)
    return parsed


def header_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def decoded(raw: str) -> str:
    """A header value as RFC 2047 section 6.2 decodes it (white space between encoded-words
    dropped)."""
    return str(make_header(decode_header(raw)))


def raw_name(data: bytes) -> str:
    """The display name as written. (The stdlib's address parser puts a space between the
    encoded-words of a long name, where RFC 2047 says there is none: decode it per the RFC.)"""
    written = str(email.message_from_bytes(data, policy=email.policy.compat32)["To"])
    return written.rsplit("<", 1)[0].strip()


def assert_within_limits(data: bytes, *, except_unsubscribe: bool = True) -> None:
    for line in header_lines(data):
        if except_unsubscribe and line.startswith(b"List-Unsubscribe: <"):
            continue  # one URI, which RFC 2369 forbids folding (see the test below)
        if re.fullmatch(rb" <[^ ]+>", line):
            continue  # a msg-id folded onto a line of its own: it cannot be folded further
        assert len(line) <= (76 if ENCODED_WORD.search(line) else 78), line
    for word in ENCODED_WORD.findall(data):
        assert len(word) <= 75, word


@properties(examples=300)
@given(subject=ONE_LINE, name=ONE_LINE)
def test_any_subject_and_name_fit_the_limits_parse_strictly_and_read_back(
    subject: str, name: str
) -> None:
    data = wire(subject, name)
    assert_within_limits(data)
    parsed = strictly_parsed(data)
    assert str(parsed["Subject"]) == subject
    (to,) = parsed["To"].addresses
    assert to.addr_spec == "ana@example.com"
    written = raw_name(data)
    name_read = decoded(written) if written.startswith("=?") else to.display_name
    assert name_read == name


@pytest.mark.parametrize("script", SCRIPTS)
def test_subjects_and_names_in_many_scripts_fit_the_limits_and_read_back(script: str) -> None:
    text = SCRIPTS[script]
    data = wire(text, text)
    assert_within_limits(data)
    parsed = strictly_parsed(data)
    assert str(parsed["Subject"]) == text
    assert decoded(raw_name(data)) == text


@pytest.mark.parametrize("name", ["Zoë Ångström", "山田太郎", "Ana 🎉 Lima", "محمد علي"])
def test_a_name_that_fits_one_encoded_word_reads_back_with_the_strict_parser_alone(
    name: str,
) -> None:
    (to,) = strictly_parsed(wire("Hi", name))["To"].addresses
    assert to.display_name == name


@pytest.mark.parametrize("first", [75, 69, 40, 24])
@pytest.mark.parametrize("script", ["latin-1", "cjk", "emoji"])
def test_encoded_words_fill_up_to_their_room_and_never_past_it(first: int, script: str) -> None:
    words = encoded_words(SCRIPTS[script], first)
    assert len(words[0]) <= first and all(len(word) <= 75 for word in words)
    assert max(len(word) for word in words) >= 75 - 12  # cut by counting, not too early
    assert decoded(" ".join(words)) == SCRIPTS[script]


def test_a_plain_ascii_subject_stays_readable_and_folds_at_spaces() -> None:
    data = wire(SCRIPTS["ascii-long"].strip(), "Ana Lima")
    lines = header_lines(data)
    subject = lines.index(next(line for line in lines if line.startswith(b"Subject: ")))
    assert lines[subject].startswith(b"Subject: Quarterly all-hands")
    assert lines[subject + 1].startswith(b" ") and b"=?" not in lines[subject + 1]
    assert b"To: Ana Lima <ana@example.com>" in lines


def test_every_email_says_it_is_automatic_and_names_its_list() -> None:
    parsed = strictly_parsed(wire("Hi", "Ana"))
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["List-Id"] == "Announcements <announcements.bulletin.example.com>"
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000", parsed["Date"])


def test_an_optional_email_offers_one_click_unsubscribe_as_rfc_8058_writes_it() -> None:
    data = wire("Hi", "Ana")
    assert f"List-Unsubscribe: <{UNSUBSCRIBE}>".encode() in header_lines(data)
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in header_lines(data)
    assert ONE_CLICK == "List-Unsubscribe=One-Click"


def test_a_mandatory_email_offers_no_unsubscribe() -> None:
    parsed = strictly_parsed(wire("Hi", "Ana", unsubscribe=""))
    assert parsed["List-Unsubscribe"] is None and parsed["List-Unsubscribe-Post"] is None
    assert parsed["Auto-Submitted"] == "auto-generated"


def test_a_long_unsubscribe_uri_stays_whole_on_one_line_within_the_998_limit() -> None:
    """RFC 2369 section 2: no white space inside the angle brackets, so the URI is not folded."""
    long_url = "https://bulletin.example.com/" + "a" * 900
    data = wire("Hi", "Ana", unsubscribe=long_url)
    assert f"List-Unsubscribe: <{long_url}>".encode() in header_lines(data)
    assert strictly_parsed(data)["List-Unsubscribe"] == f"<{long_url}>"


@pytest.mark.parametrize("url", ["https://x.example/a b", "https://x.example/>", "a\r\nBcc: x"])
def test_an_unsubscribe_uri_that_cannot_be_a_header_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsubscribe URL"):
        wire("Hi", "Ana", unsubscribe=url)


def test_a_message_id_too_long_for_its_line_is_folded_before_it_and_parses_strictly() -> None:
    key = f"1672.2487.email.{'a0' * 16}"
    data = wire("Notice", "Ana", message_id=f"<{key}@bulletin.example.com>")
    assert b"\r\nMessage-ID:\r\n <" + key.encode() + b"@bulletin.example.com>\r\n" in data
    assert strictly_parsed(data)["Message-ID"].strip() == f"<{key}@bulletin.example.com>"
    assert_within_limits(data)
    short = wire("Notice", "Ana", message_id="<1.2.email@x.example>")
    assert b"\r\nMessage-ID: <1.2.email@x.example>\r\n" in short
