"""End to end: VE.Direct simulators -> ptys -> vedirect service -> a real mosquitto."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Broker, Watcher, vedirect_fixture
from tests.teleinfo.test_service import Proc


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop(signal.SIGKILL)


def sim(tmp_path: Path, procs: list[Proc], name: str, *args: str) -> tuple[Proc, Path]:
    link = tmp_path / name
    proc = Proc([sys.executable, "-m", "services.sim", "vedirect", "--link", str(link), *args],
                tmp_path / f"sim-{name}.log")
    procs.append(proc.start())
    deadline = time.monotonic() + 10
    while not link.exists():
        assert time.monotonic() < deadline, proc.log
        time.sleep(0.05)
    return proc, link


def service(tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,
            ports: list[dict[str, str]]) -> Proc:
    config = {
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "homeassistant": {"discovery_prefix": f"{prefix}/ha"},
        "general": {"data_dir": str(tmp_path / "data")},  # its HA id base, not the repo's
        "vedirect": {"ports": ports, "offline_after_s": 3, "diagnostics_interval_s": 2},
    }
    path = tmp_path / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    proc = Proc([sys.executable, "-m", "services.vedirect"], tmp_path / "vedirect.log",
                {"ENERBOX_CONFIG": str(path)})
    procs.append(proc.start())
    return proc


def state(w: Watcher, topic: str, after: int = 0, timeout: float = 20) -> dict[str, object]:
    data: dict[str, object] = json.loads(w.topic(topic, timeout, after).payload)
    return data


def test_two_ports_unplug_one_while_the_other_keeps_publishing(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,
    watch: Callable[[str], Watcher],
) -> None:
    w = watch(f"{prefix}/#")
    bmv, bmv_link = sim(tmp_path, procs, "ve0", "--device", "bmv", "--serial", "HQ0000SIMA1",
                        "--speed", "4")
    _, mppt_link = sim(tmp_path, procs, "ve1", "--device", "mppt", "--serial", "HQ0000SIMB2",
                       "--speed", "4")
    svc = service(tmp_path, procs, broker, prefix,
                  [{"port": str(bmv_link)}, {"port": str(mppt_link), "name": "Roof MPPT"}])
    a, b = f"{prefix}/vedirect/hq0000sima1", f"{prefix}/vedirect/hq0000simb2"
    monitor = state(w, f"{a}/state")
    assert 0 <= float(monitor["soc_pct"]) <= 100  # type: ignore[arg-type]
    assert "h4_charge_cycles" in monitor  # main and history blocks merged
    charger = state(w, f"{b}/state")
    assert charger["serial"] == "HQ0000SIMB2" and "yield_total_kwh" in charger
    assert isinstance(charger["charge_state"], str) and "charge_state_code" in charger
    w.payload(f"{a}/availability", b"online")
    w.payload(f"{b}/availability", b"online")
    # Home Assistant: one device per serial, each under its own name.
    ha = watch(f"{prefix}/ha/#")
    configs: dict[str, dict[str, Any]] = {}
    while len(configs) < 2:
        msg = ha.wait_for(lambda m: m.topic.endswith("/config") and m.topic not in configs)
        configs[msg.topic] = json.loads(msg.payload)
    names = {c["device"]["name"] for c in configs.values()}
    assert "Roof MPPT" in names and len(names) == 2
    comps = {k: v for c in configs.values() for k, v in c["components"].items()}
    # Components read the state JSON; a field absent from it renders None ("unknown").
    soc = next(c for c in comps.values() if c["state_topic"] == f"{a}/state"
               and "'soc_pct'" in c["value_template"])
    assert (soc["device_class"], soc["unit_of_measurement"]) == ("battery", "%")
    total = next(c for c in comps.values() if c["state_topic"] == f"{b}/state"
                 and "'yield_total_kwh'" in c["value_template"])
    assert (total["device_class"], total["state_class"], total["unit_of_measurement"]) == (
        "energy", "total_increasing", "kWh")
    # Pull the battery monitor's cable: it goes offline, the charger keeps publishing.
    count = w.count()
    bmv.stop()
    w.payload(f"{a}/availability", b"offline", after=count, timeout=10)
    offline_at = w.count()
    state(w, f"{b}/state", after=offline_at, timeout=5)
    state(w, f"{b}/state", after=w.count(), timeout=5)
    bmv.start()
    w.payload(f"{a}/availability", b"online", after=offline_at, timeout=20)
    state(w, f"{a}/state", after=offline_at)
    count = w.count()
    assert svc.stop() == 0
    w.payload(f"{a}/availability", b"offline", after=count, timeout=5)
    w.payload(f"{prefix}/vedirect/status", b"offline", after=count, timeout=5)
    assert "Traceback" not in svc.log


def test_real_capture_replayed_through_the_service(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,
    watch: Callable[[str], Watcher],
) -> None:
    capture = vedirect_fixture("phoenix_inverter_12V_1200VA_120V_velog.log")
    w = watch(f"{prefix}/#")
    _, link = sim(tmp_path, procs, "ve0", "--replay", str(capture), "--speed", "4")
    service(tmp_path, procs, broker, prefix, [{"port": str(link)}])
    base = f"{prefix}/vedirect/hq2017jgk6s"
    reading = state(w, f"{base}/state")
    assert reading["product_name"] == "Phoenix Inverter 12V 1200VA 120V"
    assert reading["mode"] == "inverter" and reading["charge_state"] == "inverting"
    assert 100 < float(reading["ac_out_voltage_v"]) < 130  # type: ignore[arg-type]
    raw = json.loads(w.topic(f"{base}/raw").payload)
    assert raw["PID"] == "0xA279"
    diag = json.loads(w.wait_for(
        lambda m: m.topic == f"{base}/diagnostics" and json.loads(m.payload)["blocks_ok"] > 0
    ).payload)
    # Opening the port mid-stream cuts at most the block in flight (and the replay's seam).
    assert diag["blocks_bad"] <= 2


def test_rate_limit_but_state_changes_go_out_at_once(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,
    watch: Callable[[str], Watcher],
) -> None:
    # The BlueSolar capture sends a block every second: at speed 8 that is 8 per second,
    # the service publishes at most ~1 state per second (plus any charge-state change).
    capture = vedirect_fixture("mppt_bluesolar_75-15_fw150_velog-001.log")
    w = watch(f"{prefix}/vedirect/+/state")
    _, link = sim(tmp_path, procs, "ve0", "--replay", str(capture), "--speed", "8")
    service(tmp_path, procs, broker, prefix, [{"port": str(link)}])
    first = w.wait_for(lambda _m: True, timeout=20)
    start = time.monotonic()
    time.sleep(4)
    states = [json.loads(m.payload) for m in w.messages[w.messages.index(first):]]
    codes = {s["charge_state_code"] for s in states}
    assert len(states) <= (time.monotonic() - start) + 2 + len(codes)
