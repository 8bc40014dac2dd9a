"""One complete, valid example of each request body, shown in the OpenAPI schema.

tests/test_api_schema.py sends each one to a fresh server and expects it to be accepted, so
an example never drifts from what the server takes (and a fuzzer starting from them starts
from requests that work).
"""

from __future__ import annotations

from typing import Any

NEW_ANNOUNCEMENT: dict[str, Any] = {
    "title": "Canteen reopens",
    "body": "The canteen reopens on **Monday**, {{ first_name }}.",
    "audience": {"kind": "department", "values": ["Sales", "Support"], "employee_ids": []},
    "channels": ["email", "inapp"],
    "places": [],
    "schedule": {
        "kind": "cron",
        "cron": "0 9 * * 1-5",
        "at_local": "",
        "at_fold": None,
        "timezone": "Europe/London",
        "per_recipient_zone": False,
    },
    "misfire_grace_minutes": 60,
    "send_late": False,
    "mandatory": False,
    "requires_ack": False,
    "working_hours": True,
    "language": "en",
    "translations": [
        {
            "language": "de",
            "title": "Die Kantine öffnet wieder",
            "body": "Die Kantine öffnet am **Montag** wieder, {{ first_name }}.",
        }
    ],
}

ANNOUNCEMENT_CHANGES: dict[str, Any] = {
    "title": "Canteen reopens on Tuesday",
    "body": "The canteen reopens on **Tuesday**, {{ first_name }}.",
    "audience": {"kind": "all", "values": [], "employee_ids": []},
    "channels": ["email"],
    "places": [],
    "schedule": {
        "kind": "once",
        "at_local": "2099-03-03T09:30",
        "timezone": "Europe/Paris",
        "per_recipient_zone": False,
    },
    "misfire_grace_minutes": 30,
    "send_late": True,
    "mandatory": True,
    "requires_ack": True,
    "working_hours": False,
    "translations": [
        {
            "language": "fr",
            "title": "La cantine rouvre mardi",
            "body": "La cantine rouvre **mardi**, {{ first_name }}.",
            "ask_again": True,
        }
    ],
}

RETRY: dict[str, Any] = {"include_unknown": False}

EMPLOYEES: list[dict[str, Any]] = [
    {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "department": "Engineering",
        "location": "London",
        "timezone": "Europe/London",
        "active": True,
        "away_until": None,
        "slack_user_id": "U012AB3CD",
        "language": "en-GB",
    }
]

NEW_LOCATION: dict[str, Any] = {
    "name": "Pune",
    "timezone": "Asia/Kolkata",
    "country": "IN",
    "subdivision": "MH",
    "working_week": "Mon-Fri 09:00-18:00",
}

LOCATION_CHANGES: dict[str, Any] = {
    "name": "Pune office",
    "timezone": "Asia/Kolkata",
    "country": "IN",
    "subdivision": "MH",
    "working_week": "Mon-Fri 08:00-17:00",
}
