"""Shared fixtures: a real SMTP server on loopback, servers from scripts/services.sh, and
Bulletin as a subprocess on a database of its own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bulletin import conf
from bulletin.domain import roles
from tests import factories
from tests.harness import (
    Installation,
    SmtpSink,
    installation_at,
    postgres_database,
    smtp_server,
)


def require_server(name: str, variable: str) -> str:
    """The server's URL; without one, skip by hand but fail in CI, which always has them."""
    if url := os.environ.get(variable):
        return url
    message = f"{name} is not running: `scripts/services.sh up` starts it and writes {variable}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    reason = "scale-out tests run against PostgreSQL (DATABASE_URL=postgres://…)"
    for item in items:
        if "scale_out" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """After every test that used the database, the kept delivery counts still equal a fresh
    GROUP BY of the ledger: whatever the test did to deliveries, it did through the ledger
    (or one saved at a time), or this says which counts drifted."""
    result = yield
    uses_db = {"db", "transactional_db", "live_server"} & set(getattr(item, "fixturenames", ()))
    broken_on_purpose = item.get_closest_marker("ledger_broken_on_purpose")
    if (uses_db or item.get_closest_marker("django_db")) and not broken_on_purpose:
        from bulletin.dispatch.ledger import counts

        drift = counts.check()
        assert not drift, f"kept counts differ from the ledger (kept, counted): {drift}"
    return result


CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Real headless Chromium (Debian's build, driven by Playwright)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls made here are
    # ordinary blocking ones, so tell Django not to refuse them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


# People in each role (the groups come from bulletin.domain.roles after migrate).
@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a browser test saves its screenshots: docs/screenshots/ when
    BULLETIN_SCREENSHOTS=1 (to refresh the README's pictures), else the test's scratch folder."""
    if os.environ.get("BULLETIN_SCREENSHOTS") == "1":
        folder = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path


@pytest.fixture
def ann(db: None) -> Any:
    """An announcer."""
    return factories.person("ann", roles.ANNOUNCER)


@pytest.fixture
def april(db: None) -> Any:
    """An approver."""
    return factories.person("april", roles.APPROVER)


@pytest.fixture
def eve(db: None) -> Any:
    """An employee: the inbox only."""
    return factories.person("eve", roles.EMPLOYEE)


@pytest.fixture
def ada(db: None) -> Any:
    """An administrator."""
    return factories.person("ada", roles.ADMINISTRATOR)


@pytest.fixture
def approval_required(settings: Any) -> None:
    settings.BULLETIN = replace(conf.load({}), require_approval=True)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with smtp_server() as sink:
        yield sink


@pytest.fixture
def smtp_settings(settings: Any, smtp_sink: SmtpSink) -> SmtpSink:
    """Point Django's SMTP backend at the loopback server."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_sink.host
    settings.EMAIL_PORT = smtp_sink.port
    settings.EMAIL_TIMEOUT = 10
    return smtp_sink


@contextmanager
def own_database(tmp_path: Path, copy_of: str = "") -> Iterator[str]:
    """A database URL for subprocesses: a SQLite file, or a new PostgreSQL database when the
    suite itself runs on PostgreSQL; empty, or a copy of the database at ``copy_of``."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        target = tmp_path / "bulletin.sqlite3"
        if copy_of:
            source = Path(copy_of.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):  # a WAL not yet checkpointed holds rows too
                if (part := source.with_name(source.name + suffix)).exists():
                    shutil.copyfile(part, target.with_name(target.name + suffix))
        yield f"sqlite:///{target}"
        return
    user, host, port = database["USER"], database["HOST"], database["PORT"]
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    server = f"postgres://{user}{password}@{host}:{port}/postgres"
    with postgres_database(server, template=copy_of.rsplit("/", 1)[-1] if copy_of else "") as url:
        yield url


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database that every installation starts as a copy of: migrating takes a
    subprocess a few seconds, copying a file or a PostgreSQL template a fraction of one."""
    directory = tmp_path_factory.mktemp("migrated")
    with own_database(directory) as url:
        installation_at(directory, url)
        yield url


@pytest.fixture
def installation(tmp_path: Path, migrated_database: str) -> Iterator[Installation]:
    with own_database(tmp_path, copy_of=migrated_database) as url:
        yield installation_at(tmp_path, url, migrate=False)
