"""Returned messages into Bulletin: one at a time (``receive_bounce``) or from a mailbox
(``fetch_bounces``: a Maildir or an IMAP folder).

Each message is read (:func:`bulletin.channels.bounce_parse.parse`) and kept
(:func:`bulletin.dispatch.bounces.record`) before it leaves its mailbox: a run that stops in
between leaves the message where it was, and the next run records it again, which ``record``
takes as the same bounce (a ``duplicate``, nothing changes twice). Nothing bigger than
BULLETIN_BOUNCE_MAX_BYTES + 1 is ever read into memory: the rest is left unread and the message
is kept truncated, as unreadable.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import os
import ssl
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from django.db import InterfaceError, OperationalError

from bulletin.channels.bounce_parse import parse
from bulletin.conf import options, secret
from bulletin.dispatch import bounces

log = logging.getLogger(__name__)

IMAPS_PORT = 993  # RFC 8314 section 7.3

# What ``record`` answers, in the order the summary line gives them.
OUTCOMES = ("bounced", "soft", "complaint", "ignored", "unreadable", "unmatched", "duplicate")


def read_limited(stream: BinaryIO) -> bytes:
    """At most BULLETIN_BOUNCE_MAX_BYTES + 1 bytes: one more than allowed says "too big"."""
    wanted, chunks = options().bounce_max_bytes + 1, []
    while wanted > 0 and (chunk := stream.read(min(wanted, 1 << 20))):
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)


def take(raw: bytes, *, source: str, envelope_to: str = "") -> bounces.Recorded:
    """Read and record one message; DatabaseError when it could not be kept."""
    report = parse(raw, source=source, envelope_to=envelope_to)
    recorded = bounces.record(raw, report)
    extra = {
        "source": source,
        "kind": report.kind.value,
        "outcome": recorded.outcome,
        "bounce_id": recorded.bounce_id,
        "delivery_id": recorded.delivery_id,
        "bytes": len(raw),
    }
    log.info("returned message taken in", extra=extra)
    return recorded


@dataclass
class Tally:
    """What a run took in, for its one summary line."""

    outcomes: Counter[str] = field(default_factory=Counter)
    left: int = 0  # failed to record: still in the mailbox for the next run

    def line(self) -> str:
        kept = sum(self.outcomes.values())
        counts = ", ".join(f"{self.outcomes[name]} {name}" for name in OUTCOMES)
        return f"kept {kept}: {counts}; {self.left} left for the next run"


def _taken(tally: Tally, read: Callable[[], bytes], source: str, label: str) -> bool:
    """Read and record one message of a mailbox; False (and counted as left) when it could
    not be. A database that is down stops the run: every other message would fail the same
    way."""
    try:
        recorded = take(read(), source=source)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        log.warning("returned message left in its mailbox: %r", exc, extra={"item": label})
        tally.left += 1
        return False
    tally.outcomes[recorded.outcome] += 1
    return True


# --- Maildir (and Maildir++ folders, as Dovecot and Courier keep them).


def _maildir_entries(root: Path) -> Iterator[Path]:
    for sub in ("new", "cur"):
        folder = root / sub
        if not folder.is_dir():
            raise FileNotFoundError(f"{root} is not a Maildir (no {sub}/)")
        yield from sorted(p for p in folder.iterdir() if not p.is_dir() and p.name[0] != ".")


def _read_file(path: Path) -> bytes:
    with path.open("rb") as handle:
        return read_limited(handle)


def processed_folder(root: Path) -> Path:
    """``DIR/.Processed``: a Maildir++ sub-folder (its cur/new/tmp and the ``maildirfolder``
    marker), so a mail client opening the Maildir shows it as the folder "Processed"."""
    folder = root / ".Processed"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "maildirfolder").touch()
    return folder


def fetch_maildir(root: Path, *, delete: bool) -> Tally:
    tally, done = Tally(), None if delete else processed_folder(root)
    for path in _maildir_entries(root):
        if not _taken(tally, partial(_read_file, path), "maildir", path.name):
            continue
        # Gone already: another run took it at the same time (and recorded it once).
        with contextlib.suppress(FileNotFoundError):
            if done is None:
                path.unlink()
            else:  # in cur/, marked seen (Maildir's ":2,S" info)
                os.replace(path, done / "cur" / f"{path.name.partition(':')[0]}:2,S")
    return tally


# --- IMAP over TLS.


class ImapError(Exception):
    """The IMAP server or URL would not do: one line for the person running the command."""


@dataclass(frozen=True)
class ImapTarget:
    user: str
    host: str
    port: int
    folder: str

    @classmethod
    def from_url(cls, url: str) -> ImapTarget:
        """``imaps://user@host:993/INBOX``; the password never travels in the URL."""
        parts = urlsplit(url)
        if parts.scheme != "imaps" or not parts.hostname or not parts.username:
            raise ImapError("--imap must look like imaps://user@host:993/INBOX")
        if parts.password is not None:
            raise ImapError(
                "--imap must not carry a password: set BULLETIN_IMAP_PASSWORD or "
                "BULLETIN_IMAP_PASSWORD_FILE"
            )
        try:
            port = parts.port or IMAPS_PORT
        except ValueError:
            raise ImapError("--imap has a port that is not a number") from None
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return cls(unquote(parts.username), parts.hostname, port, folder)


