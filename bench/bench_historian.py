"""Historian: points/s from MQTT into VictoriaMetrics (InfluxDB write API), time to drain a
10-minute backlog (when it starts, its points/s), and the local history's bytes written per
simulated day."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.net import free_port
from services.core.history.tariffs import TariffBook
from services.historian.checkpoint import Checkpoint
from services.historian.history import LocalHistory
from services.historian.ledger import Ledger
from services.historian.points import flatten
from services.historian.service import COMMIT_GRACE_S

ROOT = Path(__file__).resolve().parents[1]
# An hour ago: the historian refuses readings far from its clock (max_clock_skew_s).
T0 = float(int(time.time()) // 60 * 60 - 3600)  # a minute boundary
OUTAGE_S = 20.0  # the database outage of the backlog figure
INDEXES = ("blue_hc", "blue_hp", "white_hc", "white_hp", "red_hc", "red_hp")


def state(i: int) -> dict[str, Any]:
    """A three-phase standard Tempo reading: 11 lines of line protocol."""
    return {"apparent_power_va": 3000 + i % 500, "subscribed_power_kva": 12,
            "current_a": [4, 5, 6], "voltage_v": [230, 231, 229],
            "apparent_power_phase_va": [900, 1100, 1000], "overload": False,
            "energy_import_wh": 20_000_000 + i,
            "energy_import_by_index_wh": dict.fromkeys(INDEXES, 1000000 + i),
            # 10 ms apart: VictoriaMetrics' 1 ms dedup keeps one sample per millisecond
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(T0 + i // 100))
            + f"{(i % 100) * 10:03d}Z"}


class Stack:
    """mosquitto + VictoriaMetrics + a historian process, in a temp dir."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.mqtt_port, self.vm_port = free_port(), free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        (tmp / "mosquitto.conf").write_text(
            f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
            "max_queued_messages 1000000\n", encoding="utf-8")
        config = {"general": {"data_dir": str(tmp / "data")},
                  "mqtt": {"port": self.mqtt_port, "prefix": "bench"},
                  "historian": {"influxdb": {"enabled": True, "token": "x",
                                             "url": f"http://127.0.0.1:{self.vm_port}"}}}
        (tmp / "enerbox.yaml").write_text(json.dumps(config), encoding="utf-8")

    def start(self, name: str) -> None:
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                                 "cwd": ROOT}
        argv = {
            "mosquitto": [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                          str(self.tmp / "mosquitto.conf")],
            "vm": ["victoria-metrics", f"-httpListenAddr=127.0.0.1:{self.vm_port}",
                   f"-storageDataPath={self.tmp / 'vm'}", "-dedup.minScrapeInterval=1ms",
                   "-retentionPeriod=100y"],
            "historian": [sys.executable, "-m", "services.historian"],
        }[name]
        env = {**os.environ, "ENERBOX_CONFIG": str(self.tmp / "enerbox.yaml")}
        self.procs[name] = subprocess.Popen(argv, env=env, **quiet)
        time.sleep(1.0)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.terminate()
            proc.wait(10)

    def wait_healthy(self, timeout: float) -> float:
        """When VictoriaMetrics answers /health (polled every 50 ms)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{self.vm_port}/health"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.read().strip() == b"OK":
                        return time.monotonic()
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError("victoria-metrics did not answer /health")

    def count(self) -> int:
        """Samples of one index series in VictoriaMetrics (one per published state)."""
        url = f"http://127.0.0.1:{self.vm_port}"
        urllib.request.urlopen(f"{url}/internal/force_flush", timeout=10).read()
        query = urllib.parse.urlencode({
            "match[]": 'teleinfo_energy_import_by_index_wh{index="red_hp"}'})
        body = urllib.request.urlopen(f"{url}/api/v1/export?{query}", timeout=30).read()
        return sum(len(json.loads(line)["values"]) for line in body.splitlines() if line)


def _publish(port: int, start: int, count: int) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    info = None
    for i in range(start, start + count):
        info = client.publish("bench/teleinfo/linky/state", json.dumps(state(i)), qos=1)
    if info is not None:
        info.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()


def _wait_count(stack: Stack, want: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while stack.count() < want:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{stack.count()} of {want} points after {timeout} s")
        time.sleep(0.2)
    return time.monotonic()


def throughput_and_backlog() -> None:
    """Print points/s into VictoriaMetrics and the drain time of a backlog."""
    lines_per_state = len(flatten("teleinfo", "linky", state(0), T0))
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp_name:
        stack = Stack(Path(tmp_name))
        try:
            for name in ("mosquitto", "vm", "historian"):
                stack.start(name)
            n = 20_000
            start = time.monotonic()
            _publish(stack.mqtt_port, 0, n)
            end = _wait_count(stack, n, 300)
            rate = n * lines_per_state / (end - start)
            print(f"  {rate:>10,.0f} points/s  MQTT -> historian -> VictoriaMetrics "
                  f"({n:,} states of {lines_per_state} points)")
            # A 10-minute backlog of a Linky (1 frame / 1.3 s), two Victron devices and an
            # inverter (1 / s each): about 2,300 states, 25,000 points.
            stack.stop("vm")
            down = time.monotonic()
            backlog = 2300
            _publish(stack.mqtt_port, n, backlog)
            # All in the historian's disk queue, and down long enough that the sink's
            # backoff (1, 2, 4, 8 s...) has grown past 5 s: its probe must cut it short.
            time.sleep(max(2.0, OUTAGE_S - (time.monotonic() - down)))
            restart = time.monotonic()
            stack.start("vm")
            back = stack.wait_healthy(30)
            first = _wait_count(stack, n + 1, 300)
            end = _wait_count(stack, n + backlog, 300)
            print(f"  {end - restart:>10.1f} s        to drain a 10-minute backlog "
                  f"({backlog * lines_per_state:,} points) once the database is back "
                  "(1 s of it is the database starting)")
            print(f"  {first - back:>10.1f} s        backlog drain start after the database "
                  f"returns (after a {OUTAGE_S:.0f} s outage)")
            rate = backlog * lines_per_state / max(end - first, 1e-3)
            print(f"  {rate:>10,.0f} points/s  drain throughput of that backlog")
        finally:
            for name in ("historian", "vm", "mosquitto"):
                stack.stop(name)


def bytes_per_day(hours: float = 1.0, *, force: bool = False) -> None:
    """The local history and ledger's writes for a Linky, two Victrons and an inverter, as the
    service commits them: 2 s after each minute, with the delivery marks; ``force`` writes
    the open minute too at each commit."""
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp_name:
        history = LocalHistory(Path(tmp_name) / "h.sqlite3")
        ledger = Ledger(history, TariffBook())
        checkpoint = Checkpoint(history, ledger)
        devices = {
            ("teleinfo", "linky"): state(0),
            ("vedirect", "bmv"): {f"f{i}_v": 12.5 for i in range(20)},
            ("vedirect", "mppt"): {f"f{i}_w": 100.0 for i in range(20)},
            ("inverter", "sma"): {f"f{i}_w": 200.0 for i in range(19)},
        }
        before = _written()
        seconds = int(hours * 3600)
        for t in range(seconds):
            ts = T0 + t
            for (service, device), values in devices.items():
                checkpoint.take(service, device, ts)
                noisy = {k: (v + t % 7 if isinstance(v, float) else v) for k, v in values.items()}
                for point in flatten(service, device, noisy, ts):
                    history.add(point)
                checkpoint.hold(_no_ack, ts)
            ledger.observe_meter("linky", ts, {"base": 1_000_000 + t}, None, "x")
            if t % 60 == int(COMMIT_GRACE_S):  # the service's cadence (T0 is a minute)
                checkpoint.commit(ts + 1, force=force)
        written = _written() - before
        history.close()
    how = "open minute written at each commit" if force else "closed minutes"
    print(f"  {written * 24 / hours / 1e6:>10.1f} MB/day  local history + ledger writes, "
          f"{how} (/proc/self/io, {hours:g} simulated hour(s) x {24 / hours:g})")


def _no_ack() -> None:
    """Nothing to acknowledge: no broker here."""


def _written() -> int:
    for line in Path("/proc/self/io").read_text(encoding="ascii").splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    """Print the historian figures."""
    print("Historian:")
    if not shutil.which("victoria-metrics"):
        print("  (skipped throughput: victoria-metrics not installed)")
    else:
        throughput_and_backlog()
    bytes_per_day()
