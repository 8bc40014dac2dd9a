"""Channel transports, looked up by the channel name stored on a delivery."""

from __future__ import annotations

from bulletin.channels.base import Transport
from bulletin.channels.email import EmailTransport
from bulletin.channels.inapp import InboxTransport
from bulletin.channels.slack import SlackTransport
from bulletin.channels.teams import TeamsTransport
from bulletin.channels.webhook import WebhookTransport

TRANSPORTS: dict[str, type[Transport]] = {
    transport.name: transport
    for transport in (
        EmailTransport,
        InboxTransport,
        SlackTransport,
        TeamsTransport,
        WebhookTransport,
    )
}


def transport_for(channel: str) -> type[Transport]:
    try:
        return TRANSPORTS[channel]
    except KeyError:
        raise LookupError(f"no transport for channel {channel!r}") from None


def deduplicating_channels() -> list[str]:
    return [name for name, transport in TRANSPORTS.items() if transport.deduplicates]


def channels_started_on_claim() -> list[str]:
    """Channels whose claim may count as the attempt's intent: a resend is harmless (the
    receiver de-duplicates, or the write commits with its outcome) and no rate limit can
    defer a claimed row."""
    return [
        name
        for name, transport in TRANSPORTS.items()
        if (transport.deduplicates or transport.transactional)
        and transport.paces is Transport.paces
    ]
