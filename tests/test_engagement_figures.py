"""Who has read it: HR's engagement figures, the not-yet-acknowledged list and its CSV, the
API's /engagement and the /metrics gauges, for one scripted mix of channels, opens and
acknowledgements across two occurrences.

The mix: six engineers in London and three salespeople in Leeds; an announcement asking for
acknowledgement, by email and in-app, sent twice.

- first send: email sent to everyone but sales2 (still pending), in-app sent to the engineers;
  eng0 opened, eng1 acknowledged by email, eng2 in the inbox, sales0 (reached only by email)
  acknowledged by email, sales1 (reached only by email) opened;
- second send: email sent to eng0 to eng4 only; eng0 acknowledged.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from bulletin.dispatch.planning import tick
from bulletin.domain import engagement as recorded
from bulletin.domain.models import Announcement, Delivery, Employee, Occurrence
from bulletin.domain.roles import ANNOUNCER, EMPLOYEE
from bulletin.interfaces.hr import engagement, engagement_chart, engagement_views
from tests import factories
from tests.test_api import api_for, user_with_role

pytestmark = pytest.mark.django_db


@dataclass
class Mix:
    item: Announcement
    first: Occurrence
    second: Occurrence
    people: dict[str, Employee]


def _people() -> dict[str, Employee]:
    factories.location("London", zone="Europe/London")
    factories.location("Leeds", zone="Europe/London")
    rows = [("eng", n, "Engineering", "London") for n in range(6)]
    rows += [("sales", n, "Sales", "Leeds") for n in range(3)]
    made = Employee.objects.bulk_create(
        Employee(
            email=f"{kind}{n}@example.com",
            # eng3's name would be a formula in a spreadsheet: the CSV must keep it text.
            name="=SUM(1,2)" if (kind, n) == ("eng", 3) else f"{kind.title()} {n}",
            department=department,
            location_id=where,
            timezone="Europe/London",
        )
        for kind, n, department, where in rows
    )
    return {person.email.split("@")[0]: person for person in made}


def _sent(occurrence: Occurrence, channel: str, people: list[Employee]) -> None:
    rows = Delivery.objects.filter(occurrence=occurrence, channel=channel, employee__in=people)
    factories.put(rows, state="sent")


@pytest.fixture
def mix() -> Mix:
    return scripted_mix()


def scripted_mix() -> Mix:
    """The mix the module's docstring describes."""
    people = _people()
    item = factories.created_earlier(channels=("email", "inapp"), requires_ack=True)
    factories.tick_after(item)
    with time_machine.travel(item.created_at + timedelta(seconds=120), tick=False):
        tick()
    first, second = item.occurrences.order_by("fire_at")
    p = people
    engineers = [p[f"eng{n}"] for n in range(6)]
    _sent(first, "email", [*engineers, p["sales0"], p["sales1"]])
    _sent(first, "inapp", engineers)
    _sent(second, "email", engineers[:5])
    at = first.fire_at + timedelta(minutes=5)
    recorded.opened(first.pk, p["eng0"].pk, at)
    recorded.acknowledged(first.pk, p["eng1"].pk, "email", at + timedelta(hours=1))
    recorded.acknowledged(first.pk, p["eng2"].pk, "inapp", at + timedelta(hours=2))
    recorded.acknowledged(first.pk, p["sales0"].pk, "email", at + timedelta(hours=2))
    recorded.opened(first.pk, p["sales1"].pk, at + timedelta(hours=3))
    recorded.acknowledged(second.pk, p["eng0"].pk, "email", at + timedelta(hours=4))
    return Mix(item, first, second, people)


@pytest.fixture
def hr(mix: Mix) -> Client:
    client = Client()
    client.force_login(factories.person("ann", ANNOUNCER))
    return client


# --- the figures ----------------------------------------------------------------------------


def test_the_figures_count_sends_per_channel_people_reached_and_who_opened_and_acknowledged(
    mix: Mix,
) -> None:
    summary = engagement.figures(mix.item)
    first, second = summary.per_occurrence[mix.first.pk], summary.per_occurrence[mix.second.pk]
    assert (first.delivered, first.reached, first.opened, first.acknowledged) == (
        {"email": 8, "inapp": 6},
        8,  # a person sent it by email and in-app is reached once
        5,
        3,
    )
    assert (second.delivered, second.reached, second.opened, second.acknowledged) == (
        {"email": 5},
        5,
        1,
        1,
    )
    total = summary.total
    assert (total.delivered, total.reached, total.opened, total.acknowledged) == (
        {"email": 13, "inapp": 6},
        13,
        6,
        4,
    )
    assert (total.opened_rate, total.acknowledged_rate) == (round(6 / 13, 4), round(4 / 13, 4))


