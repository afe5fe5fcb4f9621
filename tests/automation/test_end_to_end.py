"""End to end, as deployed: `python -m services.automation` and `python -m services.relays`
as real processes, each logged in as its own user on a mosquitto run with the shipped
configuration and ACL (only the automation user may write relays/+/auto).

The automation switches the water heater on from the meter's export through
relays/<id>/auto; kill -9 of the automation puts the relay back to its default at once (its
last will), and a wish left to expire does the same once its message expiry runs out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.relays.drivers.fake_smbus import FakeSMBus
from tests.deploy.test_mosquitto import Client, SecureBroker, connect, script_users, write_passwd
from tests.relays.harness import Proc

MOSQ = Path(__file__).resolve().parents[2] / "mosquitto"
MCP, OLAT_A = 0x20, 0x14
RELAY = "water-heater"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[tuple[SecureBroker, dict[str, str]]]:
    """The shipped broker config and ACL, every user of the init script with a password."""
    passwords = {user: uuid.uuid4().hex for user in script_users()}
    write_passwd(tmp_path / "passwd", passwords)
    work = tmp_path / "broker"
    work.mkdir()
    broker = SecureBroker(work, tmp_path / "passwd", (MOSQ / "acl").read_text())
    broker.start()
    yield broker, passwords
    broker.stop()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop()


def write_config(tmp_path: Path, port: int) -> Path:
    board = tmp_path / "board.json"
    config = {
        "general": {"data_dir": str(tmp_path / "data")},
        "mqtt": {"host": "127.0.0.1", "port": port, "prefix": "enerbox"},
        "homeassistant": {"discovery": False},
        "relays": {
            "boards": [{"id": "board", "driver": "mcp23017", "bus": f"fake:{board}",
                        "address": MCP}],
            "relays": [{"id": RELAY, "board": "board", "channel": 0}],
            "shedding_grace_s": 3600,
        },
        "automation": {
            "tick_s": 0.5,
            "signals": {"grid": {"source": "teleinfo/linky", "field": "net_power_va",
                                 "stale_after_s": 120}},
            "surplus": {"grid": "grid", "smoothing_s": 0, "reserve_w": 50, "step_s": 0},
            "loads": [{"relay": RELAY, "power_w": 2000,
                       "surplus": {"margin_w": 100, "on_after_s": 0, "off_import_w": 200,
                                   "off_after_s": 600}}],
        },
    }
    path = tmp_path / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def env_for(path: Path, tmp_path: Path, user: str, password: str) -> dict[str, str]:
    secret = tmp_path / f"{user}.secret"
    secret.write_text(password, encoding="utf-8")
    return {"ENERBOX_CONFIG": str(path), "ENERBOX_MQTT__USERNAME": user,
            "ENERBOX_MQTT__PASSWORD_FILE": str(secret)}


def output(tmp_path: Path) -> int:
    """The fake board's latch bit of the water heater (active high: 1 is on)."""
    return FakeSMBus(tmp_path / "board.json").read_byte_data(MCP, OLAT_A) & 1


def relay_state(watcher: Client, pred: Callable[[dict[str, Any]], bool], after: int = 0,
                timeout: float = 30) -> dict[str, Any]:
    topic = f"enerbox/relays/{RELAY}/state"

    def find() -> dict[str, Any] | None:
        for m in watcher.received[after:]:
            if m.topic == topic and m.payload:
                data: dict[str, Any] = json.loads(m.payload)
                if pred(data):
                    return data
        return None

    with watcher.event:
        seen = [m.payload for m in watcher.received if m.topic == topic][-3:]
        assert watcher.event.wait_for(lambda: find() is not None, timeout), (
            f"no matching relay state; last: {seen}")
        found = find()
    assert found is not None
    return found


