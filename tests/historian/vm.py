"""A real VictoriaMetrics for tests: its own port and data dir, stoppable to fake an outage."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port


def _binary() -> str | None:
    found = shutil.which("victoria-metrics")
    if found is None and Path("/usr/bin/victoria-metrics").exists():
        found = "/usr/bin/victoria-metrics"
    return found


@dataclass
class Series:
    """One exported series: labels (with __name__), values and millisecond timestamps."""

    labels: dict[str, str]
    values: list[float]
    timestamps: list[int]


class VM:
    """A victoria-metrics process; stop() and start() keep its port and data."""

    def __init__(self, workdir: Path, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = workdir / "vm-data"
        self.log_path = workdir / "vm.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, dedup: bool = False) -> None:
        """Start it and wait for /health.

        Without ``dedup``, a sample written twice is stored twice: tests see every duplicate.
        """
        argv = [
            self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.data}", "-retentionPeriod=100y",
            # A point is queryable as soon as it is flushed, and no stale cached answers.
            "-search.latencyOffset=0s", "-search.disableCache",
        ]
        if dedup:
            argv.append("-dedup.minScrapeInterval=1ms")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.read().strip() == b"OK":
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"victoria-metrics did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop it gracefully (it flushes what it accepted) and wait for the exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self) -> str:
        """The end of its log."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]

    def _get(self, path: str, **params: str) -> bytes:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as response:
            body: bytes = response.read()
            return body

    def export(self, match: str) -> list[Series]:
        """Every raw sample of the series matching a selector (after a flush)."""
        # Accepted rows sit in memory for about a second; force_flush makes them searchable.
        self._get("/internal/force_flush")
        body = self._get("/api/v1/export", **{"match[]": match})
        series = []
        for line in body.decode("utf-8").splitlines():
            if line.strip():
                row: dict[str, Any] = json.loads(line)
                series.append(Series(row["metric"], row["values"], row["timestamps"]))
        return sorted(series, key=lambda s: sorted(s.labels.items()))


@contextmanager
def victoria_metrics(tmp_path: Path, *, dedup: bool = False) -> Iterator[VM]:
    """A running VictoriaMetrics in ``tmp_path``; killed on the way out."""
    binary = _binary()
    if binary is None:
        pytest.skip("victoria-metrics is not installed (`make test` installs it with apt-get)")
    vm = VM(tmp_path, binary)
    try:
        vm.start(dedup=dedup)
        yield vm
    finally:
        vm.stop()
