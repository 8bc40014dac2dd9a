"""Rate limits shared by every worker: the next free slot per key lives in the database.

A transport names the keys a message must respect (a Slack channel, a Teams webhook) and the
spacing each needs. A send goes ahead only when every key is free, and then takes its slot on
each; otherwise the delivery waits until the latest of them. A 429 from a provider pushes its
key's slot out to the Retry-After time, so all workers back off together.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from bulletin.domain.models import ChannelPace

log = logging.getLogger(__name__)


def _locked(key: str, now: datetime) -> ChannelPace:
    try:
        with transaction.atomic():
            return ChannelPace.objects.select_for_update().get_or_create(
                key=key, defaults={"next_slot_at": now}
            )[0]
    except IntegrityError:  # another worker created it first
        return ChannelPace.objects.select_for_update().get(key=key)


def reserve(paces: list[tuple[str, float]], now: datetime) -> datetime:
    """Take a slot on every key and return ``now``, or return when the first key frees up."""
    if not paces:
        return now
    with transaction.atomic():
        rows = [(_locked(key, now), interval) for key, interval in sorted(paces)]
        busy_until = max(row.next_slot_at for row, _ in rows)
        if busy_until > now:
            return busy_until
        for row, interval in rows:
            if interval:  # a zero-spacing key is only ever held back by a 429
                row.next_slot_at = now + timedelta(seconds=interval)
                row.save(update_fields=["next_slot_at"])
    return now


def hold(key: str, until: datetime) -> None:
    """Nobody sends on ``key`` before ``until`` (a provider said so with Retry-After)."""
    with transaction.atomic():
        row = _locked(key, until)
        if row.next_slot_at < until:
            row.next_slot_at = until
            row.save(update_fields=["next_slot_at"])
    log.warning("rate limited: holding back", extra={"pace_key": key, "until": until.isoformat()})