def test_automation_drives_the_relay_and_its_death_returns_it_to_default(
    tmp_path: Path, box: tuple[SecureBroker, dict[str, str]], procs: list[Proc],
) -> None:
    broker, passwords = box
    path = write_config(tmp_path, broker.port)
    watcher = connect(broker.port, "historian", passwords["historian"])
    teleinfo = connect(broker.port, "teleinfo", passwords["teleinfo"])
    try:
        assert watcher.subscribe("enerbox/#") < 0x80
        # The meter exports 3 kW (retained, as teleinfo publishes it).
        state = {"net_power_va": -3000, "apparent_power_va": 0,
                 "ts": datetime.now(UTC).isoformat()}
        assert teleinfo.publish("enerbox/teleinfo/linky/state", json.dumps(state).encode(),
                                retain=True) < 0x80
        relays = Proc(["-m", "services.relays"], tmp_path / "relays.log",
                      env_for(path, tmp_path, "relays", passwords["relays"])).start()
        procs.append(relays)
        relay_state(watcher, lambda s: s["state"] == "off" and s["source"] == "default")
        assert output(tmp_path) == 0
        automation = Proc(["-m", "services.automation"], tmp_path / "automation.log",
                          env_for(path, tmp_path, "automation", passwords["automation"]))
        procs.append(automation.start())
        on = relay_state(watcher, lambda s: s["state"] == "on")
        assert on["source"] == "auto" and on["mode"] == "auto"
        assert output(tmp_path) == 1
        watcher_payload(watcher, f"enerbox/automation/{RELAY}/state", "surplus")
        # kill -9: the broker sends the automation's last will, and the relay drops the wish.
        mark = len(watcher.received)
        automation.kill9()
        watcher.wait_for("enerbox/automation/status", b"offline")
        off = relay_state(watcher, lambda s: s["state"] == "off", after=mark, timeout=10)
        assert off["source"] == "default"
        assert output(tmp_path) == 0
        assert "Traceback" not in automation.log, automation.log
        assert "Traceback" not in relays.log, relays.log
    finally:
        watcher.close()
        teleinfo.close()


def watcher_payload(watcher: Client, topic: str, status: str, timeout: float = 20) -> bytes:
    """The payload of the first message on ``topic`` whose status is ``status``."""
    def find() -> bytes | None:
        for m in watcher.received:
            if m.topic == topic and m.payload and json.loads(m.payload)["status"] == status:
                return m.payload
        return None

    with watcher.event:
        assert watcher.event.wait_for(lambda: find() is not None, timeout), f"no {status}"
        found = find()
    assert found is not None
    return found


def test_a_wish_that_expires_returns_the_relay_to_default(
    tmp_path: Path, box: tuple[SecureBroker, dict[str, str]], procs: list[Proc],
) -> None:
    """A wish whose writer stays 'online' (its last will suppressed: a hung process, a
    broker that lost the session) counts only while its message expiry runs."""
    broker, passwords = box
    path = write_config(tmp_path, broker.port)
    watcher = connect(broker.port, "historian", passwords["historian"])
    writer = connect(broker.port, "automation", passwords["automation"])
    try:
        assert watcher.subscribe("enerbox/#") < 0x80
        assert writer.publish("enerbox/automation/status", b"online", retain=True) < 0x80
        relays = Proc(["-m", "services.relays"], tmp_path / "relays.log",
                      env_for(path, tmp_path, "relays", passwords["relays"])).start()
        procs.append(relays)
        relay_state(watcher, lambda s: s["state"] == "off" and s["source"] == "default")
        wish = json.dumps({"state": "on", "reason": "test", "ts": datetime.now(UTC).isoformat()})
        mark = len(watcher.received)
        assert writer.publish(f"enerbox/relays/{RELAY}/auto", wish.encode(), retain=True,
                              expiry_s=2) < 0x80
        relay_state(watcher, lambda s: s["state"] == "on" and s["source"] == "auto", after=mark)
        # No new wish: the relay goes back to its default when the 2 s have run out, while
        # the writer still says online.
        back = relay_state(watcher, lambda s: s["state"] == "off", after=mark, timeout=15)
        assert back["source"] == "default"
        assert output(tmp_path) == 0
        assert "Traceback" not in relays.log, relays.log
    finally:
        watcher.close()
        writer.close()
