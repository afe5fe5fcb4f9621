"""End to end: a fake 1-Wire tree -> the temperature service -> a real mosquitto: state,
field, availability per probe, diagnostics, HA discovery; a failing or unplugged probe
never hides the others."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.sim.onewire import FakeW1Tree
from tests.conftest import Broker, Watcher
from tests.teleinfo.test_service import Proc, procs  # noqa: F401 (the fixture)

TOP, LOOSE, ABSENT = "28-0000075a3f01", "28-0000075a3f09", "28-0000075a3f0f"


def test_probes_published_each_on_its_own_end_to_end(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,  # noqa: F811
    watch: Callable[[str], Watcher],
) -> None:
    tree = FakeW1Tree(tmp_path / "w1")
    tree.add(TOP, 55.0)
    tree.add(LOOSE, 19.5)
    tree.write()
    w = watch(f"{prefix}/#")
    config = {
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "homeassistant": {"discovery_prefix": f"{prefix}/ha"},
        "general": {"data_dir": str(tmp_path / "data")},  # its HA id base, not the repo's
        "temperature": {
            "root": str(tree.root), "interval_s": 0.2, "rescan_s": 0.5,
            "diagnostics_interval_s": 0.5, "offline_after_failures": 3,
            "probes": [{"id": "tank-top", "name": "Tank top", "address": TOP},
                       {"id": "cellar", "address": ABSENT}],
        },
    }
    path = tmp_path / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    svc = Proc([sys.executable, "-m", "services.temperature"], tmp_path / "temperature.log",
               {"ENERBOX_CONFIG": str(path)})
    procs.append(svc.start())
    base, loose = f"{prefix}/temperature/tank-top", f"{prefix}/temperature/{LOOSE}"
    state: dict[str, Any] = json.loads(w.topic(f"{base}/state").payload)
    assert state["temperature_c"] == 55.0 and "ts" in state
    w.payload(f"{base}/availability", b"online")
    w.payload(f"{base}/temperature_c", b"55.0")
    assert json.loads(w.topic(f"{base}/raw").payload)["crc"] == "YES"
    assert json.loads(w.topic(f"{loose}/state").payload)["temperature_c"] == 19.5
    w.payload(f"{prefix}/temperature/cellar/availability", b"offline")  # named, not found
    config_msg = w.wait_for(lambda m: m.topic.startswith(f"{prefix}/ha/")
                            and json.loads(m.payload)["device"]["name"] == "Tank top")
    # The probe's temperature, plus its diagnostics and the service's status (diagnostic).
    [comp] = [c for c in json.loads(config_msg.payload)["components"].values()
              if c["unique_id"].endswith("_temperature_c")]
    assert (comp["device_class"], comp["state_class"], comp["unit_of_measurement"],
            comp["suggested_display_precision"]) == ("temperature", "measurement", "°C", 1)

    # The top probe fails its CRC from now on: it publishes nothing and goes offline after 3
    # cycles, while the other keeps publishing.
    count = w.count()
    tree.set(TOP, 55.0, "crc")
    w.payload(f"{base}/availability", b"offline", after=count)
    assert not [m for m in w.messages[count:] if m.topic == f"{base}/state"]
    w.topic(f"{loose}/state", after=w.count())
    diag = json.loads(w.wait_for(lambda m: m.topic == f"{base}/diagnostics"
                                 and json.loads(m.payload)["crc_errors"] >= 6).payload)
    assert diag["address"] == TOP and diag["bulk_read"] is True and diag["ok"] >= 1
    assert diag["retries"] >= 3 and diag["last_error"] == "crc_error"

    # The other one unplugged: offline at once; plugged back: online again.
    count = w.count()
    tree.remove(LOOSE)
    w.payload(f"{loose}/availability", b"offline", after=count)
    tree.set(TOP, 55.5)
    w.payload(f"{base}/availability", b"online", after=count)
    tree.add(LOOSE, 19.0)
    tree.write()
    w.payload(f"{loose}/availability", b"online", after=count)
    assert json.loads(w.topic(f"{loose}/state", after=count).payload)["temperature_c"] == 19.0

    count = w.count()
    assert svc.stop() == 0
    w.payload(f"{base}/availability", b"offline", after=count, timeout=5)
    w.payload(f"{prefix}/temperature/status", b"offline", after=count, timeout=5)
    assert "Traceback" not in svc.log
