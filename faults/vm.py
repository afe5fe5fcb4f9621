"""VictoriaMetrics as the box's database in a fault run: a real process, read back raw."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path

from faults.procs import Proc, free_port

# Series name -> its samples' millisecond timestamps (duplicates kept: they are counted).
Samples = dict[str, list[int]]


def binary() -> str:
    """Path of victoria-metrics; RuntimeError when it is not installed."""
    found = shutil.which("victoria-metrics") or (
        "/usr/bin/victoria-metrics" if Path("/usr/bin/victoria-metrics").exists() else None)
    if found is None:
        raise RuntimeError("victoria-metrics is not installed: `make faults` installs it")
    return found


class VictoriaMetrics:
    """Run as docs/ARCHITECTURE.md says to run it (dedup of a point written twice, as InfluxDB
    overwrites it); stop/start keep the port and the data."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = Proc("victoria-metrics", [
            binary(), f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={work / 'vm-data'}", "-retentionPeriod=100y",
            "-dedup.minScrapeInterval=1ms", "-search.latencyOffset=0s", "-search.disableCache",
        ], env, work)

    def start(self) -> None:
        """Start and wait for /health."""
        self.proc.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.alive():
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:  # noqa: S310
                    if answer.read().strip() == b"OK":
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"victoria-metrics did not start; see {self.proc.log_path}")

    def stop(self) -> None:
        """A clean stop (it flushes what it accepted)."""
        self.proc.stop(timeout=15)

    def samples(self, service: str) -> Samples:
        """Every raw sample of one service's series, keyed by series (name and labels)."""
        base = self.url  # http://127.0.0.1:<port>, built here: the S310 noqa below
        with urllib.request.urlopen(f"{base}/internal/force_flush", timeout=30):  # noqa: S310
            pass
        query = urllib.parse.urlencode({"match[]": f'{{__name__=~"{service}_.+"}}'})
        with urllib.request.urlopen(f"{base}/api/v1/export?{query}",  # noqa: S310
                                    timeout=60) as answer:
            body = answer.read().decode("utf-8")
        out: Samples = {}
        for line in body.splitlines():
            if line.strip():
                row = json.loads(line)
                # db: the bucket; site: the box's tag (mqtt.prefix), the same on every line.
                labels = {k: v for k, v in row["metric"].items() if k not in ("db", "site")}
                key = json.dumps(labels, sort_keys=True)
                out.setdefault(key, []).extend(int(t) for t in row["timestamps"])
        return out
