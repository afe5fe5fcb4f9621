"""The historian end to end: MQTT states -> historian process -> VictoriaMetrics, the local
history and the ledger, across a database outage and a kill -9 of the historian."""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.conftest import ROOT, Broker, Watcher
from tests.historian.vm import VM, victoria_metrics
from tests.teleinfo.test_service import Proc

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z: readings carry their own timestamps


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VM]:
    # dedup at 1 ms: the one way VictoriaMetrics gets InfluxDB's "same series and timestamp
    # overwrite" behaviour, which makes a batch re-sent after a crash harmless.
    with victoria_metrics(tmp_path, dedup=True) as server:
        yield server


class Publisher:
    """A device service stand-in: teleinfo states with increasing timestamps, QoS 1."""

    def __init__(self, broker: Broker, prefix: str) -> None:
        self.prefix, self.n = prefix, 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def probe(self, vm: VM, timeout: float = 30) -> None:
        """Until the historian stores one: then its durable session exists on the broker.

        A state of another meter, a month earlier: kept out of what the test counts.
        """
        deadline = time.monotonic() + timeout
        state = {"apparent_power_va": 1, "ts": time.strftime(
            "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(T0 - 30 * 86400))}
        while not vm.export('teleinfo_apparent_power_va{device="probe"}'):
            assert time.monotonic() < deadline, "the historian never stored a state"
            # Sent again while the historian is not subscribed yet (it would be lost).
            self.client.publish(f"{self.prefix}/teleinfo/probe/journal", json.dumps(state),
                                qos=1).wait_for_publish(5)
            time.sleep(0.2)  # poll interval, not a synchronisation

    def send(self, count: int) -> None:
        for _ in range(count):
            self._publish(self.n)
            self.n += 1

    def repeat(self) -> None:
        """The last state again, as its service re-publishes it after a reconnect."""
        self._publish(self.n - 1)

    def _publish(self, n: int) -> None:
        state = {"apparent_power_va": 1000 + n, "current_a": [n % 40],
                 "energy_import_by_index_wh": {"base": 1_000_000 + n * 10},
                 "energy_import_wh": 1_000_000 + n * 10, "meter_id": "031999000001",
                 "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(T0 + n))}
        self.client.publish(f"{self.prefix}/teleinfo/linky/journal", json.dumps(state),
                            qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def historian(tmp_path: Path, broker: Broker, prefix: str, vm: VM,
              flush_interval_s: float = 1) -> Proc:
    config = {
        "general": {"data_dir": str(tmp_path / "data")},
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "historian": {
            "flush_interval_s": flush_interval_s,
            "max_clock_skew_s": 10**10,  # T0 is a fixed day in the past
            "tariffs": [{"valid_from": "2025-01-01", "subscription_eur_per_day": 0.5,
                         "prices_eur_per_kwh": {"base": 0.25}}],
            "influxdb": {"enabled": True, "url": vm.url, "token": "unused", "batch_size": 100},
        },
    }
    path = tmp_path / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return Proc([sys.executable, "-m", "services.historian"], tmp_path / "historian.log",
                {"ENERBOX_CONFIG": str(path)})


def samples(vm: VM, want: int, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        series = vm.export('teleinfo_apparent_power_va{device="linky"}')
        stamps = [t for s in series for t in s.timestamps]
        if len(stamps) >= want or time.monotonic() > deadline:
            return stamps
        time.sleep(0.5)


def history_count(tmp_path: Path, field: str = "apparent_power_va") -> int:
    """Readings of the linky's ``field`` in the local history (the sum of the minute counts)."""
    with closing(sqlite3.connect(tmp_path / "data" / "history.sqlite3")) as db:
        sid = db.execute("SELECT id FROM series WHERE measurement = 'teleinfo' AND field = ? "
                         "AND tags = '{\"device\":\"linky\"}'", (field,)).fetchone()
        tables = [t for (t,) in db.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB 'samples_[0-9]*'")]
        return sum(db.execute(f"SELECT coalesce(sum(count), 0) FROM {t} "
                              "WHERE key & 65535 = ?", sid).fetchone()[0] for t in tables)


def ledger_import_wh(tmp_path: Path) -> float:
    """The ledger's import of 2025-11-24, through the CLI a user runs."""
    export = subprocess.run(
        [sys.executable, "-m", "services.app.cli", "history", "export", "--from",
         "2025-11-24", "--to", "2025-11-24", "--ledger", "--config",
         str(tmp_path / "enerbox.yaml")], capture_output=True, text=True, cwd=ROOT, check=False)
    assert export.returncode == 0, export.stderr
    rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(export.stdout)))
    assert rows, export.stdout
    return float(rows[0]["import_wh"])


def test_kill_before_the_commit_loses_nothing_and_doubles_nothing(
    tmp_path: Path, broker: Broker, prefix: str, vm: VM,
) -> None:
    # No commit of the local history and ledger for an hour: the kill always comes first.
    proc = historian(tmp_path, broker, prefix, vm, flush_interval_s=3600).start()
    pub = Publisher(broker, prefix)
    try:
        pub.probe(vm)
        pub.send(30)
        pub.repeat()  # a state seen twice is one reading
        assert len(samples(vm, 30)) == 30  # in the disk queue and in VictoriaMetrics...
        proc.stop(signal.SIGKILL)  # ...but not in the local history nor the ledger yet
        proc.start()
        pub.send(1)  # comes after what the broker redelivers
        assert len(samples(vm, 31)) == 31, proc.log  # doubles are VictoriaMetrics' dedup's
    finally:
        pub.close()
        proc.stop()  # a clean stop commits
    assert history_count(tmp_path) == 31
    assert ledger_import_wh(tmp_path) == 30 * 10


def test_outage_and_kill_lose_nothing_and_double_nothing(
    tmp_path: Path, broker: Broker, prefix: str, vm: VM, watch: Callable[[str], Watcher],
) -> None:
    events = watch(f"{prefix}/historian/events")
    proc = historian(tmp_path, broker, prefix, vm).start()
    pub = Publisher(broker, prefix)
    try:
        pub.probe(vm)  # stored: the historian is subscribed, its durable session exists
        pub.send(50)
        assert len(samples(vm, 50)) == 50
        seen = events.count()
        vm.stop()  # the database goes away for a while
        pub.send(50)
        # The historian has tried to write some of them and queued them on disk...
        events.wait_for(lambda m: json.loads(m.payload).get("type") == "sink_down", 30, seen)
        proc.stop(signal.SIGKILL)  # ...and dies mid-stream, unannounced
        pub.send(50)  # the broker keeps these for the historian's session
        vm.start(dedup=True)
        proc.start()
        stamps = samples(vm, 150, timeout=60)
        assert len(stamps) == 150, proc.log
        assert sorted(stamps) == [round((T0 + i) * 1000) for i in range(150)]
        series = vm.export('teleinfo_current_a{device="linky",phase="1"}')
        assert series and len(series[0].values) == 150
    finally:
        pub.close()
        proc.stop()
    # The local history and the ledger have every reading once too.
    assert ledger_import_wh(tmp_path) == 149 * 10  # 150 readings, 10 Wh apart
    assert history_count(tmp_path) == 150
    history = subprocess.run(
        [sys.executable, "-m", "services.app.cli", "history", "export", "--from",
         "2025-11-24", "--to", "2025-11-24", "--config", str(tmp_path / "enerbox.yaml")],
        capture_output=True, text=True, cwd=ROOT, check=False)
    assert history.returncode == 0, history.stderr
    assert "apparent_power_va" in history.stdout
