"""API: resident memory under a 200 MB chunked POST (no token), against a real uvicorn.

The body limit (api.max_body_bytes, 16 kB) must hold for streamed bodies: the figure is
the api process's RSS growth while one client pushes 200 MB with Transfer-Encoding:
chunked. Aim: under +5 MB (it was +755 MB before the limit counted streamed bytes).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rss import rss_kib

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def post_chunked(port: int, total: int, chunk: int = 65536) -> tuple[str, int, float]:
    """(status line, bytes the server let us send, seconds) for a chunked POST of ``total``."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"POST /api/relays/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        block = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
        sent = 0
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(block)
                sent += chunk
            if sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b"(reset)"
    return answer.split(b"\r\n", 1)[0].decode("latin-1"), sent, time.perf_counter() - start


def main() -> None:
    """Print the RSS growth of the api under a 200 MB chunked body."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    print("API body limit (200 MB chunked POST, no token, real uvicorn):")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        mqtt_port, api_port = _free_port(), _free_port()
        (tmp / "m.conf").write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n",
                                    encoding="utf-8")
        (tmp / "enerbox.yaml").write_text(json.dumps({
            "general": {"data_dir": str(tmp / "data")}, "mqtt": {"port": mqtt_port},
            "api": {"host": "127.0.0.1", "port": api_port, "token": "bench"}}), encoding="utf-8")
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                                 "cwd": ROOT}
        procs = [subprocess.Popen([mosquitto, "-c", str(tmp / "m.conf")], **quiet)]
        env = {**os.environ, "ENERBOX_CONFIG": str(tmp / "enerbox.yaml")}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "services.app.cli", "run", "api"], env=env, **quiet))
        try:
            _wait_port(api_port)
            before, _ = rss_kib(procs[1].pid)
            status, sent, seconds = post_chunked(api_port, 200 * MB)
            after, _ = rss_kib(procs[1].pid)
            print(f"  {(after - before) / 1024:+.1f} MB RSS  ({before / 1024:.1f} -> "
                  f"{after / 1024:.1f} MB); answer '{status}' after {sent / MB:.1f} MB sent, "
                  f"{seconds * 1000:.0f} ms")
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
