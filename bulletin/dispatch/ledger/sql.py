"""Every statement the ledger runs, in one place, with named parameters.

A *move* is an ``UPDATE`` of deliveries from one state (``%(was)s``, or a state written into
its text) that returns ``occurrence_id, channel, state`` first, then what its caller needs:
those three columns are what the kept counts change by (see ``counts.py``). Fencing is as
everywhere in the ledger: a move by a worker names its lease token.

The few places where SQLite and PostgreSQL differ are filled in by ``dialect.py``:
``{ids}`` (a list of ids as one parameter), ``{starts}`` (the channels a claim starts at
once), ``{skip_locked}``.
"""

from __future__ import annotations

from functools import lru_cache

from bulletin.dispatch.ledger.dialect import Dialect

MOVED = "occurrence_id, channel, state"

# --- a worker's moves, under its lease ---------------------------------------------------

# A CTE, not "id IN (subquery … LIMIT)": PostgreSQL may run such a subquery more than once,
# and with SKIP LOCKED each run can pick different rows, claiming more than the limit.
CLAIM_DUE = (
    "SELECT id AS due_id FROM bulletin_delivery WHERE state = 'pending' AND due_at <= %(now)s "
    "ORDER BY due_at LIMIT %(limit)s{skip_locked}"
)
# Rows of the channels in ``starting`` go straight to ``sending``, their attempt counted: where
# a resend is harmless, the claim is the intent (``began``: the try's place in its budget).
CLAIM = (
    "UPDATE bulletin_delivery SET "
    "state = CASE WHEN {starts} THEN 'sending' ELSE 'claimed' END, "
    "attempts = attempts + CASE WHEN {starts} THEN 1 ELSE 0 END, "
    "lease_token = %(token)s, lease_expires_at = %(expires)s, updated_at = %(now)s "
    "FROM due WHERE id = due.due_id AND state = 'pending' "
    f"RETURNING {MOVED}, id, employee_id, place_id, "
    "CASE WHEN state = 'sending' THEN attempts - budget_start ELSE 0 END AS began, "
    # The language of its text, chosen by fan-out: composing needs no query to know it.
    "language"
)
# What composing needs of each person, in Recipient's order (with the Slack identities the
# look-ups found, so a remembered DM costs no query and no look-up).
PERSON = (
    "email, name, timezone, slack_user_id, slack_found_id, slack_found_for, slack_dm_channel, "
    "slack_dm_user, language"
)
PEOPLE = f"SELECT id, {PERSON} FROM bulletin_employee WHERE {{ids}}"

# The intent, before the side effect: ``sending``, its attempt counted. ``tries`` is the try's
# place in the current retry budget (what the policy counts, see Delivery.budget_start).
INTENT = (
    "UPDATE bulletin_delivery SET state = 'sending', attempts = attempts + 1, "
    "lease_expires_at = %(expires)s, updated_at = %(now)s "
    "WHERE lease_token = %(token)s AND state = 'claimed' AND {ids} "
    f"RETURNING {MOVED}, id, attempts - budget_start AS tries"
)
# The outcome, while the lease is still ours; ``attempts`` numbers its history row.
OUTCOME = (
    "UPDATE bulletin_delivery SET state = %(state)s, lease_token = NULL, "
    "lease_expires_at = NULL, last_error = %(error)s, updated_at = %(now)s, "
    "sent_at = COALESCE(%(sent_at)s, sent_at), due_at = COALESCE(%(retry_at)s, due_at) "
    "WHERE lease_token = %(token)s AND state = 'sending' AND {ids} "
    f"RETURNING {MOVED}, id, attempts"
)
HISTORY_OF_MOVED = (
    "INSERT INTO bulletin_attempt (delivery_id, number, started_at, finished_at, outcome, error) "
    "SELECT id, attempts, %(started)s, %(now)s, %(outcome)s, %(error)s FROM moved"
)
HISTORY_OF_IDS = (
    "INSERT INTO bulletin_attempt (delivery_id, number, started_at, finished_at, outcome, error) "
    "SELECT id, attempts, %(started)s, %(now)s, %(outcome)s, %(error)s "
    "FROM bulletin_delivery WHERE {ids}"
)
HISTORY_ROW = (
    "INSERT INTO bulletin_attempt (delivery_id, number, started_at, finished_at, outcome, error) "
    "VALUES (%(delivery)s, %(number)s, %(started)s, %(now)s, %(outcome)s, %(error)s)"
)
# Back to the queue, unsent: the attempt the intent counted is taken back.
WITHDRAW = (
    "UPDATE bulletin_delivery SET state = 'pending', attempts = attempts - 1, "
    "lease_token = NULL, lease_expires_at = NULL, updated_at = %(now)s "
    "WHERE lease_token = %(token)s AND state = 'sending' AND {ids} "
    f"RETURNING {MOVED}, id"
)
RELEASE = (
    "UPDATE bulletin_delivery SET state = 'pending', lease_token = NULL, "
    "lease_expires_at = NULL, updated_at = %(now)s "
    "WHERE lease_token = %(token)s AND state = 'claimed' AND {ids} "
    f"RETURNING {MOVED}, id"
)
DEFER = (
    "UPDATE bulletin_delivery SET state = 'pending', lease_token = NULL, "
    "lease_expires_at = NULL, due_at = %(until)s, updated_at = %(now)s "
    "WHERE lease_token = %(token)s AND state = 'claimed' AND {ids} "
    f"RETURNING {MOVED}, id"
)
# Not a move: the state stays, the lease lasts longer.
RENEW = (
    "UPDATE bulletin_delivery SET lease_expires_at = %(expires)s "
    "WHERE lease_token = %(token)s AND state IN ('claimed', 'sending') AND {ids}"
)

