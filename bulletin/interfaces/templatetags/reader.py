"""Template filters for the pages employees read, in their own language and zone
(bulletin.channels.locale_text): ``{% load reader %}``, then ``{{ sent_at|when }}``,
``{{ sent_at|when:"long" }}`` and ``dir="{{ language|direction }}"``."""

from __future__ import annotations

from datetime import datetime

from django import template

from bulletin.channels import locale_text

register = template.Library()


@register.filter
def when(moment: datetime | None, style: locale_text.Style = "medium") -> str:
    """The moment in the active language and time zone (``{% timezone zone %}``)."""
    return locale_text.when(moment, style=style) if moment else ""


@register.filter
def direction(tag: str) -> str:
    """ "rtl" or "ltr" for a language tag."""
    return locale_text.direction(tag or "")
