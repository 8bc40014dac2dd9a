"""Employee CSV import in two steps: check (a dry run that writes nothing), then import.

The checked file is kept in the session (up to ``WEB_LIMIT`` bytes) with its SHA-256; the
"Import" button posts that digest back, so what is imported is exactly what was reviewed, even
if another tab uploaded something else meanwhile. Larger files: ``bulletin import_employees``.
"""

from __future__ import annotations

import base64
import hashlib

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from bulletin.interfaces.hr.access import hr_view
from bulletin.interfaces.hr.forms import ImportForm
from bulletin.interfaces.roster import (
    ImportRejected,
    import_employees,
    preview_employees,
)

WEB_LIMIT = 2 * 1024 * 1024
SESSION_KEY = "bulletin_hr_import"
ROWS_SHOWN = 1000


def _page(request: HttpRequest, status: int = 200, **context: object) -> HttpResponse:
    context.setdefault("form", ImportForm())
    context.setdefault("limit_mib", WEB_LIMIT // 2**20)
    return render(request, "bulletin/hr/import.html", context, status=status)


@hr_view("add_employee", "change_employee")
@require_http_methods(["GET", "HEAD", "POST"])
def import_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request)
    action = request.POST.get("action", "check")
    if action == "apply":
        return _apply(request)
    if action == "discard":
        request.session.pop(SESSION_KEY, None)
        messages.info(request, "The uploaded file was discarded; nothing was imported.")
        return redirect("hr:import")
    return _check(request)


def _check(request: HttpRequest) -> HttpResponse:
    request.session.pop(SESSION_KEY, None)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, status=400, form=form)
    upload = form.cleaned_data["file"]
    data = upload.read(WEB_LIMIT + 1)
    if len(data) > WEB_LIMIT:
        form.add_error(
            "file",
            f"This file is larger than {WEB_LIMIT // 2**20} MiB. Import it on the server with "
            f"“bulletin import_employees FILE.csv” instead.",
        )
        return _page(request, status=400, form=form)
    try:
        report = preview_employees(data)
    except ImportRejected as exc:
        return _rejected(request, exc, upload.name, form=form)
    digest = hashlib.sha256(data).hexdigest()
    request.session[SESSION_KEY] = {
        "name": upload.name,
        "digest": digest,
        "data": base64.b64encode(data).decode("ascii"),
    }
    changed = [row for row in report.rows if row.action != "unchanged"]
    return _page(
        request,
        report=report,
        changed=changed[:ROWS_SHOWN],
        hidden_rows=max(len(changed) - ROWS_SHOWN, 0),
        digest=digest,
        name=upload.name,
    )


def _rejected(
    request: HttpRequest, rejection: ImportRejected, name: str, **context: object
) -> HttpResponse:
    """Every problem the check found, each with its line and column (the first MAX_PROBLEMS
    by line, and how many more)."""
    return _page(
        request,
        status=400,
        errors=rejection.errors,
        total=rejection.total,
        more=rejection.more_text(),
        name=name,
        **context,
    )


def _apply(request: HttpRequest) -> HttpResponse:
    stored = request.session.get(SESSION_KEY)
    if not stored or stored.get("digest") != request.POST.get("digest"):
        messages.error(
            request, "That file is no longer waiting to be imported. Upload it again to check it."
        )
        return redirect("hr:import")
    data = base64.b64decode(stored["data"])
    try:
        report = import_employees(data)
    except ImportRejected as exc:
        request.session.pop(SESSION_KEY, None)
        return _rejected(request, exc, stored["name"])
    request.session.pop(SESSION_KEY, None)
    messages.success(
        request,
        f"Imported {stored['name']}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged.",
    )
    return redirect("hr:import")
