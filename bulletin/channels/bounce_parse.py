"""Reading a returned message: what it says about which delivery, as a BounceReport.

In this order, because each is more trustworthy than the next:

1. The VERP key (bulletin.channels.verp) in the address the bounce was delivered to (the MTA's
   envelope recipient, else the ``X-Original-To``/``Delivered-To`` the delivering MTA wrote):
   which delivery, signed.
2. A delivery status notification (RFC 3464: ``multipart/report; report-type=delivery-status``)
   and its per-recipient fields: ``Action``, ``Final-Recipient``, ``Status`` (RFC 3463),
   ``Diagnostic-Code``; and the returned message's ``Message-ID``, from its
   ``message/rfc822`` or ``text/rfc822-headers`` part (RFC 3462/6522).
3. A complaint (ARF, RFC 5965: ``report-type=feedback-report``).
4. flufl.bounce's detectors, for the many bounces in no standard shape (Exim's "Mail delivery
   failed", old Exchange, qmail...).
5. An automatic reply that is not a delivery report (RFC 3834 ``Auto-Submitted``, the older
   ``X-Autoreply``/``Precedence: auto_reply``, an "Out of office" subject): ignored.

Reports and complaints are recognised before automatic replies on purpose: MTAs mark their
own bounces ``Auto-Submitted: auto-replied`` too (Postfix's DSNs and Exim's bounces do, as
RFC 3834 section 5 asks), so that header alone never makes a message ignorable.

``parse`` never raises: whatever it cannot understand is UNREADABLE with a note, and the caller
keeps the raw message for HR to look at.
"""

from __future__ import annotations

import email
import logging
import re
from dataclasses import replace
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr
from typing import Any

from flufl.bounce import all_failures

from bulletin.channels import verp
from bulletin.channels.bounce_report import BounceKind, BounceReport
from bulletin.conf import options

log = logging.getLogger(__name__)
# flufl.bounce logs an INFO line per detector it tries: seventeen a message.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

# RFC 3463's enhanced status code: class.subject.detail.
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b[45]\d\d\b")
_MESSAGE_ID_LINE = re.compile(r"^message-id:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|autoreply"
    r"|vacation|away from (the )?office|abwesenheit|absence)",
    re.IGNORECASE,
)
# Who writes bounces (RFC 5321 section 4.5.1's postmaster, and the MTAs' own names), and how
# their subjects read: such a message is never taken for an automatic reply.
_MAIL_SYSTEMS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
_REPORT_SUBJECT = re.compile(
    r"undeliver|delivery (status|failure|has failed)|returned mail|mail delivery failed"
    r"|failure notice|delivery notification",
    re.IGNORECASE,
)
_DIAGNOSTIC_LONGEST = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# RFC 3464 section 2.3.3: what each Action says happened to the message.
_DELIVERED_ACTIONS = {"delivered", "relayed", "expanded"}
_DELIVERY_STATUS = {"message/delivery-status", "message/global-delivery-status"}
_RETURNED_HEADERS = {"text/rfc822-headers", "text/global-headers"}
_RETURNED_MESSAGE = {"message/rfc822", "message/global"}


def parse(raw: bytes, *, source: str, envelope_to: str = "") -> BounceReport:
    """What ``raw`` says; never raises (an exception in reading is an UNREADABLE report)."""
    try:
        return _clean(_read(raw, source, envelope_to))
    except Exception as exc:  # a bounce must never crash its reader
        log.warning("bounce could not be read: %r", exc)
        return BounceReport(BounceKind.UNREADABLE, source, note=_short(f"reading failed: {exc!r}"))


def _read(raw: bytes, source: str, envelope_to: str) -> BounceReport:
    limit = options().bounce_max_bytes
    if len(raw) > limit:
        note = f"larger than BULLETIN_BOUNCE_MAX_BYTES ({limit} bytes): kept truncated, not read"
        return BounceReport(BounceKind.UNREADABLE, source, note=note)
    message = email.message_from_bytes(raw, policy=policy.default)
    delivery_id, refused = _keyed(message, envelope_to)
    report = (
        _delivery_status(message, source)
        or _complaint(message, source)
        or _non_standard(raw, message, source)
        or _automatic_reply(message, source)
        or BounceReport(
            BounceKind.UNREADABLE,
            source,
            note="no delivery report, complaint, known bounce or automatic reply",
        )
    )
    return _with_key(report, delivery_id, refused)


def _clean(report: BounceReport) -> BounceReport:
    """No NUL and no other control character in any text a report carries: a bounce's bytes
    are anyone's, and PostgreSQL refuses a NUL in text outright."""
    texts: dict[str, Any] = {
        name: _CONTROL.sub("", value).strip()
        for name, value in vars(report).items()
        if isinstance(value, str) and _CONTROL.search(value)
    }
    return replace(report, **texts) if texts else report


def _with_key(report: BounceReport, delivery_id: int | None, refused: str) -> BounceReport:
    return replace(report, delivery_id=delivery_id, key_refused=refused)


# --- Headers, read so that a malformed one is text rather than an exception.


