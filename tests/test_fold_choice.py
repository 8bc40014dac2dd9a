"""A one-off time that happens twice when clocks go back: refused until the admin says which."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from bulletin.scheduling.rules import OneOffRule, ScheduleError, parse_zone, resolve_one_off
from tests import factories

NEW_YORK = parse_zone("America/New_York")
FOLD = datetime(2027, 11, 7, 1, 30)  # 01:30 EDT (05:30Z), then 01:30 EST (06:30Z)


@pytest.mark.parametrize(
    ("fold", "expected"),
    [(0, datetime(2027, 11, 7, 5, 30, tzinfo=UTC)), (1, datetime(2027, 11, 7, 6, 30, tzinfo=UTC))],
)
def test_the_chosen_copy_of_a_repeated_time_is_the_one_that_fires(
    fold: int, expected: datetime
) -> None:
    assert resolve_one_off(OneOffRule(FOLD, fold=fold), NEW_YORK) == expected


def test_without_a_choice_a_repeated_time_is_still_refused() -> None:
    with pytest.raises(ScheduleError, match="occurs twice"):
        resolve_one_off(OneOffRule(FOLD), NEW_YORK)


def test_a_choice_does_not_make_a_gap_time_acceptable() -> None:
    with pytest.raises(ScheduleError, match="does not exist"):
        resolve_one_off(OneOffRule(datetime(2027, 3, 14, 2, 30), fold=1), NEW_YORK)


@pytest.mark.django_db
def test_announce_takes_the_second_copy_with_fold_1(tmp_path: Path) -> None:
    item = factories.announce_cli(
        tmp_path, "--at", "2027-11-07T01:30", "--tz", "America/New_York", "--fold", "1"
    )
    assert item.next_fire_at == datetime(2027, 11, 7, 6, 30, tzinfo=UTC)


@pytest.mark.django_db
def test_announce_without_fold_names_both_choices(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"-04:00.*-05:00"):
        factories.announce_cli(tmp_path, "--at", "2027-11-07T01:30", "--tz", "America/New_York")