def test_one_occurrences_figures_leave_the_others_out(mix: Mix) -> None:
    summary = engagement.figures(mix.item, mix.second)
    assert list(summary.per_occurrence) == [mix.second.pk]
    assert (summary.total.reached, summary.total.opened, summary.total.acknowledged) == (5, 1, 1)


def test_groups_of_fewer_than_5_people_reached_are_hidden_and_larger_ones_counted(
    mix: Mix,
) -> None:
    departments = {g.name: g for g in engagement.groups(mix.item, "department")}
    engineering, sales = departments["Engineering"], departments["Sales"]
    assert (engineering.reached, engineering.opened, engineering.acknowledged) == (11, 4, 3)
    assert not engineering.fewer_than_5 and sales.fewer_than_5
    locations = {g.name: g for g in engagement.groups(mix.item, "location")}
    assert locations["Leeds"].fewer_than_5 and locations["London"].reached == 11
    # One send alone: five engineers reached by the second, still shown.
    second = {g.name: g for g in engagement.groups(mix.item, "department", mix.second)}
    assert (second["Engineering"].reached, second["Engineering"].fewer_than_5) == (5, False)


def test_the_detail_page_shows_the_figures_the_chart_and_says_why_small_groups_are_hidden(
    hr: Client, mix: Mix
) -> None:
    page = hr.get(f"/hr/{mix.item.pk}/").content.decode()
    assert 'id="total-reached">13<' in page
    assert 'id="total-opened">6 <span class="muted">(46%)' in page
    assert 'id="total-acknowledged">4 <span class="muted">(31%)' in page
    assert "email 13, inapp 6" in page
    by_department = page.split('id="engagement-by-department"')[1].split("</table>")[0]
    assert "Engineering" in by_department and "<td>11</td>" in by_department
    sales = by_department.split("Sales")[1].split("</tr>")[0]
    assert "fewer than 5" in sales and "<td>" not in sales.replace("<td colspan", "")
    assert "a group of fewer than 5 people reached is shown as" in page
    assert "<svg" in page and '<title id="engagement-chart-title">' in page
    assert "Opened (6)" in page and "Acknowledged (4)" in page


def test_the_detail_page_shows_times_in_the_announcements_zone(hr: Client, mix: Mix) -> None:
    page = hr.get(f"/hr/{mix.item.pk}/").content.decode()
    section = page.split('id="engagement-occurrences"')[1].split("</table>")[0]
    local = mix.first.fire_at.astimezone(ZoneInfo("Europe/London"))
    assert f"{local:%H:%M} {local.tzname()}" in section


