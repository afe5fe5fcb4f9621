"""Poison never stops ingestion (a real mosquitto, the historian as a process): what cannot
be decoded or stored, or carries an insane ``ts``, is set aside in the dead letters, reported
once per topic and acknowledged; every valid reading around it is stored."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.conftest import ROOT, Broker, Watcher, wait_until
from tests.teleinfo.test_service import Proc

# Valid readings 10 minutes ago, 1.001 s apart: within the allowed skew, in closed minutes
# (committed by the next flush), with milliseconds.
BASE = (time.time() // 60) * 60 - 600


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def valid(n: int) -> bytes:
    return json.dumps({"apparent_power_va": 1000 + n, "energy_import_by_index_wh":
                       {"base": 1_000_000 + n * 10}, "meter_id": "031999000001",
                       "ts": iso(BASE + n * 1.001)}).encode()


POISON: list[bytes] = [
    b'{"a": ' * 12 + b"1" + b"}" * 12,  # nested deeper than 8
    b'{"a": "' + b"x" * 70_000 + b'"}',  # 70 kB
    b'{"apparent_power_va": "\xff\xfe"}',  # invalid UTF-8
    b'{"apparent_power_va": 1' + b"0" * 400 + b"}",  # an int no float holds: flatten raises
    json.dumps({"apparent_power_va": 1, "energy_import_by_index_wh": {"base": 5},
                "ts": "1900-01-01T00:00:00Z"}).encode(),
    json.dumps({"apparent_power_va": 1, "energy_import_by_index_wh": {"base": 9_999_999},
                "ts": "2030-01-01T00:00:00Z"}).encode(),
    b"[1, 2]",  # not an object
    b"{not json",
]


@pytest.fixture
def historian(tmp_path: Path, broker: Broker, prefix: str) -> Iterator[Proc]:
    config = {
        "general": {"data_dir": str(tmp_path / "data")},
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "historian": {"flush_interval_s": 1, "timezone": "UTC"},
    }
    (tmp_path / "enerbox.yaml").write_text(json.dumps(config), encoding="utf-8")
    proc = Proc([sys.executable, "-m", "services.historian"], tmp_path / "historian.log",
                {"ENERBOX_CONFIG": str(tmp_path / "enerbox.yaml")}).start()
    yield proc
    proc.stop(signal.SIGKILL)


def stored(tmp_path: Path, device: str) -> int:
    """Readings of a device's apparent power committed to the local history."""
    path = tmp_path / "data" / "history.sqlite3"
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(path, timeout=5)) as db:
            sid = db.execute("SELECT id FROM series WHERE field = 'apparent_power_va' "
                             "AND tags = ?", (f"{{\"device\":\"{device}\"}}",)).fetchone()
            if sid is None:
                return 0
            tables = [t for (t,) in db.execute("SELECT name FROM sqlite_schema WHERE "
                                               "type = 'table' AND name GLOB 'samples_[0-9]*'")]
            return sum(db.execute(f"SELECT coalesce(sum(count), 0) FROM {t} "
                                  "WHERE key & 65535 = ?", sid).fetchone()[0] for t in tables)
    except sqlite3.OperationalError:  # the schema is being created
        return 0


def wait_stored(tmp_path: Path, device: str, want: int, proc: Proc, timeout: float = 30) -> None:
    wait_until(lambda: stored(tmp_path, device) >= want, timeout,
               f"fewer than {want} stored\n{proc.log}")


def test_poison_is_set_aside_and_acked_and_the_rest_is_stored(
    tmp_path: Path, broker: Broker, prefix: str, historian: Proc,
    watch: Callable[[str], Watcher],
) -> None:
    events = watch(f"{prefix}/historian/events")
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()

    def send(device: str, payload: bytes) -> None:
        pub.publish(f"{prefix}/teleinfo/{device}/journal", payload, qos=1).wait_for_publish(5)

    try:
        def probe_stored() -> bool:  # sent until subscribed: probes before are lost
            send("probe", json.dumps({"apparent_power_va": 1, "ts": iso(BASE - 60)}).encode())
            return stored(tmp_path, "probe") > 0

        wait_until(probe_stored, 30, historian.log)
        for n in range(50):  # 25 poisoned states among 50 valid ones, on two topics
            send("linky", valid(n))
            if n % 2:
                send("linky" if n % 4 == 1 else "bad", POISON[(n // 2) % len(POISON)])
        wait_stored(tmp_path, "linky", 50, historian)
        for n in range(50, 150):  # the broker keeps delivering: the poison was acked
            send("linky", valid(n))
        wait_stored(tmp_path, "linky", 150, historian)
        assert historian.proc is not None and historian.proc.poll() is None  # still running
        rejected = [json.loads(m.payload) for m in events.messages
                    if json.loads(m.payload).get("type") == "rejected"]
        # Once per topic, with the topic and the reason.
        assert sorted(e["topic"] for e in rejected) == [f"{prefix}/teleinfo/bad/journal",
                                                        f"{prefix}/teleinfo/linky/journal"]
        assert all(e["reason"] for e in rejected)
    finally:
        pub.loop_stop()
        pub.disconnect()
    assert historian.stop() == 0  # a clean stop commits the rest
    out = subprocess.run(
        [sys.executable, "-m", "services.app.cli", "history", "dead-letters", "--config",
         str(tmp_path / "enerbox.yaml")], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    letters = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(letters) == 25
    assert all(len(x["excerpt"]) <= 200 and x["time"] and x["topic"] for x in letters)
    reasons = " | ".join(x["reason"] for x in letters)
    for why in ("levels deep", "over the 65536-byte limit", "not UTF-8", "OverflowError",
                "before 2000-01-01", "s from the box's clock"):
        assert why in reasons, reasons
    with closing(sqlite3.connect(tmp_path / "data" / "history.sqlite3")) as db:
        days = [d for (d,) in db.execute("SELECT DISTINCT day FROM ledger_days")]
        wh = db.execute("SELECT sum(wh) FROM ledger_days").fetchone()[0]
    assert days == [datetime.fromtimestamp(BASE, UTC).date().isoformat()] or (
        len(days) == 2 and all(d.startswith("20") and d < "2030" for d in days))
    assert wh == 149 * 10  # 150 readings 10 Wh apart: the 1900 and 2030 ones booked nothing
