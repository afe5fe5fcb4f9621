"""The api service alone (`enerbox run api`) against the session's mosquitto, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, Broker, free_port


@dataclass
class Api:
    """A running api process."""

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        """Resident memory of the process now, in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text("ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


def write_config(tmp: Path, broker: Broker, prefix: str, port: int,
                 api: dict[str, Any] | None = None,
                 sections: dict[str, Any] | None = None) -> Path:
    """An enerbox.yaml (JSON is YAML) for the api alone; ``sections``: others it reads
    (relays, automation)."""
    path = tmp / "enerbox.yaml"
    path.write_text(json.dumps({
        "general": {"data_dir": str(tmp / "data")},
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "api": {"host": "127.0.0.1", "port": port, **(api or {})},
        **(sections or {}),
    }), encoding="utf-8")
    return path


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until something accepts connections on the port (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"api exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


@contextmanager
def run_api(tmp: Path, broker: Broker, prefix: str, api: dict[str, Any] | None = None,
            stderr: Any = subprocess.DEVNULL, sections: dict[str, Any] | None = None,
            ) -> Iterator[Api]:
    """`enerbox run api` on a free port until the block ends."""
    port = free_port()
    config = write_config(tmp, broker, prefix, port, api, sections)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.app.cli", "run", "api", "--config", str(config)],
        cwd=ROOT, env={**os.environ, "ENERBOX_CONFIG": str(config)},
        stdout=subprocess.DEVNULL, stderr=stderr,
    )
    try:
        wait_port(port, proc)
        yield Api(proc, port, tmp / "data")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
