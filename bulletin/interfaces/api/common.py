"""Small pieces every router uses: integer bounds, pagination and 404s."""

from __future__ import annotations

from typing import Annotated, TypeVar

from django.db.models import Model, QuerySet
from ninja import Field, Schema
from ninja.errors import HttpError
from ninja.pagination import LimitOffsetPagination
from pydantic import AfterValidator

MAX_PAGE = 500
M = TypeVar("M", bound=Model)

# The database's integers are 64-bit signed: a number past them can name no row, and handing
# it to the database would fail there (a 500) instead of here (a 422 naming it).
LARGEST = 2**63 - 1
SMALLEST = -(2**63)
RowId = Annotated[int, Field(ge=SMALLEST, le=LARGEST)]


def _no_nul(text: str) -> str:
    # PostgreSQL cannot compare with NUL either: refuse it by name, not with a 500 there.
    if "\0" in text:
        raise ValueError("must not contain NUL characters")
    return text


# A text query parameter (a filter, a cron expression, a zone).
QueryText = Annotated[
    str, AfterValidator(_no_nul), Field(json_schema_extra={"pattern": r"^[^\x00]*$"})
]
# One that must say something (a cron expression, a zone): empty is refused by the schema.
NeededText = Annotated[
    str,
    AfterValidator(_no_nul),
    Field(min_length=1, json_schema_extra={"pattern": r"^[^\x00]*\S[^\x00]*$"}),
]


class Pages(LimitOffsetPagination):
    """``?limit=&offset=`` (limit 1 to 500, default 100).

    Answers ``{"items": [...], "count": N}``, N counting every match."""

    class Input(Schema):
        limit: int = Field(default=100, ge=1, le=MAX_PAGE)
        offset: int = Field(default=0, ge=0, le=LARGEST)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_limit=MAX_PAGE)


def found(rows: QuerySet[M], pk: int) -> M:
    """The row with this id, or 404 naming what is missing (an id past 64 bits is no row's)."""
    row = rows.filter(pk=pk).first() if SMALLEST <= pk <= LARGEST else None
    if row is None:
        raise HttpError(404, f"no {rows.model._meta.verbose_name} with id {pk}")
    return row
