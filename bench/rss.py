"""Resident memory of a running service fed by a simulator, against a real mosquitto."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def teleinfo_rss(seconds: float = 15.0) -> None:
    """Run mosquitto + TIC simulator + teleinfo service; print the service's RSS."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        print("  (skipped RSS: mosquitto not installed)")
        return
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n", encoding="utf-8")
        link = Path(tmp) / "tic0"
        config = Path(tmp) / "enerbox.yaml"
        config.write_text(json.dumps({
            "mqtt": {"port": port, "prefix": "bench"},
            "teleinfo": {"meters": [{"id": "linky", "port": str(link)}]},
        }), encoding="utf-8")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
        try:
            procs.append(subprocess.Popen([mosquitto, "-c", str(conf)], **quiet))  # type: ignore[call-overload]
            procs.append(subprocess.Popen(  # type: ignore[call-overload]
                [sys.executable, "-m", "services.sim", "tic", "--mode", "standard", "--phases",
                 "3", "--tariff", "tempo", "--link", str(link)], **quiet))
            time.sleep(1.0)
            service = subprocess.Popen(  # type: ignore[call-overload]
                [sys.executable, "-m", "services.teleinfo"],
                env={**os.environ, "ENERBOX_CONFIG": str(config)}, **quiet)
            procs.append(service)
            time.sleep(seconds)
            rss, hwm = rss_kib(service.pid)
            print(f"teleinfo service, one standard 3-phase meter, {seconds:g} s of frames:")
            print(f"  RSS {rss / 1024:.1f} MB (peak {hwm / 1024:.1f} MB)")
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(10)
