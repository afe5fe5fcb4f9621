"""What the benchmarks share: free ports, waiting for one to open, and an api on a broker."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass(frozen=True)
class ApiStack:
    """A mosquitto and `enerbox run api` on free ports."""

    mqtt_port: int
    api_port: int
    api_pid: int


@contextmanager
def api_stack() -> Iterator[ApiStack]:
    """Start a broker and the api (prefix ``enerbox``, write token ``bench``) until the block
    ends; returns once the api's port is open."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                             "cwd": ROOT}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        mqtt_port, api_port = free_port(), free_port()
        (tmp / "m.conf").write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n"
                                    "set_tcp_nodelay true\n", encoding="utf-8")
        (tmp / "enerbox.yaml").write_text(json.dumps({
            "general": {"data_dir": str(tmp / "data")}, "mqtt": {"port": mqtt_port},
            "api": {"host": "127.0.0.1", "port": api_port, "token": "bench"}}), encoding="utf-8")
        procs = [subprocess.Popen([mosquitto, "-c", str(tmp / "m.conf")], **quiet)]
        try:
            wait_port(mqtt_port)
            env = {**os.environ, "ENERBOX_CONFIG": str(tmp / "enerbox.yaml")}
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "services.app.cli", "run", "api"], env=env, **quiet))
            wait_port(api_port)
            yield ApiStack(mqtt_port, api_port, procs[1].pid)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(10)