# --- the reaper: leases that expired --------------------------------------------------------

EXPIRED = (
    "SELECT id, state, channel, attempts, updated_at FROM bulletin_delivery "
    "WHERE lease_expires_at < %(now)s{for_update}"
)
REQUEUE = (
    "UPDATE bulletin_delivery SET state = 'pending', lease_token = NULL, "
    "lease_expires_at = NULL, due_at = %(now)s, updated_at = %(now)s "
    "WHERE state = %(was)s AND {ids} "
    f"RETURNING {MOVED}, id"
)
IN_DOUBT = (
    "UPDATE bulletin_delivery SET state = 'unknown', lease_token = NULL, "
    "lease_expires_at = NULL, last_error = %(error)s, updated_at = %(now)s "
    "WHERE state = 'sending' AND {ids} "
    f"RETURNING {MOVED}, id"
)

# --- what people, the planner and retention ask for ------------------------------------------

# ``{chosen}``: which deliveries, as a subquery of ids (see dialect.subquery).
HOLD = (
    "UPDATE bulletin_delivery SET state = 'held', due_at = %(until)s, "
    "hold_reason = %(reason)s, updated_at = %(now)s "
    "WHERE state = 'pending' AND id IN ({chosen}) "
    f"RETURNING {MOVED}, id"
)
UNHOLD = (
    "UPDATE bulletin_delivery SET state = 'pending', due_at = COALESCE(%(due)s, due_at), "
    "updated_at = %(now)s WHERE state = 'held' AND id IN ({chosen}) "
    f"RETURNING {MOVED}, id"
)
SKIP = (
    "UPDATE bulletin_delivery SET state = 'skipped', last_error = %(error)s, "
    "updated_at = %(now)s WHERE state = %(was)s AND id IN ({chosen}) "
    f"RETURNING {MOVED}, id"
)
# A deliberate retry: a fresh retry budget (Delivery.budget_start), due now.
RETRY = (
    "UPDATE bulletin_delivery SET state = 'pending', due_at = %(now)s, last_error = '', "
    "budget_start = attempts, updated_at = %(now)s "
    "WHERE state = %(was)s AND id IN ({chosen}) "
    f"RETURNING {MOVED}, id"
)
SETTLE_SENT = (
    "UPDATE bulletin_delivery SET state = 'sent', last_error = '', updated_at = %(now)s, "
    # When the interrupted attempt began is the best estimate of when it was handed over.
    "sent_at = COALESCE((SELECT started_at FROM bulletin_attempt a "
    "WHERE a.delivery_id = bulletin_delivery.id ORDER BY number DESC LIMIT 1), %(now)s) "
    "WHERE state = 'unknown' AND {ids} "
    f"RETURNING {MOVED}, id"
)
SETTLE_FAILED = (
    "UPDATE bulletin_delivery SET state = 'failed', last_error = %(error)s, "
    "updated_at = %(now)s WHERE state = 'unknown' AND {ids} "
    f"RETURNING {MOVED}, id"
)
# A hard bounce came back for it (bulletin.dispatch.bounces): the address does not work.
BOUNCE = (
    "UPDATE bulletin_delivery SET state = 'bounced', last_error = %(error)s, "
    "updated_at = %(now)s WHERE state = %(was)s AND {ids} "
    f"RETURNING {MOVED}, id"
)
LOCK_IDS = "SELECT id, state FROM bulletin_delivery WHERE {ids}{for_update}"

