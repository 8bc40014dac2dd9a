"""The email bytes Bulletin writes itself, read back by the standard library's parser.

Whatever the subject, names and bodies hold (non-ASCII, long lines, lines starting with a dot,
stray carriage returns), a mail reader must see exactly them; and nothing can become a header.
"""

from __future__ import annotations

import email
import email.policy
from email.header import decode_header, make_header

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulletin.channels.mime import email_bytes, recipient_address, sender_address
from tests.strategies import properties

ONE_LINE = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=120
).filter(str.strip)
BODY = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=3000
)


def wire(subject: str, name: str, address: str, text: str, html: str) -> bytes:
    return email_bytes(
        sender=sender_address("Bulletin <bulletin@example.com>"),
        recipient=recipient_address(name, address),
        subject=subject,
        message_id="<42.7.email@bulletin.example>",
        text=text,
        html=html,
    )


def read(data: bytes) -> email.message.EmailMessage:
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b""), "a bare LF: careful servers refuse it"
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def display_name(data: bytes) -> str:
    """The name as RFC 2047 reads it. (The stdlib's address parser puts a space between the
    encoded-words of a long, folded name, where the RFC says the fold is no space at all.)"""
    written = str(email.message_from_bytes(data, policy=email.policy.compat32)["To"])
    name = written.rsplit(" <", 1)[0]
    if name.startswith("=?"):
        return str(make_header(decode_header(name)))
    (to,) = email.message_from_bytes(data, policy=email.policy.default)["To"].addresses
    return str(to.display_name)


def same_lines(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")


@properties(examples=150)
@given(subject=ONE_LINE, name=ONE_LINE, text=BODY, html=BODY)
def test_any_subject_name_and_body_read_back_unchanged(
    subject: str, name: str, text: str, html: str
) -> None:
    data = wire(subject, name, "ana@example.com", text, html)
    parsed = read(data)
    assert str(make_header(decode_header(parsed["Subject"]))) == subject
    (to,) = parsed["To"].addresses
    assert to.addr_spec == "ana@example.com"
    assert display_name(data) == name
    assert parsed["Message-ID"] == "<42.7.email@bulletin.example>"
    plain = parsed.get_body(("plain",))
    rich = parsed.get_body(("html",))
    assert plain is not None and rich is not None
    assert same_lines(plain.get_content()) == same_lines(text)
    assert same_lines(rich.get_content()) == same_lines(html)


def test_an_ascii_message_stays_readable_on_the_wire() -> None:
    data = email_bytes(
        sender=sender_address("bulletin@example.com"),
        recipient=recipient_address("Ana Lima", "ana@example.com"),
        subject="Office closed Friday",
        message_id="<1@x>",
        text="Hello Ana,\n.\nBye",
        html="<p>Hello</p>",
    )
    assert b"Subject: Office closed Friday\r\n" in data
    assert b"To: Ana Lima <ana@example.com>\r\n" in data
    assert b"Content-Transfer-Encoding: 7bit\r\n\r\nHello Ana,\r\n.\r\nBye" in data


def test_a_non_ascii_name_and_domain_are_encoded_not_mangled() -> None:
    parsed = read(wire("Fête", "Zoë Ångström", "zoe@exämple.com", "Hi", "<p>Hi</p>"))
    (to,) = parsed["To"].addresses
    assert to.display_name == "Zoë Ångström" and to.domain == "xn--exmple-cua.com"
    assert parsed["Subject"] == "Fête"


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject", "Hi\r\nBcc: eve@evil.test"), ("name", "Eve\nBcc: eve@evil.test")],
)
def test_a_line_break_in_a_header_value_is_refused(field: str, value: str) -> None:
    parts = {"subject": "Hi", "name": "Eve"} | {field: value}
    with pytest.raises(ValueError, match="single line"):
        wire(parts["subject"], parts["name"], "eve@example.com", "x", "y")
