"""``bulletin receive_bounce`` (one message on standard input, as an MTA pipes it) and
``bulletin fetch_bounces`` (a Maildir; an IMAP folder on a real Dovecot), ending in
``bulletin.dispatch.bounces.record``."""

from __future__ import annotations

import imaplib
import io
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bulletin import conf
from bulletin.channels import verp
from bulletin.channels.email import message_id
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Bounce, Delivery, DeliveryState, Employee
from tests import factories
from tests.harness import ROOT, Installation, free_port
from tests.imap_server import running_dovecot
from tests.test_bounce_parse import SAMPLES
from tests.test_cli import one_line

BOUNCES = "bounces@example.com"
# Each sample's returned message is delivery <7.N…> to this address (tests/bounce_samples).
ADDRESSES = {
    101: "nobody@example.net",
    102: "slow@example.net",
    103: "gone@example.org",
    104: "former.employee@contoso.example.com",
    105: "no.such.person@example.net",
    106: "left.company@example.net",
    107: "ann.complainer@example.net",
    108: "ann.away@example.net",
    109: "full@example.net",
    110: "stuffed@example.jp",
    111: "mangled@example.net",
}
# sample → what record() made of it, once the sample names a real delivery
OUTCOMES = {
    "postfix_user_unknown.eml": "bounced",
    "postfix_delayed.eml": "soft",
    "exim_failed.eml": "bounced",
    "office365_ndr.eml": "bounced",
    "gmail_failure.eml": "bounced",
    "ses_bounce.eml": "bounced",  # no VERP key: matched by the returned Message-ID
    "arf_complaint.eml": "complaint",
    "out_of_office.eml": "ignored",
    "mailbox_full_422.eml": "soft",
    "mailbox_full_522_cr.eml": "soft",
    "mangled_dsn.eml": "unreadable",
    "forged_verp.eml": "unmatched",
}


@pytest.fixture
def bounce_address(settings: Any) -> None:
    settings.BULLETIN = replace(conf.load({}), bounce_address=BOUNCES)


@pytest.fixture
def sent(db: None, bounce_address: None) -> dict[int, Delivery]:
    """One sent email per sample, to the address that sample's report names."""
    for address in ADDRESSES.values():
        Employee.objects.create(email=address, name="Some One", timezone="Europe/London")
    factories.fired(body="Hello", title="Office closed Friday")
    Dispatcher().run_until_idle()
    by_address = {d.employee.email: d for d in Delivery.objects.select_related("employee")}
    assert {d.state for d in by_address.values()} == {DeliveryState.SENT}
    return {number: by_address[address] for number, address in ADDRESSES.items()}


def as_received(name: str, sent: dict[int, Delivery]) -> bytes:
    """The sample as it would come back for these deliveries: the placeholder VERP key made
    the real one, the placeholder Message-ID the one Bulletin wrote."""
    raw = (SAMPLES / name).read_bytes()
    raw = re.sub(
        rb"\+(\d+)-aaaaaaaaaaaa@",
        lambda found: f"+{verp.key_for(sent[int(found[1])].pk)}@".encode(),
        raw,
    )
    return re.sub(
        rb"<7\.(\d+)\.email@bulletin\.example\.com>",
        lambda found: _message_id(sent, int(found[1])).encode(),
        raw,
    )


def _message_id(sent: dict[int, Delivery], number: int) -> str:
    if number not in sent:
        return f"<7.{number}.email@bulletin.example.com>"  # the forged sample's: no such email
    return message_id(sent[number].idempotency_key)