# Creation: fan-out's rows come from a SELECT over the audience (``{rows}``, see fanout.py).
COLUMNS = (
    "occurrence_id, employee_id, place_id, channel, state, attempts, due_at, last_error, "
    "created_at, updated_at"
)
# The text's language and version number come last: fan-out chooses them per person in the
# same SELECT (bulletin.dispatch.translations.language_case).
CREATE = f"INSERT INTO bulletin_delivery ({COLUMNS}, language, version_number) {{rows}}"
CREATE_ONE = (
    f"INSERT INTO bulletin_delivery ({COLUMNS}, language, version_number) VALUES "
    "(%(occurrence)s, %(employee)s, %(place)s, %(channel)s, %(state)s, 0, %(now)s, "
    "%(error)s, %(now)s, %(now)s, %(language)s, "
    "(SELECT number FROM bulletin_announcementversion WHERE id = %(version)s))"
)

# Retention: a batch of settled deliveries goes with its history.
PRUNE_HISTORY = "DELETE FROM bulletin_attempt WHERE {delivery_ids}"
PRUNE = f"DELETE FROM bulletin_delivery WHERE {{ids}} RETURNING {MOVED}"

# --- the kept counts (counts.py) -------------------------------------------------------------

CHANGE = (
    "INSERT INTO bulletin_deliverycountchange (occurrence_id, channel, state, live, pruned) "
    "VALUES (%(occurrence)s, %(channel)s, %(state)s, %(live)s, %(pruned)s)"
)
# PostgreSQL: a move's count changes, written by the move's own statement (see dialect).
COUNTED = (
    "counted AS (INSERT INTO bulletin_deliverycountchange "
    "(occurrence_id, channel, state, live, pruned) "
    "SELECT occurrence_id, channel, state, COUNT(*), 0 FROM moved "
    "GROUP BY occurrence_id, channel, state "
    "UNION ALL SELECT occurrence_id, channel, %(was)s, -COUNT(*), 0 FROM moved "
    "GROUP BY occurrence_id, channel)"
)
ANY_CHANGE = "SELECT 1 FROM bulletin_deliverycountchange LIMIT 1"
_FOLD_INTO = (
    "INSERT INTO bulletin_deliverycount (occurrence_id, channel, state, live, pruned) "
    "SELECT occurrence_id, channel, state, SUM(live), SUM(pruned) FROM {source} "
    "WHERE TRUE GROUP BY occurrence_id, channel, state ORDER BY occurrence_id, channel, state "
    "ON CONFLICT (occurrence_id, channel, state) DO UPDATE SET "
    "live = bulletin_deliverycount.live + excluded.live, "
    "pruned = bulletin_deliverycount.pruned + excluded.pruned"
)
# PostgreSQL: what one statement deletes is exactly what it adds, whoever appends meanwhile.
FOLD_POSTGRESQL = (
    "WITH folded AS (DELETE FROM bulletin_deliverycountchange "
    "RETURNING occurrence_id, channel, state, live, pruned) "
) + _FOLD_INTO.format(source="folded")
# SQLite: one writer at a time, so the two statements of one transaction see the same rows.
FOLD_SQLITE = _FOLD_INTO.format(source="bulletin_deliverycountchange")
FOLD_SQLITE_DONE = "DELETE FROM bulletin_deliverycountchange"
FOLD_EMPTY = "DELETE FROM bulletin_deliverycount WHERE live = 0 AND pruned = 0"

