import django.db.models.deletion
from django.db import migrations, models

# The old index is dropped by name instead of letting AlterField do it: AlterField would
# rebuild the whole delivery table on SQLite and drop and re-validate the foreign key on
# PostgreSQL, both proportional to the ledger, for what is only an index change.
OLD_INDEX = "bulletin_delivery_place_id_c116f37c"


class Migration(migrations.Migration):
    dependencies = [
        ("bulletin", "0004_audit_settled"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="delivery",
                    name="place",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deliveries",
                        to="bulletin.place",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{OLD_INDEX}"',
                    reverse_sql=f'CREATE INDEX "{OLD_INDEX}" ON "bulletin_delivery" ("place_id")',
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("place__isnull", False)),
                fields=["place"],
                name="delivery_place_idx",
            ),
        ),
    ]
