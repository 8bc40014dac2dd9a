"""The admin over the tables that grow with every delivery (deliveries, attempts, inbox items):
a page costs the same queries at any size and never counts a whole table.

Each list is seeded twice, small and ten times larger, with the "exact below" threshold
lowered under both sizes so they take the path a table of millions takes; the queries a page
issues are captured and compared. Seeding writes rows directly (a fixture, not a state change).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulletin.dispatch.ledger import counts
from bulletin.domain.models import (
    Attempt,
    Delivery,
    Employee,
    InboxItem,
    Occurrence,
    OccurrenceState,
)
from bulletin.interfaces import admin_paging
from tests import factories

pytestmark = pytest.mark.django_db

STATES = ("sent", "sent", "sent", "failed", "unknown")  # by position: mostly sent
CHANNELS = ("email", "slack")
LEDGER_TABLES = ("bulletin_delivery", "bulletin_attempt", "bulletin_inboxitem")


@pytest.fixture(autouse=True)
def big_below_twenty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both sizes seeded here (50 and 500) count as big, as a table of millions would."""
    monkeypatch.setattr(admin_paging, "EXACT_UP_TO", 20)


@pytest.fixture
def hr(admin_client: Client) -> Client:
    return admin_client


def seed(deliveries: int, prefix: str = "person") -> Occurrence:
    """One occurrence with ``deliveries`` deliveries (half email, half Slack; one in five
    failed or unknown), each with one attempt and an inbox item; statistics up to date."""
    people = factories.employees(deliveries // len(CHANNELS), prefix=prefix)
    item = factories.created_earlier()
    occurrence = Occurrence.objects.create(
        announcement=item, zone="UTC", fire_at=timezone.now(), state=OccurrenceState.FANNED_OUT
    )
    now = timezone.now()
    rows = [
        Delivery(
            occurrence=occurrence,
            employee=person,
            channel=channel,
            state=STATES[n % len(STATES)],
            attempts=1,
            due_at=now,
        )
        for n, (person, channel) in enumerate((p, c) for c in CHANNELS for p in people)
    ]
    made = Delivery.objects.bulk_create(rows)
    Attempt.objects.bulk_create(
        Attempt(delivery=d, number=1, started_at=now, outcome="sent") for d in made
    )
    InboxItem.objects.bulk_create(
        InboxItem(delivery=d, employee=d.employee, announcement=item, title="t", created_at=now)
        for d in made
    )
    counts.recount()  # rows made here, not by the ledger: its kept counts learn of them
    analyze()
    return occurrence


def analyze() -> None:
    """PostgreSQL's estimate is its statistics, which autovacuum keeps; a test keeps them."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE bulletin_delivery, bulletin_attempt, bulletin_inboxitem")


def whole_table_counts(queries: list[dict[str, Any]]) -> list[str]:
    """Counts over a ledger table that no LIMIT bounds (a WHERE alone can still read it all)."""
    found = []
    for query in queries:
        sql = query["sql"]
        counts = re.search(r"\bCOUNT\(", sql, re.IGNORECASE)
        on_ledger = any(re.search(rf"\b{table}\b", sql) for table in LEDGER_TABLES)
        if counts and on_ledger and not re.search(r"\bLIMIT\b", sql, re.IGNORECASE):
            found.append(sql)
    return found


def page(hr: Client, url: str) -> tuple[str, list[dict[str, Any]]]:
    with CaptureQueriesContext(connection) as captured:
        response = hr.get(url)
    assert response.status_code == 200, url
    return response.content.decode(), captured.captured_queries


LISTS = [
    "/admin/bulletin/delivery/",
    "/admin/bulletin/delivery/?state__exact=unknown",
    "/admin/bulletin/delivery/?channel__exact=slack",
    "/admin/bulletin/delivery/?state__exact=sent&channel__exact=email",
    "/admin/bulletin/delivery/?q=person1%40",
    "/admin/bulletin/attempt/",
    "/admin/bulletin/inboxitem/",
    "/admin/bulletin/inboxitem/?q=person1%40",
]


@pytest.mark.parametrize("url", LISTS)
def test_a_list_page_never_counts_a_whole_ledger_table(hr: Client, url: str) -> None:
    seed(60)
    _, queries = page(hr, url)
    assert whole_table_counts(queries) == []


@pytest.mark.parametrize("url", LISTS)
def test_a_list_page_issues_as_many_queries_at_fifty_rows_as_at_five_hundred(
    hr: Client, url: str
) -> None:
    seed(50)
    _, small = page(hr, url)
    factories.forget(Delivery.objects.all())
    Employee.objects.all().delete()
    seed(500)  # recounts
    _, large = page(hr, url)
    assert len(large) == len(small), [q["sql"][:160] for q in large]


def test_the_third_page_costs_what_the_first_does_and_lists_the_right_deliveries(
    hr: Client,
) -> None:
    seed(500)
    first, first_queries = page(hr, "/admin/bulletin/delivery/")
    third, third_queries = page(hr, "/admin/bulletin/delivery/?p=3")
    newest_first = list(Delivery.objects.order_by("-id").values_list("id", flat=True))
    assert len(third_queries) == len(first_queries)
    assert listed_ids(third) == newest_first[200:300]
    assert listed_ids(first) == newest_first[:100]


def listed_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'href="/admin/bulletin/delivery/(\d+)/change/', html)]


def test_a_delivery_list_is_counted_exactly_from_the_kept_counts(hr: Client) -> None:
    seed(500)
    html, queries = page(hr, "/admin/bulletin/delivery/")
    assert "500 deliveries" in html and "about" not in html
    html, _ = page(hr, "/admin/bulletin/delivery/?state__exact=sent")
    assert "300 deliveries" in html  # past the cap of 20 rows, still exact
    html, _ = page(hr, "/admin/bulletin/delivery/?state__exact=unknown&channel__exact=slack")
    assert "50 deliveries" in html
    assert not [q for q in queries if re.search(r"\bCOUNT\(", q["sql"], re.IGNORECASE)]


def test_the_attempt_and_inbox_lists_show_their_tables_estimated_size(hr: Client) -> None:
    seed(500)
    html, _ = page(hr, "/admin/bulletin/attempt/")
    assert "about 500 attempts" in html
    html, _ = page(hr, "/admin/bulletin/inboxitem/")
    assert "about 500 inbox items" in html


def test_a_searched_big_list_counts_up_to_its_cap_and_says_more_than(hr: Client) -> None:
    seed(500)
    html, _ = page(hr, "/admin/bulletin/delivery/?q=example.com")
    assert "more than 20 deliveries" in html
    assert "More than 50 people match" in html  # only the first 50 people's are read


def test_a_searched_list_under_its_cap_shows_its_exact_count(
    hr: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_paging, "EXACT_UP_TO", 10_000)
    seed(500)
    html, _ = page(hr, "/admin/bulletin/delivery/?q=example.com")
    assert "100 results" in html and "about" not in html and "more than" not in html


def test_the_state_filter_lists_exactly_that_states_deliveries_newest_first(hr: Client) -> None:
    seed(500)
    html, _ = page(hr, "/admin/bulletin/delivery/?state__exact=unknown")
    unknown = Delivery.objects.filter(state="unknown").order_by("-id")
    assert listed_ids(html) == list(unknown.values_list("id", flat=True)[:100])


def test_state_and_channel_together_list_exactly_those_deliveries(hr: Client) -> None:
    seed(500)
    html, _ = page(hr, "/admin/bulletin/delivery/?state__exact=failed&channel__exact=slack")
    chosen = Delivery.objects.filter(state="failed", channel="slack").order_by("-id")
    assert listed_ids(html) == list(chosen.values_list("id", flat=True))


def test_the_channel_filter_is_offered_once_an_indexed_filter_narrows_the_list(
    hr: Client,
) -> None:
    seed(50)
    alone, _ = page(hr, "/admin/bulletin/delivery/")
    narrowed, _ = page(hr, "/admin/bulletin/delivery/?state__exact=sent")
    assert "channel__exact=slack" not in alone
    assert "channel__exact=slack" in narrowed


def test_a_big_delivery_list_counts_each_choice_from_the_kept_counts(hr: Client) -> None:
    seed(500)
    html, _ = page(hr, "/admin/bulletin/delivery/")
    assert "Unknown (interrupted mid-send) (100)" in html and "Sent (300)" in html
    html, _ = page(hr, "/admin/bulletin/delivery/?state__exact=failed")
    assert "Unknown (interrupted mid-send) (100)" in html  # a state's own choices: all states
    assert "Slack (50)" in html  # the channels: as the chosen state narrows them


def test_a_searched_big_list_leaves_its_choices_uncounted_and_a_small_one_does_not(
    hr: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(50)
    big, _ = page(hr, "/admin/bulletin/delivery/?q=person1%40")
    assert "Unknown (interrupted mid-send) (" not in big
    monkeypatch.setattr(admin_paging, "EXACT_UP_TO", 10_000)
    small, _ = page(hr, "/admin/bulletin/delivery/?q=person1%40")
    assert "Unknown (interrupted mid-send) (" in small


def test_sorting_by_an_unindexed_column_is_ignored(hr: Client) -> None:
    seed(50)
    html, queries = page(hr, "/admin/bulletin/delivery/?o=4")  # the state column
    listing = [q["sql"] for q in queries if 'FROM "bulletin_delivery"' in q["sql"]]
    orders = [sql.split("ORDER BY")[-1] for sql in listing if "ORDER BY" in sql]
    assert orders and all("state" not in order for order in orders)
    assert listed_ids(html) == list(Delivery.objects.order_by("-id").values_list("id", flat=True))


def test_a_search_by_a_whole_email_lists_that_persons_deliveries_without_a_like(
    hr: Client,
) -> None:
    seed(50)
    html, queries = page(hr, "/admin/bulletin/delivery/?q=Person1%40Example.com")
    theirs = Delivery.objects.filter(employee__email="person1@example.com").order_by("-id")
    assert listed_ids(html) == list(theirs.values_list("id", flat=True)) != []
    assert not [q["sql"] for q in queries if "bulletin_employee" in q["sql"] and "LIKE" in q["sql"]]


def test_a_search_by_number_finds_that_delivery(hr: Client) -> None:
    seed(50)
    wanted = Delivery.objects.order_by("id")[7]
    html, _ = page(hr, f"/admin/bulletin/delivery/?q={wanted.pk}")
    assert wanted.pk in listed_ids(html)


def test_the_attempt_list_filters_by_delivery(hr: Client) -> None:
    seed(50)
    delivery = Delivery.objects.order_by("id")[3]
    html, _ = page(hr, f"/admin/bulletin/attempt/?delivery__id__exact={delivery.pk}")
    listed = re.findall(r'href="/admin/bulletin/attempt/(\d+)/change/', html)
    assert listed == [str(delivery.attempt_log.get().pk)]


def test_a_delivery_page_costs_the_same_at_any_size_and_lists_no_employees(
    hr: Client,
) -> None:
    seed(50)
    delivery = Delivery.objects.order_by("id").first()
    assert delivery is not None
    page(hr, f"/admin/bulletin/delivery/{delivery.pk}/change/")  # caches warmed
    html, small = page(hr, f"/admin/bulletin/delivery/{delivery.pk}/change/")
    factories.employees(300, prefix="later")
    _, large = page(hr, f"/admin/bulletin/delivery/{delivery.pk}/change/")
    assert len(large) == len(small)
    assert "later7@example.com" not in html and "<select" not in html


def test_a_deliverys_state_cannot_be_changed_in_the_admin(hr: Client) -> None:
    seed(50)
    delivery = Delivery.objects.filter(state="unknown").order_by("id").first()
    assert delivery is not None
    url = f"/admin/bulletin/delivery/{delivery.pk}/change/"
    response = hr.post(url, {"state": "sent", "attempts": 1})
    assert response.status_code == 403
    delivery.refresh_from_db()
    assert delivery.state == "unknown"


def test_a_page_past_what_an_upper_bound_estimate_counted_is_no_error(hr: Client) -> None:
    seed(500)
    # Prune-like gap: an estimate from the id range still counts the deleted middle.
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    factories.forget(Delivery.objects.filter(id__in=ids[100:450]))
    analyze()
    response = hr.get("/admin/bulletin/delivery/?p=5")
    assert response.status_code in (200, 302)  # an empty last page, or Django's "bad page"
    if response.status_code == 200:
        assert listed_ids(response.content.decode()) == []


def test_an_inbox_list_is_newest_first_by_id_not_sorted_by_time(hr: Client) -> None:
    seed(50)
    oldest = InboxItem.objects.order_by("id").first()
    assert oldest is not None
    InboxItem.objects.filter(pk=oldest.pk).update(created_at=timezone.now() + timedelta(hours=1))
    html, _ = page(hr, "/admin/bulletin/inboxitem/")
    listed = [int(pk) for pk in re.findall(r'href="/admin/bulletin/inboxitem/(\d+)/change/', html)]
    assert listed == list(InboxItem.objects.order_by("-id").values_list("id", flat=True))


def test_an_occurrence_links_to_its_deliveries_listed_through_its_index(hr: Client) -> None:
    occurrence = seed(50)
    other = seed(50, prefix="other")
    listing, _ = page(hr, "/admin/bulletin/occurrence/")
    link = f"/admin/bulletin/delivery/?occurrence__id__exact={occurrence.pk}"
    assert f'href="{link}"' in listing
    html, queries = page(hr, link)
    theirs = Delivery.objects.filter(occurrence=occurrence).order_by("-state", "-id")
    assert listed_ids(html) == list(theirs.values_list("id", flat=True))
    assert whole_table_counts(queries) == [] and other.pk != occurrence.pk


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")
@pytest.mark.parametrize("chosen", ["state__exact=sent", "state__exact=unknown", "occurrence"])
def test_a_page_of_a_state_or_an_occurrence_is_read_in_index_order_without_sorting(
    hr: Client, chosen: str
) -> None:
    occurrence = seed(500)
    chosen = chosen.replace("occurrence", f"occurrence__id__exact={occurrence.pk}")
    _, queries = page(hr, f"/admin/bulletin/delivery/?{chosen}")
    listing = [q["sql"] for q in queries if q["sql"].startswith('SELECT "bulletin_delivery"."id"')]
    assert len(listing) == 1
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {listing[0]}")
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    assert "delivery_occurrence_state_idx" in plan and "TEMP B-TREE" not in plan, plan


def test_a_search_naming_too_many_people_says_so_once_and_not_on_the_next_page(
    hr: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_paging, "EXACT_UP_TO", 10_000)  # small: choices counted too
    seed(500)
    html, _ = page(hr, "/admin/bulletin/delivery/?q=example.com")
    assert html.count("More than 50 people match") == 1
    after, _ = page(hr, "/admin/bulletin/delivery/")
    assert "More than 50 people match" not in after
