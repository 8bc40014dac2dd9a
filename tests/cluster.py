"""Celery beat and worker processes for one installation, which a test or chaos can kill."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import Installation


@dataclass
class Cluster:
    site: Installation
    beats: list[subprocess.Popen[str]] = field(default_factory=list)
    workers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.site.directory

    def start_beat(self, number: int) -> None:
        schedule = self.site.directory / f"beat-{number}.schedule"
        self.beats.append(
            self.site.start_celery(
                "beat",
                "--schedule",
                str(schedule),
                "--loglevel",
                "WARNING",
                log=self.logs / f"beat-{number}.log",
            )
        )

    def start_worker(self, name: str) -> None:
        self.workers[name] = self.site.start_celery(
            "worker",
            "--pool",
            "solo",
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            log=self.logs / f"{name}.log",
        )

    def kill_worker(self, name: str) -> None:
        """SIGKILL: no cleanup, no acknowledgement — as when a machine dies."""
        process = self.workers[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in [*self.beats, *self.workers.values()]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_until(condition: object, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(every)
    return False
