import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from bulletin.conf import SITE_URL_FALLBACK
from bulletin.interfaces.management.base import BulletinCommand
from bulletin.runners.embedded import serve


class Command(BulletinCommand):
    help = "Run everything on one machine: web admin, planner and dispatcher."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        self._warn_without_site_url()
        self._migrate_if_needed()
        self._ensure_admin()
        serve(host, port, ready=self._announce)

    def _announce(self, url: str) -> None:
        self.stdout.write(f"Bulletin is running on {url}admin/ (Ctrl+C stops)")
        self.stdout.flush()

    def _warn_without_site_url(self) -> None:
        """Links in messages (unsubscribe, the web view) must reach people's own machines,
        and mailbox providers offer one-click unsubscribe only for https links (RFC 8058)."""
        site_url = settings.BULLETIN.site_url
        if not site_url:
            self.stderr.write(
                "warning: BULLETIN_SITE_URL is not set: links in messages point at "
                f"{SITE_URL_FALLBACK}, which works only on this machine"
            )
        elif not site_url.startswith("https://"):
            self.stderr.write(
                "warning: BULLETIN_SITE_URL is not https: mailbox providers offer one-click "
                "unsubscribe only for https links"
            )

    def _migrate_if_needed(self) -> None:
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write("database migrated")

    def _ensure_admin(self) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write("log in with your admin account (`bulletin changepassword NAME`)")
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser("admin", "admin@localhost", password)
        stored = settings.VAR_DIR / "initial_admin_password"
        stored.write_text(password + "\n")
        stored.chmod(0o600)
        self.stdout.write(f"created admin user 'admin' with password {password} (also in {stored})")
