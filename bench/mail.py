"""N emails to a loopback SMTP sink: Bulletin against plain smtplib and django-post-office.

All three send the same N messages (same recipients, subject, text and HTML parts) to the same
aiosmtpd sink, which runs in its own process and counts what arrives. Bulletin's time runs
from the fan-out of a due occurrence to the last delivery recorded as sent: it renders and
personalises every message, writes intents and outcomes. Plain smtplib gets the rendered
bodies for free and only builds and sends, on one reused connection: the ceiling. post_office
is used as documented for bulk mail: ``send_many`` queues, ``send_queued`` sends, until done.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import subprocess
import sys
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from bench.common import (
    RATIO_AT_LEAST,
    ROOT,
    Result,
    median,
    paired_ratio,
    report,
    seed_employees,
    setup_django,
    timed,
)
from tests.harness import free_port

SUBJECT = "Quarterly update"
BODY = "Hello {{ first_name }},\n\nThe **quarterly update** is out: [read it](https://example.com)."


class Sink:
    """The sink process, driven over its stdin/stdout."""

    def __init__(self, port: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", str(port)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._ask(None)

    def _ask(self, command: str | None) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def stats(self) -> dict[str, Any]:
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def rendered(item: Any, people: list[tuple[int, str, str]]) -> list[tuple[str, str, str, str]]:
    """(address, name, text, html) per person: the very parts Bulletin's emails carry (the
    branded layout, the footer with the person's own signed links), handed to the baselines
    ready-made, so all three send the same bytes' worth."""
    from bulletin.channels.base import Footer, Message, Recipient
    from bulletin.channels.email_layout import html_part, text_part
    from bulletin.channels.render import render_html, render_text
    from bulletin.dispatch import signed_links
    from bulletin.dispatch.compose import audience_in_words
    from bulletin.dispatch.unsubscribe import unsubscribe_url

    out = []
    for pk, email, name in people:
        recipient = Recipient(email=email, name=name, timezone="UTC")
        footer = Footer(
            reason=audience_in_words(item),
            open_url=signed_links.sign_in_url(pk, email, 1),
            preferences_url=signed_links.preferences_url(pk),
        )
        message = Message(
            idempotency_key=f"bench-{pk}",
            title=SUBJECT,
            text=render_text(BODY, recipient),
            html=render_html(BODY, recipient),
            recipient=recipient,
            footer=footer,
            unsubscribe_url=unsubscribe_url(pk, item.pk),
        )
        out.append((email, name, text_part(message), html_part(message)))
    return out


def with_smtplib(messages: list[tuple[str, str, str, str]], port: int, sender: str) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for email, name, text, html in messages:
            message = EmailMessage()
            message["Subject"] = SUBJECT
            message["From"] = sender
            message["To"] = formataddr((name, email))
            message["Message-ID"] = make_msgid(domain="bench.example")
            message.set_content(text)
            message.add_alternative(html, subtype="html")
            smtp.send_message(message)


def with_post_office(messages: list[tuple[str, str, str, str]], sender: str) -> None:
    from post_office import mail

    mail.send_many(
        [
            {
                "sender": sender,
                "recipients": [formataddr((name, email))],
                "subject": SUBJECT,
                "message": text,
                "html_message": html,
            }
            for email, name, text, html in messages
        ]
    )
    while sum(mail.send_queued()):
        pass


def with_bulletin(item: Any) -> None:
    from django.utils import timezone

    from bulletin.conf import options
    from bulletin.dispatch.fanout import fan_out
    from bulletin.dispatch.sender import drain
    from bulletin.domain.models import Occurrence, OccurrenceState

    now = timezone.now()
    occurrence = Occurrence.objects.create(
        announcement=item,
        version=item.versions.first(),
        zone="Europe/London",
        fire_at=now,
        state=OccurrenceState.PLANNED,
    )
    fan_out(occurrence, now)
    drain(options().dispatch_lanes)  # as `bulletin run` and `bulletin dispatch` do


def verify(name: str, sink: Sink, expected: int) -> str:
    got = sink.stats()
    sink.reset()
    wanted = {"messages": expected, "distinct": expected, "recipients": expected}
    return "" if got == wanted else f"{name}: the sink got {got}, expected {wanted}"


def bulletin_check(rounds: int, expected: int) -> str:
    from bulletin.domain.models import Delivery

    sent = Delivery.objects.filter(state="sent").count()
    return "" if sent == rounds * expected else f"bulletin: {sent} deliveries sent"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    os.environ.update(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port))
    setup_django()
    from django.conf import settings
    from django.utils import timezone

    from bulletin.domain.models import Employee
    from tests.factories import announcement

    sink = Sink(port)
    seed_employees(args.emails)
    item = announcement(now=timezone.now(), cron="0 9 * * 1", title=SUBJECT, body=BODY)
    people = Employee.objects.order_by("pk").values_list("pk", "email", "name")
    messages = rendered(item, list(people))
    sender = settings.DEFAULT_FROM_EMAIL
    contenders: dict[str, Callable[[], None]] = {
        "bulletin": lambda: with_bulletin(item),
        "smtplib": lambda: with_smtplib(messages, port, sender),
        "post_office": lambda: with_post_office(messages, sender),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    problems = []
    try:
        for round_number in range(args.rounds):
            names = list(contenders)[round_number % 3 :] + list(contenders)[: round_number % 3]
            for name in names:
                times[name].append(timed(contenders[name]))
                problems.append(verify(name, sink, args.emails))
    finally:
        sink.stop()
    problems.append(bulletin_check(args.rounds, args.emails))
    _report(args, times, "; ".join(filter(None, problems)))


def _report(args: argparse.Namespace, times: dict[str, list[float]], wrong: str) -> None:
    rate = {name: args.emails / median(spent) for name, spent in times.items()}
    check = wrong or f"{args.emails} distinct messages arrived once each, every run"
    common = {
        "value": rate["bulletin"],
        "unit": "emails/s",
        "compare": RATIO_AT_LEAST,
        "measures": "fan-out, render, intent, SMTP send, outcome: a due occurrence to all sent",
        "check": check,
        "correct": not wrong,
        "details": {"seconds": times},
    }
    report(
        Result(
            name=f"{args.emails} emails via SMTP vs smtplib",
            baseline=rate["smtplib"],
            round_ratio=paired_ratio(times["bulletin"], times["smtplib"]),
            target=0.8,
            baseline_is="plain smtplib, one reused connection, bodies pre-rendered",
            **common,
        )
    )
    report(
        Result(
            name=f"{args.emails} emails via SMTP vs post_office",
            baseline=rate["post_office"],
            round_ratio=paired_ratio(times["bulletin"], times["post_office"]),
            target=2.0,
            baseline_is="django-post-office 3.12: send_many, then send_queued until done",
            **common,
        )
    )


if __name__ == "__main__":
    main()
