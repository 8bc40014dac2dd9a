"""HR's translations of an announcement: its languages, the side-by-side editor (the default
text read-only beside the translation, with a live preview of the translation as it will be
sent), removing a translation, and who reads what before anything is sent ("148 people read
German: no German text, they get English").

Views parse and present; every change goes through ``bulletin.dispatch.translations``
(``save_text``, ``remove_text``), which goes through the lifecycle: it checks the role, writes
the audit log, and makes an approved announcement whose text changed need approval again.
Seeing the languages needs ``view_announcement``; writing them, ``change_announcement``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from bulletin.channels.locale_text import direction
from bulletin.channels.render import markdown_to_html, render_html
from bulletin.conf import options
from bulletin.dispatch import translations
from bulletin.domain.languages import display_name, offered_languages
from bulletin.domain.models import Announcement, AnnouncementStatus
from bulletin.domain.records import AnnouncementVersion
from bulletin.interfaces.hr import endpoints
from bulletin.interfaces.hr.access import hr_view
from bulletin.interfaces.hr.forms import _sentence
from bulletin.interfaces.hr.present import display_zone, in_zone, person_name

# --- languages in words ---------------------------------------------------------------------


def people(n: int) -> str:
    return f"{n:,} {'person reads' if n == 1 else 'people read'}"


def coverage_sentence(line: translations.Coverage) -> str:
    """ "148 people read German: no German text, they get English"."""
    name, gets = display_name(line.language), display_name(line.gets)
    if line.has_text:
        return f"{people(line.people)} {name}: they get the {name} text."
    return f"{people(line.people)} {name}: no {name} text, they get {gets}."


def coverage_context(item: Announcement) -> dict[str, Any]:
    """The "who reads what" lines for the detail page and the translation pages."""
    lines = [
        {"language": c.language, "has_text": c.has_text, "sentence": coverage_sentence(c)}
        for c in translations.coverage(item)
    ]
    return {"coverage": lines, "coverage_missing": any(not line["has_text"] for line in lines)}


# --- approval state -------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    key: str  # approved, needs, none: the CSS class and what tests look for
    words: str


APPROVED = State("approved", "approved")
NEEDS_APPROVAL = State("needs", "needs approval")
NO_APPROVAL = State("none", "no approval needed")


def state_of(version: AnnouncementVersion, approved: set[int]) -> State:
    if not options().require_approval:
        return NO_APPROVAL
    return APPROVED if version.pk in approved else NEEDS_APPROVAL


# --- the form -------------------------------------------------------------------------------


class TranslationForm(forms.Form):
    """A translation's title and body, as typed. The rules are the service's (``save_text``
    checks the title and the body together), so every problem is said in one pass and the
    rules live in one place."""

    title = forms.CharField(required=False, strip=True)
    body = forms.CharField(required=False, strip=False)
    ask_again = forms.BooleanField(required=False)

    def clean_body(self) -> str:
        # A browser sends a textarea's line breaks as CRLF (HTML's form submission normalises
        # newlines so); the text is kept with LF, as the API and the default text have it, so
        # the same words sent again are "nothing changed", not a new version.
        return str(self.cleaned_data["body"]).replace("\r\n", "\n")

    def add_service_errors(self, error: ValidationError) -> None:
        """The service's problems, on the field they name (the rest above the form)."""
        if not hasattr(error, "error_dict"):
            for message in error.messages:
                self.add_error(None, _sentence(message))
            return
        for name, found in error.message_dict.items():
            target = name if name in self.fields else None
            for message in found:
                self.add_error(target, _sentence(message))


# --- the pages ------------------------------------------------------------------------------


def _approved(item: Announcement) -> set[int]:
    """The ids of the versions an approval covers (every language's latest at that moment)."""
    return translations.approved_version_ids(item)


def language_rows(item: Announcement, *, with_text: bool = False) -> list[dict[str, Any]]:
    """Each language with a text, the default first, then by name: its latest version and
    whether that version is approved; ``with_text``: its body as sent, for approvers to read."""
    zone, approved = display_zone(item), _approved(item)
    found = translations.available(item)
    order = sorted(found, key=lambda tag: (tag != item.language, display_name(tag), tag))
    return [
        {
            "language": tag,
            "name": display_name(tag),
            "direction": direction(tag),
            "is_default": tag == item.language,
            "version": found[tag],
            "who": person_name(found[tag].created_by),
            "at": in_zone(found[tag].created_at, zone),
            "state": state_of(found[tag], approved),
            # markdown_to_html: raw HTML off, then sanitised by nh3 (what the template marks safe).
            "html": markdown_to_html(found[tag].body) if with_text else "",
        }
        for tag in order
    ]


def editing_problem(item: Announcement) -> str:
    """Why its texts cannot change now ("" when they can), by the service's own rule."""
    try:
        translations._editable(item)
    except ValidationError as exc:
        return " ".join(_sentence(message) for message in exc.messages)
    return ""


def _can_edit(request: HttpRequest, item: Announcement) -> bool:
    user: Any = request.user
    return bool(user.has_perm("bulletin.change_announcement") and not editing_problem(item))


