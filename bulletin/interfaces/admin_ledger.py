"""The admin's delivery list at any size: filters the ledger's indexes can answer, and its
counts — the list's size and each filter choice's — read from the ledger's kept counts per
(occurrence, channel, state), which cost the same at ten thousand deliveries as at ten
million. A search (by person, place or number) is not a kept dimension: a searched list is
counted up to admin_paging's cap instead, and its choices go uncounted on a big table."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest

from bulletin.dispatch.ledger import counts
from bulletin.domain.models import Occurrence

# What each list parameter chooses, as a kept count's attribute.
KEPT_DIMENSIONS = {
    "state__exact": "state",
    "channel__exact": "channel",
    "occurrence__id__exact": "occurrence_id",
}
# Parameters of the list that choose no rows: page, order, "show all", error, facets, popup.
NOT_CHOOSING = {"p", "o", "all", "e", "_facets", "_popup", "_to_field"}


class KeptCounts:
    """The kept counts that answer one request's delivery list, read at most once."""

    def __init__(self, request: HttpRequest) -> None:
        params: dict[str, str] = {n: str(v) for n, v in request.GET.items() if v != ""}
        self.chosen = {KEPT_DIMENSIONS[n]: v for n, v in params.items() if n in KEPT_DIMENSIONS}
        others = set(params) - set(KEPT_DIMENSIONS) - NOT_CHOOSING
        occurrence = self.chosen.get("occurrence_id", "0")
        self.answers = not others and occurrence.isdigit() and len(occurrence) < 19
        if self.answers and "occurrence_id" in self.chosen:
            self.chosen["occurrence_id"] = str(int(occurrence))  # "050" is occurrence 50
        self._rows: list[counts.Count] | None = None

    def rows(self) -> list[counts.Count]:
        if self._rows is None:
            occurrence = self.chosen.get("occurrence_id")
            chosen = [int(occurrence)] if occurrence else None
            self._rows = counts.kept(occurrences=chosen)
        return self._rows

    def count(self) -> int:
        """Deliveries in the list (``live``: the rows there are, not those pruned)."""
        return sum(row.live for row in self._matching())

    def by(self, dimension: str) -> Counter[str]:
        """Deliveries per value of ``dimension``, as the other choices narrow them (what
        Django's facets count)."""
        totals: Counter[str] = Counter()
        for row in self._matching(leaving_out=dimension):
            totals[str(getattr(row, dimension))] += row.live
        return totals

    def _matching(self, leaving_out: str = "") -> list[counts.Count]:
        chosen = [(d, v) for d, v in self.chosen.items() if d != leaving_out]
        return [r for r in self.rows() if all(str(getattr(r, d)) == v for d, v in chosen)]


def kept_counts(request: HttpRequest) -> KeptCounts:
    """One per request: the paginator and each filter ask, the database is read once."""
    found: KeptCounts | None = getattr(request, "_bulletin_kept_counts", None)
    if found is None:
        found = KeptCounts(request)
        request._bulletin_kept_counts = found  # type: ignore[attr-defined]
    return found


class KeptFacets(admin.ChoicesFieldListFilter):
    """Each choice's count from the kept counts where they answer the list."""

    def get_facet_queryset(self, changelist: ChangeList) -> dict[str, int]:
        kept = kept_counts(self.request)
        if not kept.answers:
            return super().get_facet_queryset(changelist)  # type: ignore[no-any-return]
        totals = kept.by(self.field.attname)
        choices = self.field.flatchoices  # type: ignore[attr-defined]
        return {f"{i}__c": totals.get(str(value), 0) for i, (value, _) in enumerate(choices)}


class IndexedStateFilter(KeptFacets):
    """A delivery's state is indexed only after its occurrence (delivery_occurrence_state_idx:
    no index leads with state, one per state would be maintained on every state change).
    Naming every occurrence, ``occurrence_id IN (SELECT id FROM occurrence)`` — the same rows,
    as every delivery has one — lets SQLite and PostgreSQL walk that index once per occurrence
    (a skip scan by hand) and read only the chosen state's rows: a rare state such as
    ``unknown`` is found without reading the millions that are ``sent``. The list is then
    ordered as that index is (DeliveryAdmin.index_ordering)."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        chosen = super().queryset(request, queryset)
        if chosen is None or not self.used_parameters:
            return chosen
        return chosen.filter(occurrence__in=Occurrence.objects.values("pk"))


class NarrowedChannelFilter(KeptFacets):
    """No index holds a delivery's channel, so a channel alone would be found by reading the
    table newest first until a page fills — all of it for a channel seldom used. Offered once
    an indexed filter (a state, an occurrence, a search for people) has narrowed the list; a
    channel already chosen stays visible, so it can be cleared."""

    NARROWING = ("state__exact", "occurrence__id__exact", "q")

    def has_output(self) -> bool:
        params = self.request.GET
        return bool(self.used_parameters) or any(params.get(name) for name in self.NARROWING)
