"""Languages (issue 21): employees', announcements' and versions' languages, each language
versioned on its own, and what each delivery and acknowledgement was in."""

from django.conf import settings
from django.db import migrations, models

import bulletin.domain.languages


def existing_texts_in_default_language(apps, schema_editor):
    """Every announcement so far is in the organisation's default language, and so are all
    its versions (one UPDATE each, not a loop: there may be many)."""
    from bulletin.domain.languages import default_language

    announcement = apps.get_model("bulletin", "Announcement")
    version = apps.get_model("bulletin", "AnnouncementVersion")
    announcement.objects.update(language=default_language())
    own = announcement.objects.filter(pk=models.OuterRef("announcement_id")).values("language")
    version.objects.update(language=models.Subquery(own[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("bulletin", "0018_bounces_and_suppressions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="announcementversion",
            name="version_identity",
        ),
        migrations.AddField(
            model_name="announcement",
            name="language",
            field=models.CharField(
                db_default="en",
                default=bulletin.domain.languages.default_language,
                help_text="The language of the title and body above (BCP 47).",
                max_length=35,
                validators=[bulletin.domain.languages.validate_language],
            ),
        ),
        migrations.AddField(
            model_name="announcementversion",
            name="asks_again",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="announcementversion",
            name="language",
            field=models.CharField(db_default="", default="", max_length=35),
        ),
        migrations.AddField(
            model_name="announcementversion",
            name="removed",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="delivery",
            name="language",
            field=models.CharField(
                blank=True, db_default="", default="", editable=False, max_length=35
            ),
        ),
        migrations.AddField(
            model_name="delivery",
            name="version_number",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="employee",
            name="language",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="BCP 47, e.g. de or pt-BR. Empty: the organisation's default language.",
                max_length=35,
                validators=[bulletin.domain.languages.validate_language],
            ),
        ),
        migrations.AddField(
            model_name="engagement",
            name="language",
            field=models.CharField(blank=True, db_default="", default="", max_length=35),
        ),
        migrations.AddField(
            model_name="engagement",
            name="version_number",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="occurrence",
            name="translations",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(existing_texts_in_default_language, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="announcementversion",
            constraint=models.UniqueConstraint(
                fields=("announcement", "language", "number"), name="version_identity"
            ),
        ),
    ]
