"""scim2-tester (the python-scim project's RFC 7643/7644 checker) against Bulletin's SCIM
server, served for real by pytest-django's ``live_server`` and spoken to over HTTP on loopback
by scim2-client, exactly as an identity provider would.

The checker discovers the server from its own /ServiceProviderConfig, /ResourceTypes and
/Schemas (nothing is described to it beforehand), then creates, reads, lists, searches,
replaces, patches (add, replace, remove of every attribute the schema publishes) and deletes
Users. Every check must pass: none is allowed to be skipped, since every feature it skips for
(PATCH, attribute selection) is one Bulletin declares supported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from bulletin.domain.models import ApiToken, AuditEvent, Employee
from bulletin.domain.roles import ADMINISTRATOR
from tests import factories

log = logging.getLogger(__name__)


@pytest.fixture
def scim_client(live_server: Any, transactional_db: None) -> Iterator[SyncSCIMClient]:
    admin = factories.person("idp", ADMINISTRATOR)
    raw = ApiToken.issue(admin, "identity provider", ["scim"])[1]
    headers = {"Authorization": f"Bearer {raw}"}
    with httpx2.Client(base_url=f"{live_server.url}/scim/v2", headers=headers) as http:
        yield SyncSCIMClient(http)


def test_scim2_tester_finds_every_check_of_the_rfcs_passing(scim_client: SyncSCIMClient) -> None:
    results = check_server(scim_client)
    failures = [result for result in results if result.status != Status.SUCCESS]
    for failure in failures:
        log.error("%s: %s: %s", failure.title, failure.status, failure.reason)
    assert results and not failures, "\n".join(
        f"{failure.title} [{failure.status}]: {failure.reason}" for failure in failures
    )
    # Discovery found Users and every kind of check ran on them (58 checks in scim2-tester
    # 0.5.2): a server the checker could not describe would pass having checked nothing.
    ran = {result.title for result in results if result.resource_type == "User"}
    assert {
        "object_creation",
        "object_query_without_id",
        "search_with_attributes",
        "object_replacement",
        "object_deletion",
        "check_add_attribute",
        "check_remove_attribute",
        "check_replace_attribute",
    } <= ran
    # The checker created, changed and deleted Users: each change is in the audit log, and a
    # deleted User is an inactive employee, never a removed one.
    assert AuditEvent.objects.filter(action="provisioned").exists()
    assert Employee.objects.filter(active=False, scim_deleted_at__isnull=False).exists()