@hr_view("view_announcement")
@require_http_methods(["GET", "HEAD"])
def language_list(request: HttpRequest, pk: int) -> HttpResponse:
    """The announcement's languages; ``?add=de`` opens the editor for a new one."""
    item = get_object_or_404(Announcement, pk=pk)
    rows = language_rows(item, with_text=True)
    written = {row["language"] for row in rows}
    addable = [(tag, display_name(tag)) for tag in offered_languages() if tag not in written]
    add_error, status = "", 200
    if "add" in request.GET:
        tag = request.GET["add"]
        if tag in dict(addable):  # the editor itself checks the role
            return redirect("hr:translation", pk=item.pk, language=tag)
        add_error, status = _cannot_add(tag, written), 400
    context = {
        "item": item,
        "rows": rows,
        "addable": addable,
        "offered": [display_name(tag) for tag in offered_languages()],
        "add_error": add_error,
        "can_edit": _can_edit(request, item),
        "editing_problem": editing_problem(item),
        "approval_required": options().require_approval,
        **coverage_context(item),
    }
    return render(request, "bulletin/hr/translations.html", context, status=status)


def _cannot_add(tag: str, written: set[str]) -> str:
    if tag in written:
        return f"There is already a {display_name(tag)} text: edit it from the list above."
    offered = ", ".join(offered_languages())
    return f"“{tag}” is not one of the languages Bulletin offers ({offered})."


def _translatable(pk: int, language: str) -> tuple[Announcement, AnnouncementVersion | None]:
    """The announcement and the translation's latest version (None: not written yet). A
    language neither offered nor written is a page that does not exist."""
    item = get_object_or_404(Announcement, pk=pk)
    current = translations.available(item).get(language)
    if current is None and language not in offered_languages():
        raise Http404("Bulletin does not offer that language.")
    return item, current


def fallback_of(item: Announcement, language: str) -> str:
    """What people who read ``language`` get when it has no text of its own."""
    others = [tag for tag in translations.available(item) if tag != language]
    return translations.pick(language, others, item.language)


def _editor_page(
    request: HttpRequest,
    item: Announcement,
    language: str,
    form: TranslationForm,
    current: AnnouncementVersion | None,
    status: int = 200,
) -> HttpResponse:
    default = translations.available(item).get(item.language)
    body = form["body"].value() or ""
    reader = endpoints._sample_reader(request)  # both texts as the writer would get them
    context = {
        "item": item,
        "language": language,
        "name": display_name(language),
        "direction": direction(language),
        "form": form,
        "current": current,
        "state": state_of(current, _approved(item)) if current else None,
        "fallback_name": display_name(fallback_of(item, language)),
        "default": {
            "language": item.language,
            "name": display_name(item.language),
            "direction": direction(item.language),
            "version": default,
        },
        "default_html": render_html(default.body if default else item.body, reader),
        "reader": reader.name,
        "preview_html": render_html(body, reader) if body else "",
        "approval_required": options().require_approval,
        "will_need_approval": options().require_approval
        and item.status in (AnnouncementStatus.SCHEDULED, AnnouncementStatus.PAUSED),
        **coverage_context(item),
    }
    return render(request, "bulletin/hr/translation_edit.html", context, status=status)


@hr_view("change_announcement")
@require_http_methods(["GET", "HEAD", "POST"])
def editor(request: HttpRequest, pk: int, language: str) -> HttpResponse:
    """The default text, read-only, beside the translation's; saving makes a new version of
    that language (the default's own text is edited on the announcement's edit page)."""
    item, current = _translatable(pk, language)
    if language == item.language:
        return redirect("hr:edit", pk=item.pk)
    if problem := editing_problem(item):
        messages.error(request, problem)
        return redirect("hr:translations", pk=item.pk)
    if request.method != "POST":
        initial = {"title": current.title, "body": current.body} if current else None
        return _editor_page(request, item, language, TranslationForm(initial=initial), current)
    before = item.status
    form = TranslationForm(request.POST)
    form.is_valid()  # only reads the fields: the service judges them
    data = form.cleaned_data
    try:
        version = translations.save_text(
            item, language, data["title"], data["body"], request.user, ask_again=data["ask_again"]
        )
    except ValidationError as exc:
        form.add_service_errors(exc)
        return _editor_page(request, item, language, form, current, status=400)
    if current is not None and version.pk == current.pk:
        messages.info(request, "Nothing changed.")
    else:
        item.refresh_from_db()
        _say_saved(request, item, before, display_name(language), version.number)
    return redirect("hr:translations", pk=item.pk)


def _say_saved(
    request: HttpRequest, item: Announcement, before: str, name: str, number: int
) -> None:
    saved = f"Saved the {name} text (version {number})."
    if before == AnnouncementStatus.DRAFT or not options().require_approval:
        messages.success(
            request, f"{saved} Sends from now on use it; what was already sent keeps its version."
        )
    elif item.status == AnnouncementStatus.PAUSED:
        messages.warning(request, f"{saved} It resumes once an approver approves it.")
    else:
        messages.warning(
            request,
            f"{saved} Because it changed, the announcement needs approval again: nothing more "
            f"is sent until an approver approves it.",
        )


@hr_view("change_announcement")
@require_POST
def remove(request: HttpRequest, pk: int, language: str) -> HttpResponse:
    """Withdraw a translation: its readers get the fallback text from the next send on."""
    item, current = _translatable(pk, language)
    name = display_name(language)
    if current is None or language == item.language or request.POST.get("confirm") != "yes":
        messages.error(request, f"There is no {name} translation to remove.")
        return redirect("hr:translations", pk=item.pk)
    try:
        translations.remove_text(item, language, request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(_sentence(m) for m in exc.messages))
        return redirect("hr:translation", pk=item.pk, language=language)
    fallback = display_name(fallback_of(item, language))
    messages.success(
        request, f"Removed the {name} text: people who read {name} get {fallback} from now on."
    )
    return redirect("hr:translations", pk=item.pk)


def other_language(item: Announcement, version: AnnouncementVersion) -> str:
    """A translation's language by name ("" for the default's own versions)."""
    return "" if version.language == item.language else display_name(version.language)