def header(message: Message, name: str) -> str:
    """The first ``name`` header as one line of text; "" when absent or beyond reading."""
    values = headers(message, name)
    return values[0] if values else ""


def headers(message: Message, name: str) -> list[str]:
    """Every ``name`` header, top first, unfolded and with RFC 2047 words decoded when they
    decode; the raw text otherwise (policy.default raises on some malformed headers)."""
    wanted = name.lower()
    return [_text(value) for key, value in message.raw_items() if key.lower() == wanted]


def _text(value: object) -> str:
    text = " ".join(str(value).split())
    try:
        return " ".join(str(make_header(decode_header(text))).split())
    except Exception:  # undecodable words stay as written
        return text


def _short(text: str) -> str:
    return " ".join(text.split())[:_DIAGNOSTIC_LONGEST]


def _address(value: str) -> str:
    """``rfc822; <Ann@Example.com>`` → ``ann@example.com``."""
    kind, _, address = value.rpartition(";")
    del kind
    return address.strip().strip("<>").strip().lower()


def _status(*texts: str) -> str:
    for text in texts:
        if matched := _STATUS.search(text):
            return matched.group(0)
    return ""


# --- 1. The VERP key.


def _keyed(message: Message, envelope_to: str) -> tuple[int | None, str]:
    """The delivery the first keyed address names, or why its key was refused.

    The MTA's envelope recipient when the caller has it; else the headers the delivering MTA
    prepends (topmost first). A complaint goes to the feedback loop's address, not the return
    path, so its report's ``Original-Mail-From`` and the returned copy's ``Return-Path`` are
    read last. Any key found, wherever, must carry Bulletin's signature."""
    delivered = [envelope_to] if envelope_to else []
    delivered = delivered or [
        *headers(message, "X-Original-To"),
        *headers(message, "Delivered-To"),
        *headers(message, "Envelope-To"),  # Exim's envelope_to_add
    ]
    for address in [*delivered, *_returned_senders(message)]:
        try:
            return verp.delivery_of(address), ""
        except verp.NoKey:
            continue
        except verp.KeyRefused as refused:
            return None, str(refused)
    return None, ""


def _returned_senders(message: Message) -> list[str]:
    found = [
        header(block, "Original-Mail-From")
        for part in _parts(message, {"message/feedback-report"})
        for block in _status_blocks(part)[:1]
    ]
    for part in _parts(message, _RETURNED_MESSAGE):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            found.append(header(inner[0], "Return-Path"))
    return [address for address in found if address]


# --- 2. RFC 3464 delivery status notifications.


def _parts(message: Message, types: set[str]) -> list[Message]:
    return [part for part in message.walk() if part.get_content_type() in types]


