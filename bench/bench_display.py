"""The display's figures: one frame built, rendered and handed to luma's dummy device (per
page and size), and the display service's CPU under make run's screen (a dummy 128x64 display
refreshed every 0.5 s) against a real mosquitto. Key -> command latency is measured by
tests/display/test_service.py against a real broker (51 ms from key up, this machine)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from luma.core.device import dummy

from bench.net import free_port
from services.core.contract import Topics
from services.display.config import PAGES
from services.display.model import BoxTracker
from services.display.pages import ALERTS, Light, Screen
from services.display.render import render, show

ROOT = Path(__file__).resolve().parents[1]
STATES: dict[tuple[str, str], dict[str, Any]] = {
    ("teleinfo", "linky"): {"apparent_power_va": 1630, "net_power_va": -2400,
                            "tariff_period": "blue_hp", "tempo_today": "blue",
                            "tempo_tomorrow": "white"},
    ("inverter", "roof"): {"ac_power_w": 4100, "ac_energy_wh": 12_345_678, "status": "mppt"},
    ("vedirect", "shunt"): {"soc_pct": 87.5, "power_w": 320},
    ("vedirect", "mppt"): {"pv_power_w": 640, "yield_today_kwh": 3.1, "charge_state": "bulk"},
}


def _tracker(now: float) -> BoxTracker:
    tracker = BoxTracker()
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    for (service, device), fields in STATES.items():
        parsed = Topics("enerbox", service).parse(Topics("enerbox", service).state(device))
        assert parsed is not None
        tracker.feed(parsed, json.dumps({**fields, "ts": ts}).encode(), now)
    return tracker


def _frames() -> None:
    now = time.time()
    tracker = _tracker(now)
    print("display: one frame (view + render + show on luma's dummy device):")
    for size in ((128, 64), (128, 32)):
        device = dummy(width=size[0], height=size[1], mode="1")
        for page in (*PAGES, ALERTS):
            times = []
            for _ in range(500):
                t0 = time.perf_counter()
                image = render(tracker.view(now), Screen(page, Light.AWAKE), size)
                show(device, image, Light.AWAKE)
                times.append(time.perf_counter() - t0)
            times.sort()
            print(f"  {size[0]}x{size[1]} {page:8}: median {statistics.median(times) * 1e3:.3f} "
                  f"ms, p99 {times[int(len(times) * 0.99)] * 1e3:.3f} ms")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _service_cpu(seconds: float = 20.0) -> None:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        print("  (skipped: mosquitto not installed)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n", encoding="utf-8")
        config = Path(tmp) / "enerbox.yaml"
        config.write_text(json.dumps({
            "mqtt": {"port": port}, "general": {"data_dir": f"{tmp}/data"},
            "display": {"frames_dir": f"{tmp}/frames",
                        "displays": [{"id": "hall", "backend": "dummy", "page_s": 5}]}}),
            encoding="utf-8")
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                                 "cwd": ROOT}
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], **quiet)
        service = subprocess.Popen(
            [sys.executable, "-m", "services.display"],
            env={**os.environ, "ENERBOX_CONFIG": str(config)}, **quiet)
        try:
            time.sleep(5)  # start-up (imports) left out of the measurement window
            cpu0, t0 = _cpu_s(service.pid), time.monotonic()
            time.sleep(seconds)  # a measurement window
            used = _cpu_s(service.pid) - cpu0
            share = used / (time.monotonic() - t0) * 100
            print(f"display service, a dummy 128x64 screen every 0.5 s and keys polled: "
                  f"{share:.1f} % of a core over {seconds:g} s")
        finally:
            for proc in (service, broker):
                proc.terminate()
                proc.wait(10)


def main() -> None:
    """Print the display figures."""
    _frames()
    _service_cpu()


if __name__ == "__main__":
    main()
