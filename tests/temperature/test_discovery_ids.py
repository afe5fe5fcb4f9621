"""HA unique ids on a real broker: a restart with another mqtt.prefix keeps the device and
its unique ids (the base saved at the first start); a new homeassistant.unique_id_base
clears the old discovery topic (HA removes the old device) and announces the new one."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.sim.onewire import FakeW1Tree
from tests.conftest import Broker, Watcher
from tests.teleinfo.test_service import Proc, procs  # noqa: F401 (the fixture)

TOP = "28-0000075a3f01"


def _run(tmp_path: Path, procs: list[Proc], broker: Broker, mqtt_prefix: str,  # noqa: F811
         ha_prefix: str, **ha: Any) -> Proc:
    tree = FakeW1Tree(tmp_path / "w1")
    tree.add(TOP, 55.0)
    tree.write()
    config = {
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": mqtt_prefix},
        "homeassistant": {"discovery_prefix": ha_prefix, **ha},
        "general": {"data_dir": str(tmp_path / "data")},
        "temperature": {"root": str(tree.root), "interval_s": 0.2,
                        "probes": [{"id": "tank-top", "address": TOP}]},
    }
    path = tmp_path / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    proc = Proc([sys.executable, "-m", "services.temperature"], tmp_path / "temperature.log",
                {"ENERBOX_CONFIG": str(path)}).start()
    procs.append(proc)
    return proc


def _config(w: Watcher, after: int, topic: str | None = None) -> tuple[str, dict[str, Any]]:
    msg = w.wait_for(lambda m: m.topic.endswith("/config") and bool(m.payload)
                     and (topic is None or m.topic == topic), after=after)
    return msg.topic, json.loads(msg.payload)


def test_ids_survive_a_prefix_change_and_a_new_base_clears_the_old_topic(
    tmp_path: Path, procs: list[Proc], broker: Broker, prefix: str,  # noqa: F811
    watch: Callable[[str], Watcher],
) -> None:
    ha_prefix = f"{prefix}/ha"
    w = watch(f"{ha_prefix}/#")
    first = _run(tmp_path, procs, broker, f"{prefix}/old", ha_prefix)
    topic, before = _config(w, 0)
    assert first.stop() == 0
    assert "old" in topic  # made from the first prefix, saved in the data dir

    count = w.count()
    second = _run(tmp_path, procs, broker, f"{prefix}/new", ha_prefix)
    again_topic, again = _config(w, count)
    assert again_topic == topic  # same device for HA
    assert set(again["components"]) == set(before["components"])
    temp = next(c for c in again["components"].values() if c["name"] == "Température")
    assert temp["state_topic"].startswith(f"{prefix}/new/")  # the new topics
    assert second.stop() == 0

    count = w.count()
    _run(tmp_path, procs, broker, f"{prefix}/new", ha_prefix, unique_id_base="maison")
    w.wait_for(lambda m: m.topic == topic and m.payload == b"", after=count)  # HA drops it
    new_topic, new = _config(w, count)
    assert new_topic == f"{ha_prefix}/device/maison_temperature_tank_top/config"
    assert all(uid.startswith("maison_temperature_tank_top_") for uid in new["components"])