def receive(raw: bytes, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """``bulletin receive_bounce`` in this process, ``raw`` on its standard input."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out = io.StringIO()
    call_command("receive_bounce", *args, stdout=out)
    return out.getvalue().strip()


# --- receive_bounce: the table of samples, as an MTA hands them over.


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_each_sample_piped_in_is_recorded_against_its_delivery(
    name: str, sent: dict[int, Delivery], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert receive(as_received(name, sent), monkeypatch) == OUTCOMES[name]
    states = dict(Delivery.objects.values_list("pk", "state"))
    bounced = {pk for pk, state in states.items() if state == DeliveryState.BOUNCED}
    assert bounced == ({sent[BOUNCES_FOR[name]].pk} if name in BOUNCES_FOR else set())


# The samples that bounce a delivery, and which.
BOUNCES_FOR = {
    "postfix_user_unknown.eml": 101,
    "exim_failed.eml": 103,
    "office365_ndr.eml": 104,
    "gmail_failure.eml": 105,
    "ses_bounce.eml": 106,
}


def test_a_bounce_keeps_the_reason_on_its_delivery_and_logs_one_event(
    sent: dict[int, Delivery], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="bulletin.interfaces"):
        receive(as_received("office365_ndr.eml", sent), monkeypatch)
    [event] = [r for r in caplog.records if r.name.startswith("bulletin.interfaces")]
    assert (event.outcome, event.delivery_id, event.source) == ("bounced", sent[104].pk, "pipe")
    delivery = Delivery.objects.get(pk=sent[104].pk)
    assert delivery.state == DeliveryState.BOUNCED
    assert "5.1.10" in delivery.last_error


def test_the_same_bounce_piped_twice_is_one_bounce(
    sent: dict[int, Delivery], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = as_received("postfix_user_unknown.eml", sent)
    assert receive(raw, monkeypatch) == "bounced"
    assert receive(raw, monkeypatch) == "duplicate"
    assert Bounce.objects.count() == 1


def test_the_envelope_recipient_postfix_passes_names_the_delivery(
    sent: dict[int, Delivery], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postfix's local(8) sets ORIGINAL_RECIPIENT; the headers here name no one."""
    raw = as_received("postfix_user_unknown.eml", sent)
    raw = re.sub(rb"(?m)^(Delivered-To|To): .*\n", b"", raw)
    raw = re.sub(rb"Return-Path: <bounces\+[^>]*>", b"Return-Path: <x@example.com>", raw)
    monkeypatch.setenv("ORIGINAL_RECIPIENT", verp.return_path(sent[101].pk))
    assert receive(raw, monkeypatch) == "bounced"
    assert Bounce.objects.get().delivery_id == sent[101].pk


def test_recipient_given_on_the_command_line_wins(
    sent: dict[int, Delivery], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = as_received("postfix_user_unknown.eml", sent)
    monkeypatch.setenv("ORIGINAL_RECIPIENT", "bounces+1-aaaaaaaaaaaa@example.com")
    forged = "bounces+101-bbbbbbbbbbbb@example.com"
    assert receive(raw, monkeypatch, "--recipient", forged) == "unmatched"
    assert Delivery.objects.get(pk=sent[101].pk).state == DeliveryState.SENT


def test_only_the_limit_and_one_byte_are_read_from_a_huge_stream(
    db: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BULLETIN = replace(conf.load({}), bounce_max_bytes=1000)
    stream = io.BytesIO(b"Subject: big\n\n" + b"x" * 5000)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stream))
    call_command("receive_bounce", stdout=io.StringIO())
    assert stream.tell() == 1001  # the rest was never read
    kept = Bounce.objects.get()
    assert (kept.outcome, len(kept.raw)) == ("unreadable", 1000)
    assert "BULLETIN_BOUNCE_MAX_BYTES" in kept.note


# --- receive_bounce's exit status, through the real command line.


def piped(site: Installation, raw: bytes, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        site.command("receive_bounce", *args),
        input=raw,
        env={**site.env, **env},
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )


def test_garbage_on_standard_input_is_kept_and_exits_0(installation: Installation) -> None:
    done = piped(installation, b"\x00\xff garbage \xfe" * 100)
    assert (done.returncode, done.stdout.strip()) == (0, b"unreadable")
    assert b"Traceback" not in done.stderr
    assert installation.sql("SELECT outcome FROM bulletin_bounce") == [("unreadable",)]


def test_an_empty_message_is_kept_and_exits_0(installation: Installation) -> None:
    done = piped(installation, b"")
    assert done.returncode == 0
    assert installation.sql("SELECT count(*) FROM bulletin_bounce") == [(1,)]


def test_a_message_over_ten_megabytes_is_kept_truncated_and_exits_0(
    installation: Installation,
) -> None:
    limit = conf.load({}).bounce_max_bytes
    huge = (SAMPLES / "postfix_user_unknown.eml").read_bytes() + b"x" * (limit + 4096)
    done = piped(installation, huge)
    assert (done.returncode, done.stdout.strip()) == (0, b"unreadable")
    [(size, note)] = installation.sql("SELECT length(raw), note FROM bulletin_bounce")
    assert size == limit and "BULLETIN_BOUNCE_MAX_BYTES" in note


def test_an_unreachable_database_exits_75_so_the_mta_retries(installation: Installation) -> None:
    closed = f"postgres://bulletin:pw@127.0.0.1:{free_port()}/bulletin"
    done = piped(
        installation, (SAMPLES / "postfix_user_unknown.eml").read_bytes(), DATABASE_URL=closed
    )
    assert done.returncode == 75
    assert "database unreachable" in one_line(done.stderr.decode())


# --- fetch_bounces --maildir


def maildir(root: Path, messages: dict[str, bytes], sub: str = "new") -> Path:
    for folder in ("new", "cur", "tmp"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name, raw in messages.items():
        (root / sub / name).write_bytes(raw)
    return root


def fetch(*args: str) -> str:
    out = io.StringIO()
    call_command("fetch_bounces", *args, stdout=out)
    return out.getvalue().strip()


def test_a_maildirs_messages_are_recorded_then_moved_to_processed(
    sent: dict[int, Delivery], tmp_path: Path
) -> None:
    box = maildir(tmp_path / "Maildir", {"1.a": as_received("postfix_user_unknown.eml", sent)})
    maildir(box, {"2.b:2,S": as_received("arf_complaint.eml", sent)}, sub="cur")
    maildir(box, {"3.c": as_received("out_of_office.eml", sent)})
    summary = fetch("--maildir", str(box))
    assert summary.startswith("kept 3: 1 bounced, 0 soft, 1 complaint, 1 ignored, 0 unreadable")
    assert summary.endswith("0 left for the next run")
    assert not list((box / "new").iterdir()) and not list((box / "cur").iterdir())
    done = sorted(p.name for p in (box / ".Processed" / "cur").iterdir())
    assert done == ["1.a:2,S", "2.b:2,S", "3.c:2,S"]
    assert (box / ".Processed" / "maildirfolder").exists()
    assert Delivery.objects.get(pk=sent[101].pk).state == DeliveryState.BOUNCED


def test_delete_removes_what_was_recorded(sent: dict[int, Delivery], tmp_path: Path) -> None:
    box = maildir(tmp_path / "Maildir", {"1.a": as_received("gmail_failure.eml", sent)})
    assert fetch("--maildir", str(box), "--delete").startswith("kept 1: 1 bounced")
    assert not list((box / "new").iterdir())
    assert not (box / ".Processed").exists()


def test_a_message_that_cannot_be_read_stays_for_the_next_run(
    sent: dict[int, Delivery], tmp_path: Path
) -> None:
    box = maildir(tmp_path / "Maildir", {"2.b": as_received("exim_failed.eml", sent)})
    (box / "new" / "1.a").symlink_to(tmp_path / "gone")  # listed, but cannot be opened
    with pytest.raises(CommandError, match="1 messages could not be recorded"):
        fetch("--maildir", str(box))
    assert [p.name for p in (box / "new").iterdir()] == ["1.a"]
    assert Bounce.objects.count() == 1


def test_a_message_recorded_but_not_moved_is_a_duplicate_next_time(
    sent: dict[int, Delivery], tmp_path: Path
) -> None:
    """As after a crash between recording and moving: the next run changes nothing twice."""
    raw = as_received("postfix_delayed.eml", sent)
    box = maildir(tmp_path / "Maildir", {"1.a": raw})
    fetch("--maildir", str(box))
    (box / "new" / "1.a").write_bytes(raw)
    assert "1 duplicate" in fetch("--maildir", str(box))
    assert Bounce.objects.count() == 1


def test_a_folder_that_is_not_a_maildir_is_one_error(db: None, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a Maildir"):
        fetch("--maildir", str(tmp_path))


def test_an_unreachable_database_leaves_every_message_in_place(
    installation: Installation, tmp_path: Path
) -> None:
    box = maildir(tmp_path / "Maildir", {"1.a": (SAMPLES / "exim_failed.eml").read_bytes()})
    closed = f"postgres://bulletin:pw@127.0.0.1:{free_port()}/bulletin"
    done = subprocess.run(
        installation.command("fetch_bounces", "--maildir", str(box)),
        env={**installation.env, "DATABASE_URL": closed},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "database" in one_line(done.stderr)
    assert [p.name for p in (box / "new").iterdir()] == ["1.a"]


# --- fetch_bounces --imap, against a real Dovecot.


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch) -> Any:
    with running_dovecot() as server:
        monkeypatch.setenv("BULLETIN_IMAP_PASSWORD", server.password)
        yield server


def imap_session(server: Any) -> imaplib.IMAP4_SSL:
    session = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=server.context())
    session.login(server.user, server.password)
    return session


def folder_count(server: Any, folder: str) -> int:
    with imap_session(server) as session:
        status, data = session.status(folder, "(MESSAGES)")
        if status != "OK":
            return -1
        return int(re.search(rb"MESSAGES (\d+)", data[0])[1])


def test_an_imap_folders_messages_are_recorded_then_moved(
    sent: dict[int, Delivery], dovecot: Any
) -> None:
    names = ["postfix_user_unknown.eml", "ses_bounce.eml", "mailbox_full_522_cr.eml"]
    with imap_session(dovecot) as session:
        for name in names:
            raw = as_received(name, sent).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            assert session.append("INBOX", None, None, raw.replace(b"\n", b"\r\n"))[0] == "OK"
    summary = fetch("--imap", dovecot.url, "--imap-ca-file", str(dovecot.ca_file))
    assert summary.startswith("kept 3: 2 bounced, 1 soft"), summary
    assert folder_count(dovecot, "INBOX") == 0
    assert folder_count(dovecot, "Processed") == 3
    assert Delivery.objects.get(pk=sent[106].pk).state == DeliveryState.BOUNCED
    assert set(Bounce.objects.values_list("source", flat=True)) == {"imap"}


def test_a_server_without_move_gets_copy_then_delete(
    sent: dict[int, Delivery], monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 6851's MOVE is recent; an IMAP4rev1 server without it gets COPY, \\Deleted and
    EXPUNGE, with the same result."""
    with running_dovecot(capability="IMAP4rev1 LITERAL+ IDLE UIDPLUS") as server:
        monkeypatch.setenv("BULLETIN_IMAP_PASSWORD", server.password)
        with imap_session(server) as session:
            assert b"MOVE" not in session.capability()[1][0]
            session.append("INBOX", None, None, as_received("postfix_delayed.eml", sent))
        assert fetch("--imap", server.url, "--imap-ca-file", str(server.ca_file)).startswith(
            "kept 1: 0 bounced, 1 soft"
        )
        assert (folder_count(server, "INBOX"), folder_count(server, "Processed")) == (0, 1)


def test_imap_delete_removes_what_was_recorded(sent: dict[int, Delivery], dovecot: Any) -> None:
    with imap_session(dovecot) as session:
        session.append("INBOX", None, None, as_received("exim_failed.eml", sent))
    fetch("--imap", dovecot.url, "--imap-ca-file", str(dovecot.ca_file), "--delete")
    assert folder_count(dovecot, "INBOX") == 0
    assert folder_count(dovecot, "Processed") == -1  # never made
    assert Bounce.objects.count() == 1


def test_imap_delete_leaves_what_someone_else_flagged_deleted_in_a_shared_mailbox(
    sent: dict[int, Delivery], dovecot: Any
) -> None:
    with imap_session(dovecot) as session:
        session.append("INBOX", r"(\Deleted)", None, b"Subject: someone else's\r\n\r\nkeep me")
        session.append("INBOX", None, None, as_received("exim_failed.eml", sent))
    fetch("--imap", dovecot.url, "--imap-ca-file", str(dovecot.ca_file), "--delete")
    assert folder_count(dovecot, "INBOX") == 1  # UID EXPUNGE took only the recorded one
    assert Bounce.objects.count() == 1


def test_an_imap_server_whose_certificate_is_not_trusted_is_refused(db: None, dovecot: Any) -> None:
    with pytest.raises(CommandError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch("--imap", dovecot.url)
    assert Bounce.objects.count() == 0


def test_a_wrong_imap_password_is_one_error_without_the_password(
    db: None, dovecot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BULLETIN_IMAP_PASSWORD", "wrong-password-x9")
    with pytest.raises(CommandError) as refused:
        fetch("--imap", dovecot.url, "--imap-ca-file", str(dovecot.ca_file))
    assert "wrong-password-x9" not in str(refused.value)


def test_the_imap_password_can_come_from_a_file(
    sent: dict[int, Delivery], dovecot: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "password").write_text(dovecot.password + "\n")
    monkeypatch.delenv("BULLETIN_IMAP_PASSWORD")
    monkeypatch.setenv("BULLETIN_IMAP_PASSWORD_FILE", str(tmp_path / "password"))
    assert fetch("--imap", dovecot.url, "--imap-ca-file", str(dovecot.ca_file)).startswith("kept 0")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("imaps://bounces:secret-pw@127.0.0.1/INBOX", "must not carry a password"),
        ("imap://bounces@127.0.0.1/INBOX", "imaps://"),
        ("imaps://127.0.0.1/INBOX", "imaps://"),
    ],
)
def test_an_imap_url_that_will_not_do_is_one_line(
    installation: Installation, url: str, error: str
) -> None:
    done = installation.run("fetch_bounces", "--imap", url, check=False)
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert error in line and "secret-pw" not in line


def test_fetch_bounces_needs_one_of_maildir_or_imap(installation: Installation) -> None:
    done = installation.run("fetch_bounces", check=False)
    assert done.returncode == 2 and "--maildir" in one_line(done.stderr)


def test_receive_bounce_is_listed_by_bulletin_help(installation: Installation) -> None:
    listed = installation.run("help").stdout
    assert "receive_bounce" in listed and "fetch_bounces" in listed
