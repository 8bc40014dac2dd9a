"""What every channel transport is: a small class that sends one rendered message.

A transport raises one of three errors and nothing else, so dispatch can decide the delivery's
fate without knowing the protocol: ``TransientError`` (not delivered, try again later),
``PermanentError`` (will never work: stop), ``AmbiguousError`` (it may have been delivered:
resend only if the receiver de-duplicates by the idempotency key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import ClassVar


class TransportError(Exception):
    """Base of the three outcomes a transport may report instead of success."""


class TransientError(TransportError):
    """Definitely not delivered; worth another try after a backoff.

    ``retry_after`` (seconds) is the receiver's own word on when to come back (HTTP 429's
    Retry-After); ``pace_key`` names what it throttled, so every worker holds back, not just
    this delivery.
    """

    def __init__(
        self, detail: str, *, retry_after: float | None = None, pace_key: str | None = None
    ) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.pace_key = pace_key


class PermanentError(TransportError):
    """Definitely not delivered, and retrying cannot help (bad address, refused, unauthorised)."""


class AmbiguousError(TransportError):
    """The request may or may not have reached the receiver (e.g. connection lost after sending)."""


@dataclass(frozen=True)
class Recipient:
    """A person."""

    email: str
    name: str
    timezone: str
    slack_user_id: str = ""  # typed in by hand: used as given
    # What Slack's look-ups found, remembered (see SlackTransport): the member id and the email
    # it was found for, the DM channel and the member id it was opened with.
    slack_found_id: str = ""
    slack_found_for: str = ""
    slack_dm_channel: str = ""
    slack_dm_user: str = ""
    # Their own language tag (BCP 47; "": the organisation's default). Last: the claim reads
    # people positionally (ledger sql.PERSON).
    language: str = ""

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else self.name


@dataclass(frozen=True)
class Destination:
    """A place: a Slack channel id, a Teams workflow URL or a webhook URL, with its secrets."""

    name: str
    target: str
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Footer:
    """What an email's footer tells its person: why they got it, and their own signed links
    (none needs a password). An empty link is left out."""

    reason: str  # the audience in words: "You are in Sales." / "Sent to everyone at Acme."
    open_url: str = ""  # "Open in Bulletin": signs them in, to this announcement
    preferences_url: str = ""  # "Manage preferences"
    acknowledge_url: str = ""  # only when the announcement asks for an acknowledgement


@dataclass(frozen=True)
class Message:
    """One delivery's content, rendered for its recipient; the key travels to the provider.

    ``body`` is the announcement's Markdown as written (Slack and Teams render it themselves,
    filling in the personal fields as literal text); ``text`` is it as readable prose and
    ``html`` as sanitised HTML, both personalised (the email's two parts). ``web_url`` is the
    announcement's page, where a message cut to fit a channel links to the rest. A message
    goes to a person, a place, or a person through a place.
    """

    idempotency_key: str
    title: str
    text: str
    html: str
    recipient: Recipient | None = None
    place: Destination | None = None
    announcement_id: int = 0
    fire_at: datetime | None = None
    requires_ack: bool = False
    delivery_id: int = 0
    body: str = ""
    web_url: str = ""
    # Email: a mandatory announcement carries no unsubscribe; an optional one to a person
    # carries its signed one-click link (absolute, under BULLETIN_SITE_URL).
    mandatory: bool = False
    unsubscribe_url: str = ""
    # Email: the From chosen for the announcement (one of BULLETIN_SENDERS; "": the default
    # sender) and what its footer says.
    sender: str = ""
    footer: Footer | None = None
    # The language the title and body are in, after fallback (BCP 47; "": the default). The
    # words around them (footer, buttons, dates) follow it.
    language: str = ""

    @property
    def person(self) -> Recipient:
        if self.recipient is None:
            raise PermanentError("this channel needs a person as the recipient")
        return self.recipient

    @property
    def destination(self) -> Destination:
        if self.place is None:
            raise PermanentError("this channel needs a place (a channel or an endpoint)")
        return self.place


@dataclass(frozen=True)
class Ended:
    """A send that has ended: its message, and what went wrong (None: it was delivered)."""

    message: Message
    error: Exception | None = None


class Sends:
    """The sends a transport has under way, driven by one dispatcher from one thread.

    ``ready`` says how many more may begin now, ``begin`` starts one, ``ended`` waits until at
    least one has ended and reports each exactly once. The dispatcher writes a delivery's
    intent before ``begin`` and its outcome after ``ended``: a send in doubt is always one
    that had begun.
    """

    def ready(self, wanted: int) -> int:
        """How many sends may begin now (``wanted``: how many messages are waiting); at least
        one when none is under way (a send that cannot even connect is still tried, so its
        failure is recorded)."""
        raise NotImplementedError

    def begin(self, message: Message) -> None:
        """Start sending; raises a TransportError if it cannot even start."""
        raise NotImplementedError

    def ended(self) -> list[Ended]:
        raise NotImplementedError

    def close(self) -> None:
        """Drop any connection of its own; never raises."""


class OneAtATime(Sends):
    """Every transport's default: one message at a time through ``Transport.send``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._held: Message | None = None

    def ready(self, wanted: int) -> int:
        return 0 if self._held else 1

    def begin(self, message: Message) -> None:
        self._held = message

    def ended(self) -> list[Ended]:
        message, self._held = self._held, None
        if message is None:
            return []
        try:
            self._transport.open()  # idempotent: connects on the drain's first send only
            self._transport.send(message)
        except Exception as exc:  # the dispatcher decides what each error means
            return [Ended(message, exc)]
        return [Ended(message)]


class Transport:
    """One channel. Opened once per drain (a dispatcher's run of batches) so connections are
    reused, then closed."""

    name: ClassVar[str]
    # True when the receiver drops a second message carrying the same idempotency key, which
    # makes a resend after an interrupted send safe.
    deduplicates: ClassVar[bool] = False
    # True when send() writes to Bulletin's own database (the inbox): dispatch then runs send
    # and the outcome in one transaction, so the side effect and its record cannot part.
    transactional: ClassVar[bool] = False
    # True when send() reads the message's ``text`` and ``html`` (email, the inbox, webhooks);
    # the others lay out ``body`` themselves, and dispatch does not render what they ignore.
    reads_parts: ClassVar[bool] = True

    def paces(self, message: Message) -> list[tuple[str, float]]:
        """(key, seconds between sends) pairs this message must respect; none by default."""
        return []

    def open(self) -> None:
        """Set up a connection for the drain, once: dispatch calls it before every send, so
        it must do nothing when already open. Failures surface as TransientError."""

    def close(self) -> None:
        """Release the drain's connection; never raises."""

    def send(self, message: Message) -> None:
        raise NotImplementedError

    def sends(self) -> Sends:
        """How the dispatcher sends a batch's messages: one at a time unless the transport
        can keep several under way (email over SMTP: a connection each)."""
        return OneAtATime(self)

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
