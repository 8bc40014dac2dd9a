"""Recording bounces and complaints: the one writer of Bounce rows, suppressions and the
ledger move ``sent`` → ``bounced``; and lifting a suppression.

``record`` is one transaction. It keeps the message (``Bounce``, unique on its SHA-256, so a
replayed bounce is a ``duplicate`` that changes nothing), matches it to one delivery and acts:

- the delivery is the one a verified VERP key names (``report.delivery_id``), else the one
  whose Message-ID (``<delivery key@domain>``, bulletin.channels.email.message_id) the
  returned message quotes; it must be an email to a person whose address is the report's
  recipient (when the report names one). Anything else is kept as ``unmatched`` and moves
  nothing: a forged or mismatched key fails nobody's delivery;
- HARD: the delivery becomes ``bounced`` (ledger.orders.bounce), the address is suppressed.
  An ``unknown`` delivery becomes ``bounced`` too (the bounce proves it was handed over); one
  still ``sending`` (the bounce beat the relay's answer being written) keeps its state, which
  its worker still owns under its lease: the bounce is kept against it and the address is
  suppressed all the same;
- SOFT: kept against the delivery; BULLETIN_SOFT_BOUNCE_LIMIT of them for one address within
  BULLETIN_SOFT_BOUNCE_DAYS suppress it;
- COMPLAINT: the person is opted out of email (non-mandatory announcements), audited;
- UNREADABLE: kept, for HR to read; nothing moves;
- AUTO_REPLY (out of office): logged and dropped. Not kept: HR has nothing to do about one,
  and a busy company's out-of-office replies would bury the bounces that matter.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from bulletin.channels.bounce_report import BounceKind, BounceReport
from bulletin.conf import options
from bulletin.dispatch.ledger import orders
from bulletin.domain.models import (
    AuditEvent,
    Bounce,
    Channel,
    ChannelOptOut,
    Delivery,
    Suppression,
    delivery_key,
)
from bulletin.domain.records import AuditAction

log = logging.getLogger(__name__)

# Until BULLETIN_BOUNCE_MAX_BYTES is configured (conf.Options.bounce_max_bytes).
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# How much of the server's words a skipped delivery's reason repeats.
SHORT_DIAGNOSTIC = 120


@dataclass(frozen=True)
class Recorded:
    bounce_id: int | None  # the kept Bounce row (None: ignored, e.g. an auto-reply)
    delivery_id: int | None  # the delivery it was matched to
    # "bounced", "soft", "complaint", "ignored", "unreadable", "duplicate", "unmatched"
    outcome: str


def record(raw: bytes, report: BounceReport) -> Recorded:
    """Keep ``raw`` (the whole message, or a webhook's JSON) with what ``report`` says, and act
    on it. Idempotent: the same message recorded twice is one bounce (``duplicate``)."""
    if report.kind == BounceKind.AUTO_REPLY:
        extra = {"source": report.source, "message_id": report.message_id}
        log.info("automatic reply ignored", extra=extra)
        return Recorded(None, None, "ignored")
    digest = hashlib.sha256(raw).hexdigest()
    try:
        with transaction.atomic():
            return _record(raw, digest, report)
    except IntegrityError:
        # A racing copy of the same message (a second fetch, a webhook retried at once) won.
        found = Bounce.objects.filter(digest=digest).values_list("pk", "delivery_id").first()
        if found is None:
            raise
        return _duplicate(found[0], found[1])


def _record(raw: bytes, digest: str, report: BounceReport) -> Recorded:
    found = Bounce.objects.filter(digest=digest).values_list("pk", "delivery_id").first()
    if found is not None:
        return _duplicate(found[0], found[1])
    delivery, why_not = _match(report)
    outcome = _outcome(report.kind, delivery)
    bounce = _keep(raw, digest, report, delivery, outcome, why_not)
    _log_kept(bounce, why_not)
    if outcome == "bounced":
        _hard(bounce, _matched(delivery))
    elif outcome == "soft":
        _soft(bounce, _matched(delivery))
    elif outcome == "complaint":
        _complaint(bounce, _matched(delivery))
    return Recorded(bounce.pk, bounce.delivery_id, outcome)


def _duplicate(bounce_id: int, delivery_id: int | None) -> Recorded:
    log.info("bounce already recorded", extra={"bounce_id": bounce_id})
    return Recorded(bounce_id, delivery_id, "duplicate")


def _matched(delivery: Delivery | None) -> Delivery:
    assert delivery is not None  # _outcome acts only on a matched delivery
    return delivery


def _outcome(kind: str, delivery: Delivery | None) -> str:
    if kind == BounceKind.UNREADABLE:
        return "unreadable"
    if delivery is None:
        return "unmatched"
    return {"hard": "bounced", "soft": "soft", "complaint": "complaint"}[kind]


# --- matching ---------------------------------------------------------------------------------


def _match(report: BounceReport) -> tuple[Delivery | None, str]:
    """The delivery the report is about, or None and why not."""
    if report.key_refused:
        return None, f"VERP key refused: {report.key_refused}"
    if report.delivery_id is not None:
        delivery = _email_delivery(Q(pk=report.delivery_id))
        if delivery is None:
            return None, f"VERP key names delivery {report.delivery_id}: no email to a person"
    elif report.message_id:
        delivery = _by_message_id(report.message_id)
        if delivery is None:
            return None, f"Message-ID {report.message_id[:200]} is not one of Bulletin's emails"
    else:
        return None, "no VERP key and no Message-ID to match"
    address = _address(delivery)
    if report.recipient and report.recipient.strip().lower() != address:
        return None, f"delivery {delivery.pk} went to another address, not {report.recipient}"
    return delivery, ""


def _email_delivery(which: Q) -> Delivery | None:
    found = Delivery.objects.filter(which, channel=Channel.EMAIL, employee__isnull=False)
    return found.select_related("employee", "occurrence").first()


def _by_message_id(message_id: str) -> Delivery | None:
    """The email delivery whose Message-ID this is: ``<occurrence.employee.email[.space]@…>``
    (domain.models.delivery_key). The key is rebuilt from the row found and compared whole,
    so another installation's Message-ID (another key space) matches nothing."""
    key = message_id.strip().strip("<>").rpartition("@")[0]
    parts = key.split(".")
    if len(parts) not in (3, 4) or parts[2] != Channel.EMAIL:
        return None
    if not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    which = Q(occurrence_id=int(parts[0]), employee_id=int(parts[1]), place__isnull=True)
    delivery = _email_delivery(which)
    if delivery is None or _key_of(delivery) != key:
        return None
    return delivery


def _key_of(delivery: Delivery) -> str:
    occurrence = delivery.occurrence
    return delivery_key(
        occurrence.key_space, occurrence.pk, delivery.employee_id, None, delivery.channel
    )


def _address(delivery: Delivery) -> str:
    assert delivery.employee is not None  # _email_delivery finds deliveries to people only
    return delivery.employee.email.strip().lower()


# --- keeping ----------------------------------------------------------------------------------


def max_bytes() -> int:
    return int(getattr(options(), "bounce_max_bytes", DEFAULT_MAX_BYTES))


def _keep(
    raw: bytes,
    digest: str,
    report: BounceReport,
    delivery: Delivery | None,
    outcome: str,
    why_not: str,
) -> Bounce:
    recipient = report.recipient.strip().lower() or (_address(delivery) if delivery else "")
    note = "; ".join(part for part in (report.note, why_not) if part)
    return Bounce.objects.create(
        kind=report.kind.value,
        outcome=outcome,
        source=report.source[:64],
        recipient=recipient[:254],
        status=report.status[:16],
        diagnostic=report.diagnostic[:1000],
        message_id=report.message_id[:998],
        note=note,
        raw=raw[: max_bytes()],
        raw_size=len(raw),
        digest=digest,
        delivery=delivery,
        received_at=timezone.now(),
    )


def _log_kept(bounce: Bounce, why_not: str) -> None:
    extra = {
        "bounce_id": bounce.pk,
        "delivery_id": bounce.delivery_id,
        "kind": bounce.kind,
        "outcome": bounce.outcome,
        "source": bounce.source,
        "status": bounce.status,
    }
    if bounce.outcome in ("unmatched", "unreadable"):
        log.warning(f"bounce kept {bounce.outcome}: {why_not or bounce.note}", extra=extra)
    else:
        log.info(f"bounce recorded ({bounce.outcome})", extra=extra)


# --- acting -----------------------------------------------------------------------------------


def reason_of(bounce: Bounce) -> str:
    """What a delivery says about the bounce: "5.1.1 user unknown" (short)."""
    words = " ".join(bounce.diagnostic.split())
    if len(words) > SHORT_DIAGNOSTIC:
        words = words[: SHORT_DIAGNOSTIC - 1] + "…"
    return " ".join(part for part in (bounce.status, words) if part) or f"{bounce.kind} bounce"


def _hard(bounce: Bounce, delivery: Delivery) -> None:
    moved = orders.bounce([delivery.pk], f"bounced: {reason_of(bounce)}", bounce.received_at)
    extra = {"bounce_id": bounce.pk, "delivery_id": delivery.pk}
    if moved:
        log.warning("delivery bounced", extra=extra)
    else:  # already bounced (another bounce for it), or still sending: it keeps its state
        log.info("bounce recorded; delivery state unchanged", extra=extra)
    suppress(bounce, delivery)


def _soft(bounce: Bounce, delivery: Delivery) -> None:
    """Suppress at BULLETIN_SOFT_BOUNCE_LIMIT soft-bounced emails within the window. Emails, not
    reports: an MTA or a provider reports one message again at each retry (SendGrid sends a
    ``deferred`` event per attempt), and one slow message is not a broken mailbox."""
    chosen = options()
    since = bounce.received_at - timedelta(days=chosen.soft_bounce_days)
    recent = Bounce.objects.filter(
        recipient=bounce.recipient, outcome="soft", received_at__gte=since
    )
    if recent.values("delivery_id").distinct().count() >= chosen.soft_bounce_limit:
        suppress(bounce, delivery)


def suppress(bounce: Bounce, delivery: Delivery) -> Suppression | None:
    """Suppress the delivery's address (the one it went to: the bounce's recipient) unless it
    already is; returns the new suppression."""
    address = bounce.recipient
    if Suppression.objects.filter(address=address, lifted_at__isnull=True).exists():
        return None
    try:
        with transaction.atomic():  # a savepoint: a racing bounce may suppress it first
            suppression = Suppression.objects.create(
                address=address,
                employee_id=delivery.employee_id,
                bounce=bounce,
                reason=f"suppressed: {reason_of(bounce)}"[:200],
                created_at=bounce.received_at,
            )
    except IntegrityError:  # suppression_active_identity: it is suppressed, as wanted
        return None
    extra = {
        "suppression_id": suppression.pk,
        "bounce_id": bounce.pk,
        "employee_id": delivery.employee_id,
    }
    log.warning("address suppressed", extra=extra)
    return suppression


def _complaint(bounce: Bounce, delivery: Delivery) -> None:
    employee_id = delivery.employee_id
    _, created = ChannelOptOut.objects.get_or_create(employee_id=employee_id, channel=Channel.EMAIL)
    detail = {
        "employee_id": employee_id,
        "channel": Channel.EMAIL.value,
        "bounce_id": bounce.pk,
        "delivery_id": delivery.pk,
        "via": bounce.source,
        "reason": "reported an announcement as spam: opted out of email",
    }
    AuditEvent.objects.create(
        action=AuditAction.COMPLAINED,
        announcement_id=delivery.occurrence.announcement_id,
        detail=detail,
    )
    extra = {"bounce_id": bounce.pk, "delivery_id": delivery.pk, "employee_id": employee_id}
    log.warning(
        "complaint: employee opted out of email" if created else "complaint: already opted out",
        extra=extra,
    )


# --- lifting ----------------------------------------------------------------------------------


def lift(suppression_id: int, by: Any, now: datetime | None = None) -> bool:
    """Email goes to the address again from the next fan-out; True when this lifted it (False:
    already lifted, nothing changes, nothing more is audited)."""
    now = now or timezone.now()
    with transaction.atomic():
        active = Suppression.objects.filter(pk=suppression_id, lifted_at__isnull=True)
        lifted = bool(active.update(lifted_at=now, lifted_by=by))
        if lifted:
            _audit_lift(Suppression.objects.get(pk=suppression_id), by)
    return lifted


def _audit_lift(suppression: Suppression, by: Any) -> None:
    detail = {
        "suppression_id": suppression.pk,
        "bounce_id": suppression.bounce_id,
        "employee_id": suppression.employee_id,
        "address": suppression.address,
        "reason": f"email to {suppression.address} allowed again",
    }
    AuditEvent.objects.create(action=AuditAction.LIFTED, actor=by, detail=detail)
    extra = {
        "suppression_id": suppression.pk,
        "employee_id": suppression.employee_id,
        "user_id": getattr(by, "pk", None),
    }
    log.info("suppression lifted", extra=extra)
