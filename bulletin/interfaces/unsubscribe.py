"""One-click unsubscribe from optional email (RFC 8058), reached from an email's
``List-Unsubscribe`` header or by the person following it in a browser.

No login and no CSRF token: the signed, per-person link is the credential (RFC 8058 section
3.2: mailbox providers POST ``List-Unsubscribe=One-Click`` to it without cookies or
credentials, and expect the answer itself, not a redirect). A GET only shows a confirmation
page with a button, never unsubscribes: link scanners and previews fetch URLs found in mail.
The pages show nothing about the person: a forwarded email must not reveal whose link it is.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from bulletin.channels.locale_text import speaking
from bulletin.dispatch.unsubscribe import is_opted_out, read_token, unsubscribe
from bulletin.domain.models import Employee

log = logging.getLogger(__name__)

# RFC 8058 section 3.1: the POST body's one key/value pair (form-encoded or multipart).
_FIELD, _VALUE = "List-Unsubscribe", "One-Click"


@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def one_click(request: HttpRequest, token: str) -> HttpResponse:
    found = read_token(token)
    # Their language, for the pages (which say nothing about whose link it is); None: gone.
    people = Employee.objects.filter(pk=found[0]) if found else Employee.objects.none()
    language = people.values_list("language", flat=True).first()
    if found is None or language is None:
        reason = "bad signature" if found is None else "employee gone"
        log.warning("unsubscribe link refused: %s", reason, extra={"reason": reason})
        # Whose link it is is not known: the language the browser asks for.
        with translation.override(translation.get_language_from_request(request)):
            return _refused(request, gettext("This unsubscribe link is not valid."))
    with speaking(language):
        return _answer(request, *found)


def _answer(request: HttpRequest, employee_id: int, announcement_id: int) -> HttpResponse:
    if request.method != "POST":
        done = is_opted_out(employee_id)
        return _page(request, "bulletin/unsubscribe.html", done=done, field=_FIELD, value=_VALUE)
    if request.POST.get(_FIELD) != _VALUE:
        log.warning("unsubscribe POST without %s=%s", _FIELD, _VALUE)
        problem = gettext("An unsubscribe request says %(field)s=%(value)s.")
        return _refused(request, problem % {"field": _FIELD, "value": _VALUE})
    unsubscribe(employee_id, announcement_id)
    return _page(request, "bulletin/unsubscribe.html", done=True)


def _page(
    request: HttpRequest, template: str, status: int = 200, **context: object
) -> HttpResponse:
    return render(request, template, context, status=status)


def _refused(request: HttpRequest, problem: str) -> HttpResponse:
    return _page(request, "bulletin/unsubscribe_refused.html", status=400, problem=problem)
