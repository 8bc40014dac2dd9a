"""SCIM provisioning (bulletin.interfaces.scim): what the identity provider knows each employee
by (userName, unique whatever its case, RFC 7643 §4.1.1; externalId, indexed for the
provider's look-ups), their given and family names, when a SCIM DELETE deactivated them, and
the two audit actions (choices only: no change in the database)."""

import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bulletin", "0016_db_defaults_for_raw_inserts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="employee",
            name="family_name",
            field=models.CharField(blank=True, db_default="", default="", max_length=100),
        ),
        migrations.AddField(
            model_name="employee",
            name="given_name",
            field=models.CharField(blank=True, db_default="", default="", max_length=100),
        ),
        migrations.AddField(
            model_name="employee",
            name="scim_deleted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="employee",
            name="scim_external_id",
            field=models.CharField(
                blank=True,
                db_default="",
                db_index=True,
                default="",
                editable=False,
                max_length=255,
                verbose_name="SCIM externalId",
            ),
        ),
        migrations.AddField(
            model_name="employee",
            name="scim_user_name",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                editable=False,
                max_length=254,
                verbose_name="SCIM userName",
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
                    ("not_held", "Working hours bypassed (mandatory)"),
                    ("released", "Held deliveries sent now regardless of working hours"),
                    ("reminded", "Reminder sent to those who have not acknowledged"),
                    ("invited", "A department invited to their inboxes"),
                    ("provisioned", "Employee created or changed by the identity provider (SCIM)"),
                    ("deprovisioned", "Employee deactivated by the identity provider (SCIM)"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="employee",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("scim_user_name"),
                condition=models.Q(("scim_user_name", ""), _negated=True),
                name="employee_scim_user_name_uniq",
            ),
        ),
    ]