ATTEMPT_CHANGE = (
    "INSERT INTO bulletin_attemptcountchange (channel, outcome, bucket, attempts, seconds) "
    "VALUES (%(channel)s, %(outcome)s, %(bucket)s, %(attempts)s, %(seconds)s)"
)
# PostgreSQL: a batch's attempts, timed alike (one start, one end), counted by its statement.
TIMED = (
    "timed AS (INSERT INTO bulletin_attemptcountchange "
    "(channel, outcome, bucket, attempts, seconds) "
    "SELECT channel, %(outcome)s, %(bucket)s, COUNT(*), COUNT(*) * %(seconds)s FROM moved "
    "GROUP BY channel)"
)
ANY_ATTEMPT_CHANGE = "SELECT 1 FROM bulletin_attemptcountchange LIMIT 1"
_FOLD_ATTEMPTS_INTO = (
    "INSERT INTO bulletin_attemptcount (channel, outcome, bucket, attempts, seconds) "
    "SELECT channel, outcome, bucket, SUM(attempts), SUM(seconds) FROM {source} "
    "WHERE TRUE GROUP BY channel, outcome, bucket ORDER BY channel, outcome, bucket "
    "ON CONFLICT (channel, outcome, bucket) DO UPDATE SET "
    "attempts = bulletin_attemptcount.attempts + excluded.attempts, "
    "seconds = bulletin_attemptcount.seconds + excluded.seconds"
)
FOLD_ATTEMPTS_POSTGRESQL = (
    "WITH folded AS (DELETE FROM bulletin_attemptcountchange "
    "RETURNING channel, outcome, bucket, attempts, seconds) "
) + _FOLD_ATTEMPTS_INTO.format(source="folded")
FOLD_ATTEMPTS_SQLITE = _FOLD_ATTEMPTS_INTO.format(source="bulletin_attemptcountchange")
FOLD_ATTEMPTS_SQLITE_DONE = "DELETE FROM bulletin_attemptcountchange"
KEPT_ATTEMPTS = (
    "SELECT channel, outcome, bucket, SUM(attempts), SUM(seconds) FROM ("
    "SELECT channel, outcome, bucket, attempts, seconds FROM bulletin_attemptcount UNION ALL "
    "SELECT channel, outcome, bucket, attempts, seconds FROM bulletin_attemptcountchange) k "
    "GROUP BY channel, outcome, bucket"
)

RECOUNT_CLEAR = (
    "DELETE FROM bulletin_deliverycountchange",
    "UPDATE bulletin_deliverycount SET live = 0",
)
RECOUNT = (
    "INSERT INTO bulletin_deliverycount (occurrence_id, channel, state, live, pruned) "
    "SELECT occurrence_id, channel, state, COUNT(*), 0 FROM bulletin_delivery "
    "WHERE TRUE GROUP BY occurrence_id, channel, state "
    "ON CONFLICT (occurrence_id, channel, state) DO UPDATE SET live = excluded.live"
)
LEDGER_COUNTS = (
    "SELECT occurrence_id, channel, state, COUNT(*) FROM bulletin_delivery "
    "GROUP BY occurrence_id, channel, state"
)
# The counts of some occurrences ({which}: a condition on occurrence_id, or TRUE for all):
# the folded rows and the changes not yet folded, summed, with each one's announcement.
KEPT = (
    "SELECT o.announcement_id, k.occurrence_id, k.channel, k.state, SUM(k.live), "
    "SUM(k.pruned) FROM ("
    "SELECT occurrence_id, channel, state, live, pruned FROM bulletin_deliverycount "
    "WHERE {which} UNION ALL "
    "SELECT occurrence_id, channel, state, live, pruned FROM bulletin_deliverycountchange "
    "WHERE {which}) k JOIN bulletin_occurrence o ON o.id = k.occurrence_id "
    "GROUP BY o.announcement_id, k.occurrence_id, k.channel, k.state"
)
OF_ANNOUNCEMENTS = "occurrence_id IN (SELECT id FROM bulletin_occurrence WHERE {announcement_ids})"


@lru_cache(maxsize=256)
def of(dialect: Dialect, template: str, **filled: str) -> str:
    """``template`` with the dialect's parts filled in: ``{ids}`` (column ``id``),
    ``{delivery_ids}``, ``{announcement_ids}``, ``{starts}``, ``{skip_locked}``,
    ``{for_update}``, and any ``filled`` text (itself already for this dialect)."""
    parts = {
        "ids": dialect.among("id", "ids"),
        "delivery_ids": dialect.among("delivery_id", "ids"),
        "announcement_ids": dialect.among("announcement_id", "ids"),
        "starts": dialect.among("channel", "starting"),
        "skip_locked": dialect.skip_locked,
        "for_update": " FOR UPDATE" if dialect.postgresql else "",
        **filled,
    }
    return template.format(**parts)
