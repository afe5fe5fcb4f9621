"""End to end: the pulses service with a simulated meter on a relay -> a real mosquitto:
state, fields, availability after the store is read, HA discovery, calibration; and the
index across a clean restart and a kill -9 between saves."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paho.mqtt import publish

from tests.conftest import Broker, Watcher, wait_until
from tests.teleinfo.test_service import Proc, procs  # noqa: F401 (the fixture)


def write_config(tmp_path: Path, broker: Broker, prefix: str, save_every_s: float = 1,
                 **sim: object) -> Path:
    """One simulated meter at 10 pulses/s (36 kW on 1000 imp/kWh) while its relay is on."""
    config = {
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "general": {"data_dir": str(tmp_path / "data")},
        "homeassistant": {"discovery_prefix": f"{prefix}/ha"},
        "pulses": {"diagnostics_interval_s": 1, "meters": [{
            "id": "heater", "name": "Heater meter", "source": "sim", "imp_per_kwh": 1000,
            "max_power_kw": 40, "save_every_s": save_every_s, "initial_index_wh": 5000,
            "sim": {"power_w": 36000, "width_ms": 40, **sim}}]},
    }
    path = tmp_path / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def start(tmp_path: Path, procs: list[Proc], path: Path, name: str) -> Proc:  # noqa: F811
    svc = Proc([sys.executable, "-m", "services.pulses"], tmp_path / f"{name}.log",
               {"ENERBOX_CONFIG": str(path)})
    procs.append(svc.start())
    return svc


def state(msg: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(msg.payload)
    return data


def test_a_simulated_meter_on_a_relay_published_end_to_end(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,  # noqa: F811
    watch: Callable[[str], Watcher],
) -> None:
    w = watch(f"{prefix}/#")
    path = write_config(tmp_path, broker, prefix, follow_relay="water-heater")
    svc = start(tmp_path, procs, path, "pulses")
    base = f"{prefix}/pulses/heater"
    w.payload(f"{base}/availability", b"online")
    first = state(w.topic(f"{base}/state"))
    assert first["energy_wh"] == 5000 and first["pulses_total"] == 0  # relay unknown: off
    assert first["wh_per_pulse"] == 1 and "power_w" not in first
    # The relay goes on: the simulated load draws 36 kW, 10 pulses a second.
    publish.single(f"{prefix}/relays/water-heater/state", json.dumps({"state": "on"}),
                   qos=1, retain=True, hostname=broker.host, port=broker.port)
    running = state(w.wait_for(lambda m: m.topic == f"{base}/state"
                               and "power_w" in json.loads(m.payload)))
    assert 30000 <= running["power_w"] <= 40000 and running["energy_wh"] > 5000
    w.wait_for(lambda m: m.topic == f"{base}/pulses_total" and int(m.payload) > 0)
    diag = json.loads(w.wait_for(lambda m: m.topic == f"{base}/diagnostics"
                                 and json.loads(m.payload).get("pulses", 0) > 0).payload)
    assert diag["rejected_fast"] == 0 and diag["lost_events"] == 0
    # Announced again once power_w joins the reading (it is absent before a first interval).
    ha = json.loads(w.wait_for(lambda m: m.topic.startswith(f"{prefix}/ha/device/")
                               and b"power_w" in m.payload).payload)
    comps = {c["value_template"].split("'")[1]: c for c in ha["components"].values()
             if c["state_topic"].endswith("/state")}  # the meter's, not the service's
    assert comps["energy_wh"]["state_class"] == "total_increasing"
    assert comps["energy_wh"]["device_class"] == "energy"
    assert comps["power_w"]["state_class"] == "measurement"
    assert ha["device"]["name"] == "Heater meter"
    # Calibration: up is accepted (and saved at once), down is refused with an event.
    count = w.count()
    publish.single(f"{base}/set", '{"energy_wh": 1234567}', qos=1, hostname=broker.host,
                   port=broker.port)
    w.wait_for(lambda m: m.topic == f"{base}/state"
               and json.loads(m.payload)["energy_wh"] >= 1234567, after=count)
    count = w.count()
    publish.single(f"{base}/set", '{"energy_wh": 1000}', qos=1, hostname=broker.host,
                   port=broker.port)
    event = json.loads(w.wait_for(lambda m: m.topic == f"{prefix}/pulses/events"
                                  and b"rejected" in m.payload, after=count).payload)
    assert event["device"] == "heater" and "never decreases" in event["reason"]
    # The relay goes off: no more pulses, the power decays (bounded by 1 Wh / time since).
    publish.single(f"{prefix}/relays/water-heater/state", json.dumps({"state": "off"}),
                   qos=1, retain=True, hostname=broker.host, port=broker.port)
    w.wait_for(lambda m: m.topic == f"{base}/state"
               and json.loads(m.payload).get("power_w", 1e9) < 3600, timeout=10)
    count = w.count()
    assert svc.stop() == 0
    w.payload(f"{base}/availability", b"offline", after=count, timeout=5)
    saved = json.loads((tmp_path / "data" / "pulses.json").read_text())["heater"]
    last = state(w.wait_for(lambda m: m.topic == f"{base}/state", after=0))
    for m in w.messages:
        if m.topic == f"{base}/state":
            last = state(m)
    assert saved["base_wh"] + saved["pulses"] == last["energy_wh"] >= 1234567
    assert "Traceback" not in svc.log
    publish.single(f"{prefix}/relays/water-heater/state", "", qos=1, retain=True,
                   hostname=broker.host, port=broker.port)


def test_a_kill_9_between_saves_resumes_from_the_last_published_index(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,  # noqa: F811
    watch: Callable[[str], Watcher],
) -> None:
    w = watch(f"{prefix}/#")
    store = tmp_path / "data" / "pulses.json"
    # Saved every 2 s, published every second: a state beyond the last save comes.
    svc = start(tmp_path, procs, write_config(tmp_path, broker, prefix, 2), "pulses")
    base = f"{prefix}/pulses/heater"

    def saved_wh() -> float:
        data = json.loads(store.read_text())["heater"]
        return float(data["base_wh"] + data["pulses"])

    wait_until(lambda: store.is_file() and saved_wh() > 5000, 15, "no save with pulses")
    # Published beyond the last save: what a kill -9 would lose with the store alone.
    w.wait_for(lambda m: m.topic == f"{base}/state"
               and json.loads(m.payload)["energy_wh"] > saved_wh() + 2)
    svc.stop(signal.SIGKILL)
    last_save = saved_wh()
    published = max(state(m)["energy_wh"] for m in w.messages if m.topic == f"{base}/state")
    assert 5000 < last_save < published
    # Restarted with the load off: the first state is the index last published (the
    # broker's retained state), never the older save: the index never steps back.
    count = w.count()
    again = start(tmp_path, procs, write_config(tmp_path, broker, prefix, power_w=0), "again")
    w.payload(f"{base}/availability", b"online", after=count)
    resumed = state(w.topic(f"{base}/state", after=count))
    assert resumed["energy_wh"] == published and resumed["pulses_total"] >= last_save - 5000
    assert again.stop() == 0
    assert saved_wh() == published  # saved as soon as it was taken back
    assert "taken from its last published state" in (tmp_path / "again.log").read_text()
