"""The HR screens' page links (bulletin/hr/_pagination.html), one include for every list: its
words, its links and what they carry, as each screen asks for them. The screens' own pages are
test_hr_views' (the dashboard) and test_suppressions' (an address search kept across pages)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.paginator import Paginator
from django.template.loader import render_to_string

INCLUDE = "bulletin/hr/_pagination.html"


def links(html: str) -> list[tuple[str, str, str]]:
    """(rel, href, words) of each link, in order."""
    found = re.findall(r'<a href="([^"]*)" rel="(prev|next)">([^<]*)</a>', html)
    return [(rel, href, words) for href, rel, words in found]


def page_of(number: int, pages: int = 3) -> Any:
    return Paginator(range(pages), 1).get_page(number)


@pytest.mark.parametrize(
    ("context", "label", "expected"),
    [
        (  # a plain list (suppressions, not acknowledged): Previous / Next
            {},
            "Pages",
            [("prev", "?page=1", "Previous"), ("next", "?page=3", "Next")],
        ),
        (  # the list's other parameters ride along, escaped
            {"query": "address=a&b@example.com&"},
            "Pages",
            [
                ("prev", "?address=a&amp;b@example.com&amp;page=1", "Previous"),
                ("next", "?address=a&amp;b@example.com&amp;page=3", "Next"),
            ],
        ),
        (  # send times, newest first (the detail page), landing on its section
            {"label": "Send times", "by_time": True, "anchor": "#deliveries"},
            "Send times",
            [("prev", "?page=1#deliveries", "Newer"), ("next", "?page=3#deliveries", "Older")],
        ),
    ],
)
def test_a_middle_page_links_both_ways_in_the_words_of_its_list(
    context: dict[str, Any], label: str, expected: list[tuple[str, str, str]]
) -> None:
    html = render_to_string(INCLUDE, {"page": page_of(2), **context})

    assert f'aria-label="{label}"' in html
    assert links(html) == expected
    assert "Page 2 of 3" in html


def test_the_first_and_last_pages_link_only_one_way_and_one_page_shows_nothing() -> None:
    first = render_to_string(INCLUDE, {"page": page_of(1)})
    last = render_to_string(INCLUDE, {"page": page_of(3)})
    alone = render_to_string(INCLUDE, {"page": page_of(1, pages=1)})

    assert [rel for rel, *_ in links(first)] == ["next"]
    assert [rel for rel, *_ in links(last)] == ["prev"]
    assert "pagination" not in alone
