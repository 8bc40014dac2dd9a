"""The Celery application for scale-out: beat triggers planning, workers send.

Celery is only a trigger. Every guarantee lives in the database (unique occurrences and
deliveries, leases, fencing), so a second beat, a redelivered message or a task re-run after a
worker died changes nothing that matters. Settings are Django's ``CELERY_*`` names.
"""

from __future__ import annotations

import os

from celery import Celery

# Stays outside bulletin.conf: it names the settings module, so comes before any settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bulletin.settings")

app = Celery("bulletin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["bulletin.runners"])