def test_past_its_limit_the_detail_page_leaves_counting_people_to_the_full_figures_page(
    hr: Client, mix: Mix, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 19 sent deliveries: over a limit of 18 the detail page does not read them one by one.
    monkeypatch.setattr(engagement_views, "DETAIL_SENT_UP_TO", 18)
    page = hr.get(f"/hr/{mix.item.pk}/").content.decode()
    assert 'id="total-reached">—<' in page and 'id="engagement-full-link"' in page
    assert 'id="total-opened">6 ' in page and "email 13, inapp 6" in page
    assert "engagement-by-department" not in page
    full = hr.get(f"/hr/{mix.item.pk}/engagement/").content.decode()
    assert 'id="total-reached">13<' in full and 'id="engagement-by-department"' in full
    assert "engagement-full-link" not in full


# --- the chart --------------------------------------------------------------------------------


def test_the_chart_counts_reads_and_acknowledgements_per_hour_within_three_days(mix: Mix) -> None:
    chart = engagement_chart.timeline(mix.item, ZoneInfo("Europe/London"))
    assert chart is not None and chart.unit == "hour"
    assert (chart.reads.total, chart.acknowledgements.total) == (6, 4)
    # 5 minutes after the first send, then each hour up to the last acknowledgement (+4 h).
    assert len(chart.reads.dots) == 5
    assert "6 people opened it, 4 acknowledged it" in chart.description


def test_the_chart_goes_daily_past_three_days_and_weekly_past_four_months() -> None:
    assert engagement_chart.unit_for(timedelta(days=2)) == "hour"
    assert engagement_chart.unit_for(timedelta(days=10)) == "day"
    assert engagement_chart.unit_for(timedelta(days=200)) == "week"
    zone = ZoneInfo("Europe/London")
    # Across the October clock change each local midnight is its own day, 25 hours apart once.
    first, last = datetime(2026, 10, 24, 12, tzinfo=zone), datetime(2026, 10, 26, 12, tzinfo=zone)
    days = engagement_chart.buckets(first, last, "day", zone)
    assert [d.astimezone(zone).day for d in days] == [24, 25, 26]
    assert days[2] - days[1] == timedelta(hours=25)


def test_an_announcement_nobody_opened_has_no_chart(db: None) -> None:
    item = factories.created_earlier()
    assert engagement_chart.timeline(item, ZoneInfo("UTC")) is None


# --- not yet acknowledged ---------------------------------------------------------------------


def _listed(client: Client, url: str) -> list[str]:
    page = client.get(url).content.decode()
    table = page.split('id="not-acknowledged"')[1].split("</table>")[0]
    return [row.split("@")[0].rsplit(">", 1)[-1] for row in table.split("<tr>")[2:]]


def test_the_not_acknowledged_list_leaves_out_who_acknowledged_by_any_channel(
    hr: Client, mix: Mix
) -> None:
    listed = _listed(hr, f"/hr/{mix.item.pk}/not-acknowledged/")
    # Newest send first, each by name (eng3's "=SUM(1,2)" sorts first): the second send's
    # four, then the first's five (sales1 was reached only by email and is listed; sales0
    # acknowledged by email, eng2 in the inbox; sales2 was never reached).
    assert listed == ["eng3", "eng1", "eng2", "eng4", "eng3", "eng0", "eng4", "eng5", "sales1"]


def test_the_not_acknowledged_list_of_one_send_and_its_pages(
    hr: Client, mix: Mix, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/hr/{mix.item.pk}/not-acknowledged/?occurrence={mix.first.pk}"
    assert _listed(hr, url) == ["eng3", "eng0", "eng4", "eng5", "sales1"]
    monkeypatch.setattr(engagement_views, "PEOPLE_PER_PAGE", 2)
    page = hr.get(url + "&page=3").content.decode()
    assert "Page 3 of 3" in page and f"occurrence={mix.first.pk}&amp;page=2" in page
    assert _listed(hr, url + "&page=3") == ["sales1"]


def test_an_unknown_or_foreign_occurrence_and_an_announcement_not_asking_are_404(
    hr: Client, mix: Mix
) -> None:
    other = factories.fired(requires_ack=True)
    foreign = other.occurrences.get().pk
    assert hr.get(f"/hr/{mix.item.pk}/not-acknowledged/?occurrence={foreign}").status_code == 404
    assert hr.get(f"/hr/{mix.item.pk}/not-acknowledged/?occurrence=abc").status_code == 404
    Announcement.objects.filter(pk=mix.item.pk).update(requires_ack=False)
    assert hr.get(f"/hr/{mix.item.pk}/not-acknowledged/").status_code == 404
    assert hr.get(f"/hr/{mix.item.pk}/not-acknowledged.csv").status_code == 404


def _csv(response: Any) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv"
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_the_csv_export_lists_the_same_people_and_keeps_a_formula_as_text(
    hr: Client, mix: Mix
) -> None:
    response = hr.get(f"/hr/{mix.item.pk}/not-acknowledged.csv")
    assert "not-acknowledged.csv" in response["Content-Disposition"]
    rows = _csv(response)
    assert rows[0] == ["sent_at", "name", "email", "department", "location"]
    assert [row[2].split("@")[0] for row in rows[1:]] == [
        *("eng3", "eng1", "eng2", "eng4"),
        *("eng3", "eng0", "eng4", "eng5", "sales1"),
    ]
    eng3 = next(row for row in rows if row[2] == "eng3@example.com")
    assert eng3[1] == "'=SUM(1,2)" and eng3[3:] == ["Engineering", "London"]
    assert rows[1][0] == mix.second.fire_at.isoformat()


def test_the_csv_export_of_one_send(hr: Client, mix: Mix) -> None:
    rows = _csv(hr.get(f"/hr/{mix.item.pk}/not-acknowledged.csv?occurrence={mix.second.pk}"))
    assert [row[2] for row in rows[1:]] == [f"eng{n}@example.com" for n in (3, 1, 2, 4)]


# --- who may see it -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["not-acknowledged/", "not-acknowledged.csv"])
def test_someone_without_hr_rights_is_refused_and_a_stranger_sent_to_log_in(
    mix: Mix, path: str
) -> None:
    url = f"/hr/{mix.item.pk}/{path}"
    stranger = Client().get(url)
    assert stranger.status_code == 302 and stranger["Location"].startswith("/accounts/login/")
    employee = Client()
    employee.force_login(factories.person("eve", EMPLOYEE))
    refused = employee.get(url)
    assert refused.status_code == 403 and b"eng0@example.com" not in refused.content


# --- the API --------------------------------------------------------------------------------


def test_the_api_gives_totals_occurrences_and_groups_with_small_ones_hidden(
    mix: Mix, django_user_model: Any
) -> None:
    api = api_for(user_with_role(django_user_model, "ann", ANNOUNCER))
    response = api.get(f"/announcements/{mix.item.pk}/engagement")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["total"] == {
        "delivered": {"email": 13, "inapp": 6},
        "reached": 13,
        "opened": 6,
        "acknowledged": 4,
        "opened_rate": round(6 / 13, 4),
        "acknowledged_rate": round(4 / 13, 4),
    }
    assert [o["occurrence_id"] for o in body["occurrences"]] == [mix.second.pk, mix.first.pk]
    assert body["occurrences"][1]["reached"] == 8 and body["requires_ack"] is True
    sales = next(g for g in body["by_department"] if g["name"] == "Sales")
    assert sales == {
        "name": "Sales",
        "fewer_than_5": True,
        "reached": None,
        "opened": None,
        "acknowledged": None,
        "opened_rate": None,
        "acknowledged_rate": None,
    }
    london = next(g for g in body["by_location"] if g["name"] == "London")
    assert (london["fewer_than_5"], london["reached"], london["acknowledged"]) == (False, 11, 3)


def test_the_api_answers_404_in_json_for_an_unknown_announcement_or_occurrence(
    mix: Mix, django_user_model: Any
) -> None:
    api = api_for(user_with_role(django_user_model, "ann", ANNOUNCER))
    missing = api.get("/announcements/999999/engagement")
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]
    foreign = api.get(f"/announcements/{mix.item.pk}/engagement", occurrence_id=999999)
    assert foreign.status_code == 404 and "occurrence" in foreign.json()["detail"]
    one = api.get(f"/announcements/{mix.item.pk}/engagement", occurrence_id=mix.first.pk)
    assert one.json()["total"]["reached"] == 8


# --- /metrics ---------------------------------------------------------------------------------


def test_metrics_give_each_recent_announcements_opened_and_acknowledged(mix: Mix) -> None:
    old = factories.fired()
    Occurrence.objects.filter(announcement=old).update(
        fire_at=mix.first.fire_at - timedelta(days=40)
    )
    recorded.opened(old.occurrences.get().pk, mix.people["eng0"].pk, mix.first.fire_at)
    text = Client().get("/metrics").content.decode()
    samples = {
        (sample.name, sample.labels.get("announcement")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("bulletin_announcement_opened", str(mix.item.pk))] == 6
    assert samples[("bulletin_announcement_acknowledged", str(mix.item.pk))] == 4
    # Sends older than 30 days are left out, so a scrape stays small as history grows.
    assert ("bulletin_announcement_opened", str(old.pk)) not in samples


# --- the queries stay on their indexes ----------------------------------------------------------


def _plan(statement: str, parameters: list[Any]) -> str:
    """The database's plan; on PostgreSQL with sequential scans priced out, so a scan left
    in it means no index could serve the query (a tiny test table would otherwise be
    scanned because that is cheaper, whatever the indexes)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
        explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
        cursor.execute(explain + statement, parameters)
        return " | ".join(str(row[-1]) for row in cursor.fetchall())


def test_the_breakdown_and_the_list_read_the_ledger_and_engagement_by_index(mix: Mix) -> None:
    parameters = engagement.pair_parameters(mix.item, None)
    statements = [
        engagement.not_acknowledged_sql("r.employee_id"),
        engagement.groups_sql("department"),
        engagement.groups_sql("location"),
    ]
    for statement in statements:
        plan = _plan(statement, parameters)
        for table in ("bulletin_delivery", "bulletin_engagement"):
            assert f"SCAN {table} " not in f"{plan} ", plan  # SQLite's words
            assert f"Seq Scan on {table} " not in f"{plan} ", plan  # PostgreSQL's
