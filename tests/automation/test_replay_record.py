"""`enerbox automation record` on a real broker, then its file replayed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.automation.replay_cli import CONFIG, replay
from tests.conftest import ROOT, Broker, wait_until


@pytest.fixture
def client(broker: Broker) -> Iterator[mqtt.Client]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    c.connect(broker.host, broker.port)
    c.loop_start()
    yield c
    c.disconnect()
    c.loop_stop()


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]


def test_record_writes_replay_rows_that_replay(tmp_path: Path, broker: Broker, prefix: str,
                                               client: mqtt.Client) -> None:
    config = CONFIG + f"mqtt: {{host: {broker.host}, port: {broker.port}, prefix: {prefix}}}\n"
    cfg = tmp_path / "enerbox.yaml"
    cfg.write_text(config, encoding="utf-8")
    # Retained before the recording starts: it opens the file, as a live box's would.
    client.publish(f"{prefix}/teleinfo/linky/state",
                   json.dumps({"net_power_va": 600, "tariff_period": "hp"}), qos=1,
                   retain=True).wait_for_publish(5)
    out = tmp_path / "recorded.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERBOX_")}
    proc = subprocess.Popen([sys.executable, "-m", "services.app", "automation", "record",
                             str(out), "--config", str(cfg)], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)
    errors: list[str] = []
    stderr = proc.stderr
    assert stderr is not None
    reader = threading.Thread(target=lambda: errors.extend(iter(stderr.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("recording" in e for e in errors), 30, "record subscribed")
        wait_until(lambda: len(_lines(out)) == 1, 10, "the retained state recorded")
        for topic, payload in (
                ("relays/water-heater/set", '{"mode": "on", "for_s": 60}'),
                ("relays/water-heater/state", '{"state": "on"}'),  # the replay plays it
                ("teleinfo/linky/raw", '{"PAPP": "00600"}'),  # not an input
                ("teleinfo/linky/availability", "online"),
                ("teleinfo/linky/state", '{"net_power_va": 650, "tariff_period": "hp"}')):
            client.publish(f"{prefix}/{topic}", payload, qos=1).wait_for_publish(5)
        wait_until(lambda: len(_lines(out)) == 4, 10, "four rows recorded")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        reader.join(5)
        client.publish(f"{prefix}/teleinfo/linky/state", b"", qos=1, retain=True)
    assert code == 0, errors
    rows = _lines(out)
    assert [r["topic"] for r in rows] == ["teleinfo/linky/state", "relays/water-heater/set",
                                         "teleinfo/linky/availability", "teleinfo/linky/state"]
    assert rows[1]["payload"] == {"mode": "on", "for_s": 60}
    assert rows[2]["payload"] == "online"
    assert json.loads(errors[-1]) == {"rows": 4}
    run = replay(tmp_path, [], CONFIG, str(out))
    assert run.code == 0, run.stderr
    assert ("on", "user") in [(x["output"], x["source"]) for x in run.of("water-heater")]