def _quoted(name: str) -> str:
    """A mailbox name as an IMAP quoted string (RFC 3501 section 4.3); names beyond ASCII
    would need modified UTF-7 (section 5.1.3), so they are refused instead."""
    if not name.isascii() or any(c in name for c in "\r\n\0"):
        raise ImapError(f"the IMAP folder name {name!r} must be plain ASCII")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(answer: tuple[str, Sequence[Any]], doing: str) -> Sequence[Any]:
    status, data = answer
    if status != "OK":
        raise ImapError(f"the IMAP server refused to {doing}: {data!r}"[:300])
    return data


@dataclass
class ImapFetch:
    target: ImapTarget
    ca_file: str = ""
    processed: str = "Processed"
    delete: bool = False
    timeout: float = 60.0

    def run(self) -> Tally:
        password = secret("BULLETIN_IMAP_PASSWORD")
        if not password:
            raise ImapError("set BULLETIN_IMAP_PASSWORD or BULLETIN_IMAP_PASSWORD_FILE")
        context = ssl.create_default_context(cafile=self.ca_file or None)
        try:
            with imaplib.IMAP4_SSL(
                self.target.host, self.target.port, ssl_context=context, timeout=self.timeout
            ) as imap:
                _ok(imap.login(self.target.user, password), "log in")
                return self._drain(imap)
        except (OSError, imaplib.IMAP4.error) as exc:  # ssl.SSLError is an OSError
            raise ImapError(f"IMAP {self.target.host}:{self.target.port}: {exc}") from None

    def _drain(self, imap: imaplib.IMAP4) -> Tally:
        if not self.delete:
            self._ensure_folder(imap, self.processed)
        _ok(imap.select(_quoted(self.target.folder)), f"open {self.target.folder}")
        (found,) = _ok(imap.uid("SEARCH", "UNDELETED"), "search the folder")
        tally, move, done = Tally(), self._mover(imap), []
        for uid in (found or b"").split():
            number = uid.decode()
            if _taken(tally, partial(self._fetch, imap, number), "imap", f"uid {number}"):
                move(number)
                done.append(number)
        _expunge(imap, done)
        return tally

    def _fetch(self, imap: imaplib.IMAP4, uid: str) -> bytes:
        """The message's first BULLETIN_BOUNCE_MAX_BYTES + 1 octets (a partial FETCH, RFC 3501
        section 6.4.5: ``BODY.PEEK[]<0.n>``, which also leaves it unseen)."""
        wanted = options().bounce_max_bytes + 1
        data = _ok(imap.uid("FETCH", uid, f"(BODY.PEEK[]<0.{wanted}>)"), f"fetch uid {uid}")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1]
        raise ImapError(f"the IMAP server sent no message for uid {uid}")

    def _ensure_folder(self, imap: imaplib.IMAP4, name: str) -> None:
        listed = _ok(imap.list('""', _quoted(name)), f"list {name}")
        if not any(item for item in listed if item):
            _ok(imap.create(_quoted(name)), f"create the folder {name}")
            log.info("IMAP folder created", extra={"folder": name})

    def _mover(self, imap: imaplib.IMAP4) -> Callable[[str], None]:
        """MOVE (RFC 6851) when the server has it, else COPY, then flag it \\Deleted (the
        EXPUNGE at the end removes it); --delete flags it alone."""
        folder = _quoted(self.processed)

        def flag_deleted(uid: str) -> None:
            _ok(imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), f"delete uid {uid}")

        def move(uid: str) -> None:
            _ok(imap.uid("MOVE", uid, folder), f"move uid {uid}")

        def copy_and_delete(uid: str) -> None:
            _ok(imap.uid("COPY", uid, folder), f"copy uid {uid}")
            flag_deleted(uid)

        if self.delete:
            return flag_deleted
        # Asked again after login: servers tell more then (imaplib keeps the greeting's).
        (listed,) = _ok(imap.capability(), "list its capabilities")
        return move if b"MOVE" in bytes(listed).upper().split() else copy_and_delete


def _expunge(imap: imaplib.IMAP4, uids: list[str]) -> None:
    """Remove the messages this run flagged \\Deleted, and only those where the server can
    (UID EXPUNGE, RFC 4315's UIDPLUS): a plain EXPUNGE also removes whatever someone else
    flagged in a shared mailbox. A MOVE needs none; harmless then."""
    if not uids:
        return
    (listed,) = _ok(imap.capability(), "list its capabilities")
    if b"UIDPLUS" in bytes(listed).upper().split():
        _ok(imap.uid("EXPUNGE", ",".join(uids)), "expunge")
    else:
        _ok(imap.expunge(), "expunge")
