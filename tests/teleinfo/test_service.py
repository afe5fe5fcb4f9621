"""End to end: TIC simulator -> pty -> teleinfo service -> a real mosquitto."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, Broker, Watcher


class Proc:
    """A child process of the test, logged to a file, always cleaned up."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv, self.log_path, self.env = argv, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, **(self.env or {})},
            )
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code, self.proc = self.proc.returncode, None
        return code

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop(signal.SIGKILL)


def sim(tmp_path: Path, procs: list[Proc], *args: str) -> tuple[Proc, Path]:
    link = tmp_path / "tic0"
    proc = Proc([sys.executable, "-m", "services.sim", "tic", "--link", str(link), *args],
                tmp_path / "sim.log")
    procs.append(proc.start())
    deadline = time.monotonic() + 10
    while not link.exists():
        assert time.monotonic() < deadline, proc.log
        time.sleep(0.05)
    return proc, link


def service(tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str, port: str,
            **teleinfo: object) -> Proc:
    config = {
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "homeassistant": {"discovery_prefix": f"{prefix}/ha"},
        "general": {"data_dir": str(tmp_path / "data")},  # its HA id base, not the repo's
        "teleinfo": {
            "meters": [{"id": "linky", "port": port, "mode": "auto"}],
            "offline_after_s": 3,
            "detect_timeout_s": 2,
            "diagnostics_interval_s": 2,
            **teleinfo,
        },
    }
    path = tmp_path / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    proc = Proc([sys.executable, "-m", "services.teleinfo"], tmp_path / "teleinfo.log",
                {"ENERBOX_CONFIG": str(path)})
    procs.append(proc.start())
    return proc


def state_of(w: Watcher, prefix: str, after: int = 0, timeout: float = 20) -> dict[str, object]:
    msg = w.topic(f"{prefix}/teleinfo/linky/state", timeout, after)
    data: dict[str, object] = json.loads(msg.payload)
    return data


@pytest.mark.parametrize(
    ("args", "mode"),
    [
        (("--mode", "standard", "--phases", "3", "--tariff", "tempo", "--speed", "4"),
         "standard"),
        (("--mode", "historique", "--phases", "1", "--tariff", "hc", "--speed", "8"),
         "historique"),
    ],
)
def test_readings_reach_mqtt_with_discovery(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,
    watch: Callable[[str], Watcher], args: tuple[str, ...], mode: str,
) -> None:
    w = watch(f"{prefix}/#")
    _, link = sim(tmp_path, procs, *args)
    svc = service(tmp_path, procs, broker, prefix, str(link))
    base = f"{prefix}/teleinfo/linky"
    state = state_of(w, prefix)
    assert state["tic_mode"] == mode
    assert isinstance(state["energy_import_wh"], int) and state["energy_import_wh"] > 0
    assert isinstance(state["apparent_power_va"], int)
    assert str(state["ts"]).endswith("Z")
    w.payload(f"{base}/availability", b"online")
    w.payload(f"{prefix}/teleinfo/status", b"online")
    power = w.topic(f"{base}/apparent_power_va")
    assert power.payload.isdigit()
    raw = json.loads(w.topic(f"{base}/raw").payload)
    assert ("ADCO" if mode == "historique" else "ADSC") in raw
    events = w.topic(f"{prefix}/teleinfo/events")
    assert json.loads(events.payload)["type"] in {"mode_detected", "device_found"}
    # Retained: a client that subscribes late gets the state, availability and fields.
    late = watch(f"{base}/#")
    msg = late.topic(f"{base}/state")
    assert msg.retain and msg.expiry is not None
    assert late.topic(f"{base}/availability").payload == b"online"
    assert late.topic(f"{base}/energy_import_wh").retain
    diag = json.loads(late.topic(f"{base}/diagnostics", timeout=10).payload)
    assert diag["frames_ok"] >= 1 and diag["groups_bad_checksum"] == 0
    # Home Assistant device discovery, energy counters as total_increasing Wh.
    ha = watch(f"{prefix}/ha/#")
    disc = json.loads(ha.wait_for(lambda m: m.topic.endswith("/config")).payload)
    comps = disc["components"]
    energy = next(c for c in comps.values() if c["state_topic"] == f"{base}/state"
                  and "'energy_import_wh']" in c["value_template"])
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
        "energy", "total_increasing", "Wh")
    assert disc["device"]["serial_number"] == state["meter_id"]
    assert {"topic": f"{base}/availability"} in disc["availability"]
    # Discovery is sent again when Home Assistant comes back online.
    from paho.mqtt import publish

    count = ha.count()
    publish.single(f"{prefix}/ha/status", "online", hostname=broker.host, port=broker.port)
    ha.wait_for(lambda m: m.topic.endswith("/config"), after=count)
    # SIGTERM: clean stop, offline published.
    count = w.count()
    assert svc.stop() == 0
    w.payload(f"{prefix}/teleinfo/status", b"offline", after=count, timeout=5)
    w.payload(f"{base}/availability", b"offline", after=count, timeout=5)
    assert "Traceback" not in svc.log


