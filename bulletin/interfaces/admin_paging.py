"""Admin lists over the tables that grow with every delivery (deliveries, attempts, inbox
items): each page costs the same few indexed queries at ten thousand rows and at ten million.

- **No whole-table count.** Django counts the filtered list, the whole table, and for each
  filter every choice's rows (facets) on every page; each is a read of the table. Here an
  unfiltered list shows the table's *estimated* size, a filtered list is counted only up to
  ``EXACT_UP_TO`` ("more than 10,000"), and per-choice counts appear only while the whole
  table is that small — unless the admin knows its counts otherwise: the delivery list reads
  the ledger's kept counts (``admin_ledger``), exact at any size.
- **Index-backed sorting and search only** (:func:`search_rows`); the delivery list's own
  filters and kept counts are in ``admin_ledger``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connection, models
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from bulletin.domain.models import Employee, Place

# Up to this many rows a count is exact (counting them is cheap); past it, an unfiltered list
# shows an estimate and a filtered one "more than EXACT_UP_TO". Tests lower it.
EXACT_UP_TO = 10_000
# A search resolves the people it names first (the employee table is small next to the
# ledger), then reads their rows through the ledger's employee index; this many at most.
PEOPLE_FOUND_AT_MOST = 50


@dataclass(frozen=True)
class RowCount:
    rows: int
    label: str = ""  # "" when exact; else how the page states it ("about 1,000,000")


def estimated_rows(model: type[models.Model]) -> int | None:
    """The table's size without reading it, or None where the database does not know.

    PostgreSQL: its statistics (``reltuples``, kept by autovacuum's ANALYZE), scaled to the
    table's pages now as the planner does, so growth since the last ANALYZE shows; -1 means
    never analysed. SQLite keeps no statistics, and ``COUNT(*)`` reads every row (its smallest
    index): the id range is an upper bound instead — rows deleted inside it (pruning, mostly
    from the low end) make it too high, never too low, so a last page may come up short.
    """
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT CASE WHEN relpages > 0 THEN reltuples / relpages * "
                "(pg_relation_size(oid) / current_setting('block_size')::int) "
                "ELSE reltuples END FROM pg_class WHERE oid = %s::regclass",
                [table],
            )
            (estimate,) = cursor.fetchone() or (None,)
            return None if estimate is None or estimate < 0 else int(estimate)
        pk = connection.ops.quote_name(model._meta.pk.column)  # type: ignore[union-attr]
        name = connection.ops.quote_name(table)
        # Two subqueries: each is one probe of the primary key; MAX(id) - MIN(id) in one
        # SELECT makes SQLite read the whole table.
        cursor.execute(f"SELECT (SELECT MAX({pk}) FROM {name}) - (SELECT MIN({pk}) FROM {name})")
        (span,) = cursor.fetchone()
        return 0 if span is None else int(span) + 1


def counted(queryset: QuerySet[Any]) -> RowCount:
    """Exact up to EXACT_UP_TO; the LIMIT inside the count stops the read there."""
    rows = queryset.order_by()[: EXACT_UP_TO + 1].count()
    return RowCount(rows, f"more than {EXACT_UP_TO:,}" if rows > EXACT_UP_TO else "")


def table_rows(model: type[models.Model]) -> RowCount:
    estimate = estimated_rows(model)
    if estimate is not None and estimate > EXACT_UP_TO:
        return RowCount(estimate, f"about {estimate:,}")
    # Small, or never analysed: a capped count is cheap and exact while the table is small.
    return counted(model._default_manager.all())


class EstimatingPaginator(Paginator):
    """Pages a list whose size is estimated or capped; past the real end a page is empty.
    ``known``: the size where something cheaper knows it (the ledger's kept counts)."""

    object_list: QuerySet[Any]
    known: RowCount | None = None

    @cached_property
    def row_count(self) -> RowCount:
        if self.known is not None:
            return self.known
        if self.object_list.query.where:
            return counted(self.object_list)
        return self.table

    @cached_property
    def table(self) -> RowCount:
        return table_rows(self.object_list.model)

    @cached_property
    def count(self) -> int:
        return self.row_count.rows

    @property
    def count_label(self) -> str:
        return self.row_count.label


class BigTableChangeList(ChangeList):
    paginator: EstimatingPaginator

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Django's per-choice counts are one pass over the table (filtered by the other
        # filters) per filter: shown while the table is small, or where the admin has them
        # for free (kept counts), left off otherwise.
        admin_: BigTableAdmin = self.model_admin  # type: ignore[assignment]
        cheap = admin_.facets_are_kept(request) or not self.paginator.table.label
        self.add_facets = self.add_facets and cheap

    def get_ordering(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Any]:
        """The admin's index order, whatever the query string asks: any other order sorts
        the whole (filtered) table before the first row is shown (``?o=4`` is ignored)."""
        admin_: BigTableAdmin = self.model_admin  # type: ignore[assignment]
        return admin_.index_ordering(request)


class ReadOnly(admin.ModelAdmin):
    """Records only the planner, the dispatcher and the ledger write: shown, never edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BigTableAdmin(ReadOnly):
    """A read-only list of a ledger table, newest first, paged as described above."""

    show_full_result_count = False
    paginator = EstimatingPaginator
    ordering = ("-pk",)
    sortable_by = ()  # no column header sorts (see BigTableChangeList.get_ordering)
    show_facets = admin.ShowFacets.ALWAYS  # while the table is small (BigTableChangeList)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return BigTableChangeList

    def index_ordering(self, request: HttpRequest) -> list[str]:
        """Newest first, along the primary key: a page is its next hundred entries."""
        return ["-pk"]

    def facets_are_kept(self, request: HttpRequest) -> bool:
        """Whether this list's filters count their choices without reading the table."""
        return False


def people_named(request: HttpRequest, term: str) -> list[int]:
    """Ids of the people whose email or name contains ``term``, at most PEOPLE_FOUND_AT_MOST
    (with a message when there are more: searching for a fuller name narrows it). Looked up
    once per request, though Django filters the list again for each filter's choice counts."""
    found: dict[str, list[int]] = request.__dict__.setdefault("_bulletin_people_named", {})
    if term not in found:
        found[term] = _people_named(request, term)
    return found[term]


def _people_named(request: HttpRequest, term: str) -> list[int]:
    if "@" in term:  # a whole address (stored lower-case) is one probe of the unique index
        exact = list(Employee.objects.filter(email=term.lower()).values_list("id", flat=True))
        if exact:
            return exact
    matches = Employee.objects.filter(Q(email__icontains=term) | Q(name__icontains=term))
    found = list(matches.order_by("id").values_list("id", flat=True)[: PEOPLE_FOUND_AT_MOST + 1])
    if len(found) > PEOPLE_FOUND_AT_MOST:
        note = (
            f"More than {PEOPLE_FOUND_AT_MOST} people match “{term}”: showing the first "
            f"{PEOPLE_FOUND_AT_MOST}. A fuller name or email narrows it."
        )
        messages.warning(request, note)
    return found[:PEOPLE_FOUND_AT_MOST]


def search_rows(
    request: HttpRequest, queryset: QuerySet[Any], term: str, *, places: bool = False
) -> QuerySet[Any]:
    """Rows of the people ``term`` names (and with ``places``, of the places whose name holds
    it), each through the table's own index; a number also finds the row with that id.
    Never ``LIKE`` over a join with the whole ledger."""
    term = term.strip()
    if not term:
        return queryset
    wanted = Q(employee_id__in=people_named(request, term))
    if places:
        named = Place.objects.filter(name__icontains=term).order_by("id").values_list("id")
        wanted |= Q(place_id__in=[pk for (pk,) in named[:PEOPLE_FOUND_AT_MOST]])
    if term.isdigit() and len(term) < 19:  # beyond 64 bits no row has it
        wanted |= Q(pk=int(term))
    return queryset.filter(wanted)
