"""An announcement's sender; who has read and acknowledged each occurrence (Engagement),
carried over from the inbox items that recorded it until now."""

import django.db.models.deletion
from django.db import migrations, models


# Portable SQL: one statement, however many inbox items there are.
CARRY_OVER_INBOX_READS = """
INSERT INTO bulletin_engagement (occurrence_id, employee_id, opened_at, acknowledged_at,
                                 acknowledged_via)
SELECT d.occurrence_id, i.employee_id, MIN(i.read_at), MIN(i.acknowledged_at),
       CASE WHEN MIN(i.acknowledged_at) IS NULL THEN '' ELSE 'inapp' END
FROM bulletin_inboxitem i JOIN bulletin_delivery d ON d.id = i.delivery_id
WHERE i.read_at IS NOT NULL OR i.acknowledged_at IS NOT NULL
GROUP BY d.occurrence_id, i.employee_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("bulletin", "0011_employee_audience_idx"),
    ]

    operations = [
        migrations.AddField(
            model_name="announcement",
            name="sender",
            field=models.CharField(
                blank=True,
                help_text="The email's From, one of the allowed senders.",
                max_length=254,
            ),
        ),
        migrations.AlterField(
            model_name="announcement",
            name="requires_ack",
            field=models.BooleanField(
                default=False,
                help_text="Employees are asked to acknowledge it (inbox, email button).",
            ),
        ),
        migrations.CreateModel(
            name="Engagement",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("opened_at", models.DateTimeField(blank=True, null=True)),
                ("acknowledged_at", models.DateTimeField(blank=True, null=True)),
                ("acknowledged_via", models.CharField(blank=True, max_length=16)),
                (
                    "employee",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="engagements",
                        to="bulletin.employee",
                    ),
                ),
                (
                    "occurrence",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="engagements",
                        to="bulletin.occurrence",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("occurrence", "employee"), name="engagement_identity"
                    )
                ],
            },
        ),
        migrations.RunSQL(CARRY_OVER_INBOX_READS, migrations.RunSQL.noop),
    ]