def test_unplug_and_replug(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,
    watch: Callable[[str], Watcher],
) -> None:
    w = watch(f"{prefix}/#")
    simulator, link = sim(tmp_path, procs, "--mode", "standard", "--speed", "4")
    svc = service(tmp_path, procs, broker, prefix, str(link))
    base = f"{prefix}/teleinfo/linky"
    w.payload(f"{base}/availability", b"online", timeout=20)
    count = w.count()
    simulator.stop()  # the cable is pulled: the pty and its link disappear
    w.payload(f"{base}/availability", b"offline", after=count, timeout=10)
    lost = w.wait_for(lambda m: m.topic.endswith("/events") and b"device_lost" in m.payload,
                      after=count)
    assert json.loads(lost.payload)["device"] == "linky"
    count = w.count()
    simulator.start()  # plugged back: a new pty behind the same path
    w.payload(f"{base}/availability", b"online", after=count, timeout=20)
    state_of(w, prefix, after=count)
    diag = w.wait_for(lambda m: m.topic == f"{base}/diagnostics"
                      and json.loads(m.payload)["reconnects"] >= 1, after=count)
    assert diag
    assert "Traceback" not in svc.log


def test_broker_restart_republishes_state(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,
    watch: Callable[[str], Watcher],
) -> None:
    _, link = sim(tmp_path, procs, "--mode", "standard", "--speed", "4")
    svc = service(tmp_path, procs, broker, prefix, str(link))
    first = watch(f"{prefix}/#")
    state_of(first, prefix)
    broker.stop()  # no persistence: every retained message is gone with it
    time.sleep(1)
    broker.start()
    restarted = time.monotonic()
    late = watch(f"{prefix}/teleinfo/#")
    late.payload(f"{prefix}/teleinfo/status", b"online", timeout=10)
    late.payload(f"{prefix}/teleinfo/linky/availability", b"online", timeout=10)
    late.topic(f"{prefix}/teleinfo/linky/meter_id", timeout=10)
    state_of(late, prefix, timeout=10)
    assert time.monotonic() - restarted < 10
    assert "Traceback" not in svc.log


def test_wrong_port_is_reported_once_and_retried(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,
    watch: Callable[[str], Watcher],
) -> None:
    w = watch(f"{prefix}/#")
    missing = tmp_path / "no-such-tty"
    svc = service(tmp_path, procs, broker, prefix, str(missing), reconnect_max_s=0.5)
    w.payload(f"{prefix}/teleinfo/status", b"online")
    w.payload(f"{prefix}/teleinfo/linky/availability", b"offline")
    # The first diagnostics may come before the first failed open: wait for the one after.
    w.wait_for(lambda m: m.topic == f"{prefix}/teleinfo/linky/diagnostics"
               and f"cannot open {missing}" in (json.loads(m.payload)["last_error"] or ""))
    time.sleep(3)  # several retries
    assert svc.log.count(f"cannot open {missing}") == 1
    assert "Traceback" not in svc.log
    # The port appears (the adapter is plugged in): readings start without a restart.
    subprocess_sim = Proc([sys.executable, "-m", "services.sim", "tic", "--link", str(missing),
                           "--mode", "standard", "--speed", "4"], tmp_path / "sim.log")
    procs.append(subprocess_sim.start())
    w.payload(f"{prefix}/teleinfo/linky/availability", b"online", timeout=20)


def test_broken_config_stops_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "enerbox.yaml"
    path.write_text("teleinfo:\n  meters:\n    - port: /dev/ttyUSB0\n      mode: standrad\n",
                    encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "services.teleinfo"], capture_output=True,
                            text=True, env={**os.environ, "ENERBOX_CONFIG": str(path)},
                            cwd=ROOT, timeout=30, check=False)
    assert result.returncode == 2
    assert "teleinfo.meters.0.mode = 'standrad'" in result.stderr
    assert "Traceback" not in result.stderr


def test_kill_9_takes_the_meter_offline(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,
    watch: Callable[[str], Watcher],
) -> None:
    """The meter's availability has a last will of its own: a dead teleinfo makes
    ``teleinfo/linky/availability`` go offline, not only ``teleinfo/status``."""
    w = watch(f"{prefix}/#")
    _, link = sim(tmp_path, procs, "--mode", "standard", "--speed", "4")
    svc = service(tmp_path, procs, broker, prefix, str(link))
    base = f"{prefix}/teleinfo/linky"
    w.payload(f"{base}/availability", b"online", timeout=20)
    count = w.count()
    killed = time.monotonic()
    svc.stop(signal.SIGKILL)
    offline = w.payload(f"{base}/availability", b"offline", after=count, timeout=60)
    delay = time.monotonic() - killed
    print(f"availability offline {delay * 1000:.0f} ms after kill -9")
    assert offline
    w.payload(f"{prefix}/teleinfo/status", b"offline", after=count, timeout=60)
    # Retained: a consumer that connects later is told too.
    assert watch(f"{base}/availability").topic(f"{base}/availability").payload == b"offline"
