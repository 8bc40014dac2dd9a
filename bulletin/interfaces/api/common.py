"""Small pieces every router uses: pagination and 404s."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet
from ninja import Field, Schema
from ninja.errors import HttpError
from ninja.pagination import LimitOffsetPagination

MAX_PAGE = 500
M = TypeVar("M", bound=Model)


class Pages(LimitOffsetPagination):
    """``?limit=&offset=`` (limit 1 to 500, default 100).

    Answers ``{"items": [...], "count": N}``, N counting every match."""

    class Input(Schema):
        limit: int = Field(default=100, ge=1, le=MAX_PAGE)
        offset: int = Field(default=0, ge=0)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_limit=MAX_PAGE)


def found(rows: QuerySet[M], pk: int) -> M:
    """The row with this id, or 404 naming what is missing."""
    row = rows.filter(pk=pk).first()
    if row is None:
        raise HttpError(404, f"no {rows.model._meta.verbose_name} with id {pk}")
    return row
