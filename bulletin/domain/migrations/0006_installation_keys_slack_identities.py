"""Keys that never collide, and Slack identities remembered.

- ``Installation``: one row with 128 random bits, made here, at the installation's first
  migrate (or at the upgrade of an older one). Every idempotency key contains it from now on.
- ``Occurrence.key_space``: added as "" for every occurrence that exists now, so their
  deliveries keep the keys receivers already saw (a delivery keeps its key for life); only the
  model's default then names the installation, for occurrences planned from now on. The
  default changes in the state only: rewriting it in the database would rebuild the table on
  SQLite and could never be right for the rows already there. Occurrences still ``planned``
  have no delivery yet (a fan-out inserts them and leaves ``planned`` in one transaction):
  their keys were never seen, so they take the installation id at once.
- ``Employee.slack_*``: what Slack's look-ups found, and for what, so a later announcement
  need not ask again.
- ``AuditAction.UNSUBSCRIBED`` (choices only: no change in the database).
"""

import secrets

from django.db import migrations, models

import bulletin.domain.models


def make_installation(apps, schema_editor):  # type: ignore[no-untyped-def]
    installation = apps.get_model("bulletin", "Installation")
    if not installation.objects.using(schema_editor.connection.alias).exists():
        installation.objects.using(schema_editor.connection.alias).create(
            id=1, key=secrets.token_hex(16)
        )


def key_unsent_occurrences(apps, schema_editor):  # type: ignore[no-untyped-def]
    alias = schema_editor.connection.alias
    key = apps.get_model("bulletin", "Installation").objects.using(alias).get(pk=1).key
    occurrences = apps.get_model("bulletin", "Occurrence").objects.using(alias)
    occurrences.filter(state="planned", deliveries__isnull=True).update(key_space=key)


def _cached(length: int) -> models.CharField:
    return models.CharField(
        blank=True, db_default="", default="", editable=False, max_length=length
    )


class Migration(migrations.Migration):
    dependencies = [
        ("bulletin", "0005_index_places_only_where_set"),
    ]

    operations = [
        migrations.CreateModel(
            name="Installation",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(
                        default=1, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("key", models.CharField(editable=False, max_length=32, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)), name="one_installation"
                    )
                ],
            },
        ),
        migrations.RunPython(make_installation, migrations.RunPython.noop, elidable=False),
        migrations.AddField(
            model_name="occurrence",
            name="key_space",
            field=models.CharField(
                blank=True, db_default="", default="", editable=False, max_length=32
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="occurrence",
                    name="key_space",
                    field=models.CharField(
                        blank=True,
                        db_default="",
                        default=bulletin.domain.models.installation_id,
                        editable=False,
                        max_length=32,
                    ),
                ),
            ],
        ),
        migrations.RunPython(key_unsent_occurrences, migrations.RunPython.noop, elidable=False),
        migrations.AddField(model_name="employee", name="slack_found_id", field=_cached(32)),
        migrations.AddField(model_name="employee", name="slack_found_for", field=_cached(254)),
        migrations.AddField(model_name="employee", name="slack_dm_channel", field=_cached(32)),
        migrations.AddField(model_name="employee", name="slack_dm_user", field=_cached(32)),
        migrations.AlterField(
            model_name="employee",
            name="slack_user_id",
            field=models.CharField(
                blank=True,
                help_text="Slack member id, typed in by hand: used as given, never replaced "
                "by a look-up. Empty: looked up by email (and remembered).",
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("edited", "Edited"),
                    ("submitted", "Submitted for approval"),
                    ("approved", "Approved"),
                    ("scheduled", "Scheduled"),
                    ("paused", "Paused"),
                    ("resumed", "Resumed"),
                    ("cancelled", "Cancelled"),
                    ("retried", "Deliveries retried"),
                    ("test_sent", "Test sent"),
                    ("deleted", "Draft deleted"),
                    ("settled", "Unknown deliveries settled by hand"),
                    ("unsubscribed", "Opted out of email (one-click unsubscribe)"),
                ],
                max_length=16,
            ),
        ),
    ]
