"""A central database for a fleet: every line carries a `site` tag (two boxes' "linky" stay two
series) and ``write_interval_s`` makes fewer, larger write requests without losing a point to
a kill -9 while they wait (the disk queue, not the wait, is what the acks rest on)."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from services.historian.influx import InfluxSink
from services.historian.points import flatten
from services.historian.spool import Spool
from tests.conftest import Broker, wait_until
from tests.historian.test_service import T0, Publisher
from tests.historian.vm import VM, victoria_metrics
from tests.teleinfo.test_service import Proc


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VM]:
    with victoria_metrics(tmp_path, dedup=True) as server:
        yield server


def test_lines_carry_the_site_tag_in_order() -> None:
    [point] = flatten("teleinfo", "linky", {"current_a": [3]}, 1_764_000_000.0)
    assert point.to_line() == "teleinfo,device=linky,phase=1 current_a=3.0 1764000000000000000"
    assert point.to_line("enerbox/site 42") == (
        r"teleinfo,device=linky,phase=1,site=enerbox/site\ 42 current_a=3.0 1764000000000000000")


def historian(work: Path, broker: Broker, prefix: str, vm: VM, **influx: Any) -> Proc:
    """A historian process of its own (data dir, config) writing into ``vm``."""
    work.mkdir(parents=True, exist_ok=True)
    config = {
        "general": {"data_dir": str(work / "data")},
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "historian": {"flush_interval_s": 1, "max_clock_skew_s": 10**10,
                      "influxdb": {"enabled": True, "url": vm.url, "token": "unused", **influx}},
    }
    path = work / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return Proc([sys.executable, "-m", "services.historian"], work / "historian.log",
                {"ENERBOX_CONFIG": str(path)})


def probe(pub: Publisher, vm: VM, site: str, timeout: float = 30) -> None:
    """Until this site's historian stores one state: its durable session exists."""
    deadline = time.monotonic() + timeout
    state = {"apparent_power_va": 1, "ts": time.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(T0 - 30 * 86400))}
    while not vm.export(f'teleinfo_apparent_power_va{{device="probe",site="{site}"}}'):
        assert time.monotonic() < deadline, "the historian never stored a state"
        pub.client.publish(f"{pub.prefix}/teleinfo/probe/journal", json.dumps(state),
                           qos=1).wait_for_publish(5)


def linky(vm: VM) -> dict[str, list[float]]:
    """The linky's apparent power per site: its values."""
    return {s.labels.get("site", ""): s.values
            for s in vm.export('teleinfo_apparent_power_va{device="linky"}')}


def test_two_boxes_with_one_device_id_stay_two_series(
    tmp_path: Path, broker: Broker, prefix: str, vm: VM,
) -> None:
    sites = {prefix: None, f"{prefix}b": "garage"}  # the second one named in its config
    procs = [historian(tmp_path / str(i), broker, p, vm, **({"site": s} if s else {})).start()
             for i, (p, s) in enumerate(sites.items())]
    pubs = [Publisher(broker, p) for p in sites]
    try:
        for pub, tag in zip(pubs, (prefix, "garage"), strict=True):
            probe(pub, vm, tag)
        pubs[0].send(3)  # 1000, 1001, 1002
        pubs[1].n = 100
        pubs[1].send(2)  # 1100, 1101, at other times: a merge would show 5 values
        wait_until(lambda: sum(len(v) for v in linky(vm).values()) >= 5, 30, "the states")
        assert linky(vm) == {prefix: [1000.0, 1001.0, 1002.0], "garage": [1100.0, 1101.0]}
    finally:
        for pub in pubs:
            pub.close()
        for proc in procs:
            proc.stop()


def queued(work: Path) -> int:
    """The linky's states in the historian's disk queue for the database (one line each
    with apparent_power_va; services/historian/spool.py)."""
    with closing(sqlite3.connect(work / "data" / "influx-queue.sqlite3", timeout=5)) as db:
        return int(db.execute("SELECT count(*) FROM spool WHERE item LIKE "
                              "'teleinfo,device=linky,%apparent_power_va=%'").fetchone()[0])


def test_points_waiting_for_the_interval_survive_a_kill(
    tmp_path: Path, broker: Broker, prefix: str, vm: VM,
) -> None:
    """The historian stores and acks while the sink waits its hour; kill -9 then: the
    restarted one sends what waited, each point once."""
    proc = historian(tmp_path, broker, prefix, vm, write_interval_s=3600).start()
    pub = Publisher(broker, prefix)
    try:
        probe(pub, vm, prefix)  # the first request; the next one waits an hour
        pub.send(20)
        # All of them: a state still unacknowledged at the kill comes back from the broker
        # after the restarted sink's first request, and would wait its hour.
        wait_until(lambda: queued(tmp_path) == 20, 30, "the states in the disk queue")
        assert linky(vm) == {}  # waiting, not sent
        proc.stop(signal.SIGKILL)
        proc.start()
        try:
            wait_until(lambda: len(linky(vm).get(prefix, [])) >= 20, 30, "the waiting states")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {linky(vm)}, queued {queued(tmp_path)}\n"
                                 f"{proc.log[-3000:]}") from None
        assert linky(vm) == {prefix: [1000.0 + i for i in range(20)]}
    finally:
        pub.close()
        proc.stop()


def test_the_interval_gathers_small_batches_into_one_request(tmp_path: Path) -> None:
    lines = [f"w,device=d v={i} {(int(T0) + i) * 10**9}" for i in range(13)]
    with victoria_metrics(tmp_path) as vm:
        spool = Spool(tmp_path / "influx.spool", 10**8)
        sink = InfluxSink(spool, vm.url, None, "enerbox", "enerbox", batch_size=5,
                          write_interval_s=3600)
        sink.start()
        try:
            spool.put(lines[:1])
            wait_until(lambda: spool.count() == 0, 30, "the first line")
            for item in lines[1:4]:  # three puts, three wakes of the sink: no request
                spool.put([item])
            assert sink.flush(30), sink.last_error  # cuts the wait: one request for three
            assert sink.requests == 2
            spool.put(lines[4:13])  # nine: one full batch at once, then four
            assert sink.flush(30), sink.last_error
            assert sink.requests == 4
        finally:
            sink.stop()
            spool.close()
        values = [v for s in vm.export('{__name__="w_v"}') for v in s.values]
    assert sorted(values) == [float(i) for i in range(13)]
