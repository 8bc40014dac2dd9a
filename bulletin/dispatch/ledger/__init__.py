"""The delivery ledger: every state a delivery can take, and every move between them.

This package is the only writer of a delivery's state, of its attempt history, and of the
kept counts. Everything else asks it. A delivery is one row per (occurrence, recipient,
channel), unique, created by fan-out and never created twice; from then on it moves:

=========  =======================================================  =========================
state      what it means                                            moves to (by)
=========  =======================================================  =========================
pending    due at ``due_at``; any worker may claim it               claimed, sending (claim);
                                                                    held (hold); skipped (skip)
held       waiting for its recipient's working window to open at    pending (unhold: the window
           ``due_at`` (``hold_reason`` says why)                    opened, or "send now");
                                                                    skipped (skip)
claimed    leased to one worker (``lease_token`` until               sending (intent);
           ``lease_expires_at``); nothing sent yet                  pending (release, defer,
                                                                    reap)
sending    its send is under way: the intent is written, the        sent, failed, pending
           attempt counted                                          (outcome; a retry waits
                                                                    with ``due_at``);
                                                                    pending (withdraw: never
                                                                    sent; reap where the
                                                                    receiver drops repeats);
                                                                    unknown (reap elsewhere)
sent       the receiver accepted it                                 bounced (bounce);
                                                                    (pruned, see below)
failed     it will not arrive: permanent error, or retries spent    pending (retry)
unknown    interrupted mid-send: it may or may not have arrived;    sent, failed, pending
           a person decides                                         (settle; retry);
                                                                    bounced (bounce)
skipped    not sent, on purpose: opted out, cancelled, suppressed   —
bounced    accepted, then returned: a hard bounce says the          —
           address does not work (``last_error``: the reason)
=========  =======================================================  =========================

- **claim**, **intent**, **outcome**, **renew**, **defer**, **release**, **withdraw**:
  a worker's moves, each naming its lease token, so a worker whose lease expired can no
  longer move the row (``leases.py``). **reap**: the expired leases (``leases.reap``).
  The channels whose receiver does not drop a repeat write intent and outcome one delivery
  per connection at a time, a round per transaction (``serial.SerialLedger``).
- **create** (fan-out), **hold**/**unhold**, **skip**, **retry**, **settle**, **prune**:
  what the planner, people and retention ask for (``orders.py``). **bounce**: a hard bounce
  recorded by ``bulletin.dispatch.bounces`` (``orders.py``).

Every move also writes how it changes the counts of (occurrence, channel, state), in the
same transaction (``counts.py``): what HR, ``/metrics`` and ``status`` read is kept, not
computed, and costs the same at ten thousand deliveries as at ten million. Retention deletes
old settled rows; their counts move from ``live`` to ``pruned``, and totals keep them.

The statements are all in ``sql.py``, with named parameters; SQLite and PostgreSQL differ
only in ``dialect.py``. Moves take part in the caller's transaction (Django's ``atomic``), or
are one transaction of their own (``execute.together``).
"""

from __future__ import annotations

from bulletin.dispatch.ledger.counts import fold, recount
from bulletin.dispatch.ledger.leases import (
    INTERRUPTED,
    Claimed,
    LeaseLost,
    Outcome,
    Reaped,
    begin_attempt,
    begin_attempts,
    claim,
    claim_rows,
    defer,
    finish,
    finish_many,
    new_token,
    reap,
    release,
    renew,
    withdraw,
)
from bulletin.dispatch.ledger.serial import Attempted, SerialLedger

__all__ = [
    "INTERRUPTED",
    "Attempted",
    "Claimed",
    "LeaseLost",
    "Outcome",
    "Reaped",
    "SerialLedger",
    "begin_attempt",
    "begin_attempts",
    "claim",
    "claim_rows",
    "defer",
    "finish",
    "finish_many",
    "fold",
    "new_token",
    "reap",
    "recount",
    "release",
    "renew",
    "withdraw",
]
