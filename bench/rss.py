"""Resident memory of running services fed by simulators, against a real mosquitto."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.net import free_port

ROOT = Path(__file__).resolve().parents[1]


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def measure(label: str, run: list[str], sims: list[list[str]], config: dict[str, Any],
            seconds: float = 15.0) -> None:
    """Start mosquitto, the simulators (``{tmp}`` in their argv is the temp dir) and
    ``enerbox run ...``; print the service process's RSS after ``seconds``."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        print(f"  (skipped {label}: mosquitto not installed)")
        return
    procs: list[subprocess.Popen[bytes]] = []
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                             "cwd": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n", encoding="utf-8")
        config_file = Path(tmp) / "enerbox.yaml"
        text = json.dumps({"mqtt": {"port": port, "prefix": "bench"}, **config})
        config_file.write_text(text.replace("{tmp}", tmp), encoding="utf-8")
        try:
            procs.append(subprocess.Popen([mosquitto, "-c", str(conf)], **quiet))
            for sim in sims:
                args = (a.replace("{tmp}", tmp) for a in sim)
                argv = [sys.executable, "-m", "services.sim", *args]
                procs.append(subprocess.Popen(argv, **quiet))
            time.sleep(1.5)
            service = subprocess.Popen(
                [sys.executable, "-m", "services.app.cli", "run", *run],
                env={**os.environ, "ENERBOX_CONFIG": str(config_file)}, **quiet,
            )
            procs.append(service)
            time.sleep(seconds)
            rss, hwm = rss_kib(service.pid)
            print(f"  RSS {rss / 1024:5.1f} MB (peak {hwm / 1024:.1f} MB)  {label}, "
                  f"after {seconds:g} s")
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(10)


def main() -> None:
    """Print the RSS figures."""
    print("Service memory (RSS), real mosquitto, simulated devices:")
    measure(
        "teleinfo, one standard 3-phase meter", ["teleinfo"],
        [["tic", "--mode", "standard", "--phases", "3", "--tariff", "tempo",
          "--link", "{tmp}/tic0"]],
        {"teleinfo": {"meters": [{"id": "linky", "port": "{tmp}/tic0"}]}},
    )
    devices = [("bmv", "a"), ("mppt", "b"), ("bmv", "c")]
    measure(
        "vedirect, three ports (2 battery monitors, 1 MPPT)", ["vedirect"],
        [["vedirect", "--device", dev, "--serial", f"HQ0000SIM0{s.upper()}",
          "--link", f"{{tmp}}/ve{s}"] for dev, s in devices],
        {"vedirect": {"ports": [{"port": f"{{tmp}}/ve{s}"} for _, s in devices]}},
    )
    measure(
        "enerbox run all (single process): every service, vedirect with 2 ports", ["all"],
        [["tic", "--mode", "standard", "--link", "{tmp}/tic0"],
         ["vedirect", "--device", "bmv", "--link", "{tmp}/vea"],
         ["vedirect", "--device", "mppt", "--link", "{tmp}/veb"]],
        {"teleinfo": {"meters": [{"id": "linky", "port": "{tmp}/tic0"}]},
         "vedirect": {"ports": [{"port": "{tmp}/vea"}, {"port": "{tmp}/veb"}]},
         "api": {"host": "127.0.0.1", "port": free_port(), "token": "bench"},
         "general": {"data_dir": "{tmp}/data"}},
    )
