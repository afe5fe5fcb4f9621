"""End to end: a pymodbus server serving a real SMA image and a meter -> the inverter
service -> a real mosquitto: state, per-field topics, availability, diagnostics, HA."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.sim.sunspec_image import meter_image
from services.sim.sunspec_server import SunSpecServer
from tests.conftest import Broker, Watcher, fixture
from tests.teleinfo.test_service import Proc, procs  # noqa: F401 (the fixture)


def test_a_real_sma_image_and_a_meter_published_end_to_end(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,  # noqa: F811
    watch: Callable[[str], Watcher],
) -> None:
    image = json.loads(fixture("sunspec", "sma_sunnyboy36_20230810.json").read_text())
    w = watch(f"{prefix}/#")
    ha = watch(f"{prefix}/ha/#")
    with SunSpecServer() as server:
        server.set_image(3, image["registers"], base=image["base"])
        server.set_image(2, meter_image(w=-850, wh_imp=120000, wh_exp=45000, phases=3))
        config = {
            "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
            "general": {"data_dir": str(tmp_path / "data")},
            "homeassistant": {"discovery_prefix": f"{prefix}/ha"},
            "inverter": {"diagnostics_interval_s": 1, "buses": [{
                "name": "lan", "protocol": "modbus-tcp", "host": "127.0.0.1",
                "port": server.port, "timeout_s": 0.5,
                "devices": [{"id": "sma", "address": 3, "poll_s": 0.5, "name": "Roof"},
                            {"id": "grid", "address": 2, "poll_s": 0.5}]}]},
        }
        path = tmp_path / "enerbox.yaml"
        path.write_text(json.dumps(config), encoding="utf-8")
        svc = Proc([sys.executable, "-m", "services.inverter"], tmp_path / "inverter.log",
                   {"ENERBOX_CONFIG": str(path)})
        procs.append(svc.start())
        base = f"{prefix}/inverter/sma"
        state: dict[str, Any] = json.loads(w.topic(f"{base}/state").payload)
        assert state["ac_power_w"] == 1080 and state["ac_energy_wh"] == 21707970
        assert state["status"] == "mppt" and state["serial"] == "3005067415"
        assert state["ac_voltage_v"] == [239.2] and "ts" in state
        assert [m["dc_power_w"] for m in state["mppt"]] == [670, 480]
        w.payload(f"{base}/availability", b"online")
        w.payload(f"{base}/ac_power_w", b"1080")
        assert json.loads(w.topic(f"{base}/raw").payload)  # the SunSpec labels
        grid: dict[str, Any] = json.loads(w.topic(f"{prefix}/inverter/grid/state").payload)
        assert grid["power_w"] == -850 and grid["energy_import_wh"] == 120000
        diag = json.loads(w.wait_for(lambda m: m.topic == f"{base}/diagnostics"
                                     and json.loads(m.payload)["requests"] > 0).payload)
        assert diag["timeouts"] == 0 and diag["reopens"] == 0 and diag["discoveries"] == 1
        assert diag["last_latency_ms"] is not None
        config_msg = ha.wait_for(lambda m: m.topic.endswith("/config")
                                 and json.loads(m.payload)["device"]["name"] == "Roof")
        comps = json.loads(config_msg.payload)["components"].values()

        def comp(key: str) -> dict[str, Any]:
            return next(c for c in comps if f"'{key}'" in c["value_template"])

        assert (comp("ac_energy_wh")["state_class"], comp("ac_energy_wh")["device_class"]) == (
            "total_increasing", "energy")
        assert comp("ac_power_w")["state_class"] == "measurement"
        # off, sleeping: in words
        assert comp("status")["options"][:2] == ["Arrêté", "En veille (nuit)"]
        # The inverter falls silent by day right after producing: offline after 3 polls.
        count = w.count()
        server.set_silent(3)
        w.payload(f"{base}/availability", b"offline", after=count, timeout=10)
        assert b"counter" not in b"".join(m.payload for m in w.messages[count:]
                                          if m.topic.endswith("/events"))
        count = w.count()
        assert svc.stop() == 0
        w.payload(f"{prefix}/inverter/grid/availability", b"offline", after=count, timeout=5)
        w.payload(f"{prefix}/inverter/status", b"offline", after=count, timeout=5)
        # Restarted at night, the inverter still silent: asleep, and its counter is the one
        # saved at the stop, never absent nor 0.
        assert (tmp_path / "data" / "inverter.json").is_file()
        count = w.count()
        again = Proc([sys.executable, "-m", "services.inverter"], tmp_path / "again.log",
                     {"ENERBOX_CONFIG": str(path)})
        procs.append(again.start())
        night = json.loads(w.wait_for(lambda m: m.topic == f"{base}/state" and b"sleeping"
                                      in m.payload, after=count, timeout=10).payload)
        assert night["ac_power_w"] == 0 and night["ac_energy_wh"] == 21707970
        assert night["serial"] == "3005067415"
        assert again.stop() == 0
    assert "Traceback" not in svc.log
