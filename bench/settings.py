"""Bulletin's own settings plus django-post-office, which only the email benchmark uses."""

from bulletin.settings import *  # noqa: F403
from bulletin.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "post_office"]
# post_office's own default would fan its sending out to 5 threads; its documented knob, left
# at that default so the comparison is with post_office as it ships.
POST_OFFICE = {"BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"}}