def _status_blocks(part: Message) -> list[Message]:
    """The delivery-status part's field blocks: per-message first, then one per recipient.
    The email package splits them itself; a mangled part is split here by blank lines."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    if not text and isinstance(raw := part.get_payload(decode=True), bytes):
        text = raw.decode("utf-8", "replace")
    blocks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [email.message_from_string(block, policy=policy.default) for block in blocks]


def _returned_message_id(message: Message) -> str:
    """The Message-ID of the message that came back, from its returned copy or headers."""
    for part in _parts(message, _RETURNED_MESSAGE):
        inner = part.get_payload()
        returned = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(returned, Message) and (found := header(returned, "Message-ID")):
            return found
    for part in _parts(message, _RETURNED_HEADERS):
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if matched := _MESSAGE_ID_LINE.search(text.replace("\r\n", "\n")):
            return matched.group(1)
    return ""


def _worst(recipients: list[Message]) -> Message | None:
    """Bulletin sends one recipient a message; should a report list several, the one that
    failed speaks first, then one delayed."""
    by_action = {header(block, "Action").lower(): block for block in reversed(recipients)}
    for action in ("failed", "delayed"):
        if action in by_action:
            return by_action[action]
    return recipients[0] if recipients else None


def _delivery_status(message: Message, source: str) -> BounceReport | None:
    parts = _parts(message, _DELIVERY_STATUS)
    if not parts:
        return None
    blocks = _status_blocks(parts[0])
    recipients = [block for block in blocks if header(block, "Action")]
    block = _worst(recipients)
    if block is None:
        return BounceReport(
            BounceKind.UNREADABLE, source, note="a delivery report without a recipient's Action"
        )
    action, diagnostic = header(block, "Action").lower(), header(block, "Diagnostic-Code")
    status = _status(header(block, "Status"), diagnostic)
    recipient = _address(header(block, "Final-Recipient") or header(block, "Original-Recipient"))
    return BounceReport(
        _dsn_kind(action, status),
        source,
        recipient=recipient,
        status=status,
        diagnostic=_short(diagnostic.partition(";")[2] or diagnostic),
        message_id=_returned_message_id(message),
        note=f"delivery status notification: {action or 'no action'}",
    )


def _dsn_kind(action: str, status: str) -> BounceKind:
    if action in _DELIVERED_ACTIONS:
        return BounceKind.AUTO_REPLY  # a positive report: nothing went wrong, nothing to do
    # RFC 3463 section 3.3: X.2.2 "mailbox full" "should be used as a persistent transient
    # failure", whatever its class: the person can make room, the address is not dead.
    if action == "delayed" or status.startswith("4.") or status.endswith(".2.2"):
        return BounceKind.SOFT
    return BounceKind.HARD  # failed: permanent unless its status says otherwise


# --- 3. ARF complaints (RFC 5965).


def _complaint(message: Message, source: str) -> BounceReport | None:
    parts = _parts(message, {"message/feedback-report"})
    if not parts:
        return None
    fields = _status_blocks(parts[0])
    report = fields[0] if fields else Message()
    feedback = header(report, "Feedback-Type").lower() or "abuse"
    recipient = _address(header(report, "Original-Rcpt-To")) or _returned_to(message)
    kind = BounceKind.AUTO_REPLY if feedback == "not-spam" else BounceKind.COMPLAINT
    return BounceReport(
        kind,
        source,
        recipient=recipient,
        diagnostic=_short(f"Feedback-Type: {feedback}; User-Agent: {header(report, 'User-Agent')}"),
        message_id=_returned_message_id(message),
        note="complaint (ARF feedback report)",
    )


def _returned_to(message: Message) -> str:
    """The To of the returned message (complaints often redact it: then "")."""
    for part in _parts(message, _RETURNED_MESSAGE):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return _address(header(inner[0], "To").rpartition("<")[2])
    for part in _parts(message, _RETURNED_HEADERS):
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        returned = email.message_from_string(text, policy=policy.default)
        return _address(header(returned, "To").rpartition("<")[2])
    return ""


# --- 4. Bounces in no standard shape: flufl.bounce.


def _non_standard(raw: bytes, message: Message, source: str) -> BounceReport | None:
    # flufl.bounce's detectors were written against the email package's compat32 messages.
    legacy = email.message_from_bytes(raw)
    if legacy["From"] is None:  # its Yale detector fails on a message without one
        legacy["From"] = "<>"
    try:
        temporary, permanent = all_failures(legacy)
    except Exception as exc:  # a detector tripping is one more unreadable
        log.info("flufl.bounce failed on a message: %r", exc)
        return None
    failed, kind = (permanent, BounceKind.HARD) if permanent else (temporary, BounceKind.SOFT)
    if not failed:
        return None
    recipient = sorted(failed)[0].decode("utf-8", "replace").strip("<>").lower()
    text = _body_text(legacy)
    line = _diagnostic_line(text, recipient)
    return BounceReport(
        kind,
        source,
        recipient=recipient,
        status=_status(line) or _status(text),
        diagnostic=_short(line),
        message_id=_returned_message_id(message) or _message_id_in(text),
        note="non-standard bounce (flufl.bounce)",
    )


def _body_text(message: Message) -> str:
    """The bounce's own words: its first text/plain part, decoded as well as it goes."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    return payload.decode(charset, "replace")
                except LookupError:
                    return payload.decode("utf-8", "replace")
    return ""


def _diagnostic_line(text: str, recipient: str) -> str:
    """The line that says why: the first with an SMTP reply code after the recipient is
    named, else the first with one at all."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = next((n for n, line in enumerate(lines) if recipient in line.lower()), 0)
    for line in lines[named:] + lines[:named]:
        if _SMTP_REPLY.search(line) or _STATUS.search(line):
            return line
    return ""


def _message_id_in(text: str) -> str:
    """A Message-ID in the copy of the message a non-standard bounce quotes in its text."""
    matched = _MESSAGE_ID_LINE.search(text.replace("\r\n", "\n"))
    return matched.group(1) if matched else ""


# --- 5. Automatic replies that are not delivery reports (RFC 3834).


def _looks_like_a_report(message: Message) -> bool:
    """A report none of the above could read (a broken MIME boundary, a cut-off message) must
    not pass for an out-of-office reply: it carries ``Auto-Submitted`` just the same."""
    sender = parseaddr(header(message, "From"))[1].lower().partition("@")[0]
    return (
        message.get_content_type() == "multipart/report"
        or sender in _MAIL_SYSTEMS
        or bool(header(message, "X-Failed-Recipients"))
        or bool(_REPORT_SUBJECT.search(header(message, "Subject")))
    )


def _automatic_reply(message: Message, source: str) -> BounceReport | None:
    if _looks_like_a_report(message):
        return BounceReport(
            BounceKind.UNREADABLE, source, note="looks like a delivery report, but unreadable"
        )
    auto_submitted = header(message, "Auto-Submitted").lower()
    precedence = header(message, "Precedence").lower()
    marked = (
        (auto_submitted and not auto_submitted.startswith("no"))
        or header(message, "X-Autoreply")
        or header(message, "X-Autorespond")
        or precedence == "auto_reply"
        or _AUTO_SUBJECT.match(header(message, "Subject"))
    )
    if not marked:
        return None
    return BounceReport(
        BounceKind.AUTO_REPLY,
        source,
        recipient=parseaddr(header(message, "From"))[1].lower(),
        note="automatic reply (not a delivery report): ignored",
    )
