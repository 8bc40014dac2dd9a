"""`bulletin run` as a person starts it: one process serving the admin, planning and sending."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from tests.harness import Installation, free_port
from tests.processes import announce_every_minute

pytestmark = pytest.mark.slow


class Output:
    """Collects a process's stdout lines on a thread so the test can wait for one."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.lines) < count:
            assert time.monotonic() < deadline, f"no {count}x {text!r} in {self.lines[-20:]}"
            time.sleep(0.1)


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_run_serves_the_admin_and_prints_each_email_once(installation: Installation) -> None:
    announce_every_minute(installation, 5)
    port = free_port()
    installation.env.update(BULLETIN_TICK_SECONDS="1")
    process = installation.start("run", "--port", str(port))
    output = Output(process)
    try:
        output.wait_for("Bulletin is running")
        status, page = get(f"http://127.0.0.1:{port}/admin/login/")
        assert status == 200 and "Bulletin" in page
        assert get(f"http://127.0.0.1:{port}/static/admin/css/base.css")[0] == 200
        assert any("created admin user 'admin'" in line for line in output.lines)
        output.wait_for("Subject: Stand-up", count=5)
        time.sleep(2)  # a few more planner and dispatcher passes must not resend anything
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
    message_ids = [line for line in output.lines if line.startswith("Message-ID:")]
    assert len(message_ids) == len(set(message_ids))
    occurrences = installation.sql("SELECT count(*) FROM bulletin_occurrence")[0][0]
    sent = installation.sql("SELECT count(*) FROM bulletin_delivery WHERE state = 'sent'")[0][0]
    # Normally one occurrence; a second one if the test straddled a minute boundary, whose
    # deliveries may still have been queued when the process was stopped.
    assert sent == len(message_ids)
    assert 5 <= sent <= 5 * occurrences
