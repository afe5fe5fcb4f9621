"""Local history: minute aggregates, batched flushes, merges, steps, retention, CSV, power cut."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from services.historian.history import LocalHistory
from services.historian.points import Point
from tests.conftest import ROOT

T0 = 1_700_000_000 - 1_700_000_000 % 86400  # a UTC midnight: minute and hour boundaries


def pt(ts: float, value: float, field: str = "power_w", device: str = "a",
       phase: str | None = None, measurement: str = "inverter") -> Point:
    tags = [("device", device)] + ([("phase", phase)] if phase else [])
    return Point(measurement, tuple(sorted(tags)), ((field, value),), round(ts * 1e9))


def rows(path: Path, what: str = "minute, min, max, sum, count") -> list[tuple[Any, ...]]:
    """Every stored minute bucket (all partitions), read with a fresh connection."""
    with closing(sqlite3.connect(path)) as db:
        tables = [t for (t,) in db.execute(
            "SELECT name FROM sqlite_schema WHERE name GLOB 'samples_[0-9]*' ORDER BY name")]
        return [r for t in tables for r in db.execute(f"SELECT {what} FROM {t} ORDER BY key")]


@pytest.fixture
def hist(tmp_path: Path) -> LocalHistory:
    return LocalHistory(tmp_path / "history.sqlite3")


def test_minute_aggregates(hist: LocalHistory) -> None:
    for s, v in ((0, 10), (15, 30), (59.9, 20), (60, 7), (61, 9)):
        hist.add(pt(T0 + s, v))
    assert hist.flush(T0 + 120) == 2
    m = T0 // 60
    # minute 0: min 10, max 30, sum 60, count 3 (mean 20); minute 1: 7 and 9.
    assert rows(hist.path) == [(m, 10, 30, 60, 3), (m + 1, 7, 9, 16, 2)]
    assert hist.series("inverter", "power_w", T0, T0 + 120, 60) == [
        (T0, 10, 20, 30), (T0 + 60, 7, 8, 9)]


def test_one_bucket_per_field_and_series(hist: LocalHistory) -> None:
    hist.add(Point("vedirect", (("device", "x"),), (("soc_pct", 80.0), ("power_w", -5.0)),
                   T0 * 10**9))
    hist.add(pt(T0, 1, device="b"))
    assert hist.flush(T0 + 60) == 3
    assert {(s["measurement"], s["field"], s["tags"]["device"]) for s in hist.list_series()} == {
        ("vedirect", "soc_pct", "x"), ("vedirect", "power_w", "x"), ("inverter", "power_w", "b")}


def test_flush_writes_closed_minutes_only_and_force_writes_all(hist: LocalHistory) -> None:
    hist.add(pt(T0 + 10, 1))
    hist.add(pt(T0 + 70, 2))  # minute 1 is still open at T0 + 90
    assert hist.flush(T0 + 90) == 1
    assert [r[0] for r in rows(hist.path)] == [T0 // 60]
    assert hist.flush(T0 + 95) == 0
    assert hist.flush(T0 + 100, force=True) == 1
    assert [r[0] for r in rows(hist.path)] == [T0 // 60, T0 // 60 + 1]
    assert hist.flush(T0 + 200, force=True) == 0


def test_restart_mid_minute_merges_buckets(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    first = LocalHistory(path)
    first.add(pt(T0 + 1, 1))
    first.add(pt(T0 + 2, 5))
    first.flush(T0 + 30, force=True)  # shutdown mid-minute
    first.close()
    second = LocalHistory(path)
    second.add(pt(T0 + 40, 3))
    second.add(pt(T0 + 50, -2))
    second.flush(T0 + 60)
    # min(1, -2), max(5, 3), 1+5+3-2, 2+2 samples: mean 7/4.
    assert rows(path) == [(T0 // 60, -2, 5, 7, 4)]
    assert second.series("inverter", "power_w", T0, T0 + 60, 60) == [(T0, -2, 1.75, 5)]


def _two_hours(hist: LocalHistory) -> None:
    """Value i at minute i (0..179) and i + 100 half a minute later."""
    for i in range(180):
        hist.add(pt(T0 + 60 * i, i))
        hist.add(pt(T0 + 60 * i + 30, i + 100))


def test_series_steps(hist: LocalHistory) -> None:
    _two_hours(hist)
    hist.flush(T0 + 2 * 3600 + 600)  # hours 0 and 1 are rolled up; hour 2 is partly written
    hist.flush(T0 + 2 * 3600 + 600, force=True)
    got = hist.series("inverter", "power_w", T0, T0 + 600, 60)
    assert got[3] == (T0 + 180, 3, 53, 103)
    # 300 s: minutes 5..9 -> min 5, max 109, mean (5+...+9 + 105+...+109) / 10 = 57.
    got = hist.series("inverter", "power_w", T0 + 300, T0 + 900, 300)
    assert got == [(T0 + 300, 5, 57, 109), (T0 + 600, 10, 62, 114)]
    # 3600 s: hour 0 from the rollup (min 0, max 159, mean 29.5 + 50), hour 1 too, hour 2
    # (minutes 120..179) from minutes: mean of i is 149.5.
    got = hist.series("inverter", "power_w", T0, T0 + 3 * 3600, 3600)
    assert got == [(T0, 0, 79.5, 159), (T0 + 3600, 60, 139.5, 219),
                   (T0 + 7200, 120, 199.5, 279)]
    # Bucket starts are multiples of the step: an unaligned start gets its whole bucket.
    assert hist.series("inverter", "power_w", T0 + 10, T0 + 50, 60) == [(T0, 0, 50, 100)]
    # Same answer whichever table it comes from: 7200 s over both tables.
    assert hist.series("inverter", "power_w", T0, T0 + 3 * 3600, 7200) == [
        (T0, 0, 109.5, 219), (T0 + 7200, 120, 199.5, 279)]


def test_series_fills_gaps_with_none_and_checks_step(hist: LocalHistory) -> None:
    hist.add(pt(T0, 1))
    hist.add(pt(T0 + 180, 2))
    hist.flush(T0 + 600)
    assert hist.series("inverter", "power_w", T0, T0 + 240, 60) == [
        (T0, 1, 1, 1), (T0 + 60, None, None, None), (T0 + 120, None, None, None),
        (T0 + 180, 2, 2, 2)]
    assert hist.series("inverter", "nothing", T0, T0 + 120, 60) == [
        (T0, None, None, None), (T0 + 60, None, None, None)]
    with pytest.raises(ValueError, match="multiple of 60"):
        hist.series("inverter", "power_w", T0, T0 + 60, 90)
    with pytest.raises(ValueError, match="buckets"):
        hist.series("inverter", "power_w", 0, T0, 60)


def test_tags_filtering(hist: LocalHistory) -> None:
    hist.add(pt(T0, 10, device="a", phase="1", field="current_a"))
    hist.add(pt(T0, 20, device="a", phase="2", field="current_a"))
    hist.add(pt(T0, 40, device="b", phase="1", field="current_a"))
    hist.flush(T0 + 60)

    def one(tags: dict[str, str] | None) -> tuple[float | None, ...]:
        return hist.series("inverter", "current_a", T0, T0 + 60, 60, tags=tags)[0][1:]

    assert one({"device": "a", "phase": "2"}) == (20, 20, 20)
    assert one({"device": "a"}) == (10, 15, 20)  # both phases of a
    assert one({"phase": "1"}) == (10, 25, 40)
    assert one(None) == (10, 70 / 3, 40)
    assert one({"device": "c"}) == (None, None, None)


def test_late_point_updates_the_hourly_rollup(hist: LocalHistory) -> None:
    hist.add(pt(T0 + 60, 5))
    hist.flush(T0 + 7200)  # hour 0 rolled up
    hist.add(pt(T0 + 120, 50))  # arrives late (a retained state, a buffered device)
    hist.flush(T0 + 7300)
    assert hist.series("inverter", "power_w", T0, T0 + 3600, 3600) == [(T0, 5, 27.5, 50)]


def test_prune_drops_partitions_past_the_retention(tmp_path: Path) -> None:
    hist = LocalHistory(tmp_path / "h.sqlite3", retention_days=2, partition_days=1)
    for day in range(5):
        hist.add(pt(T0 + day * 86400, day, device=f"d{day}"))
        hist.add(pt(T0 + day * 86400 + 7200, day, device="all"))
    hist.flush(T0 + 4 * 86400 + 8000)
    assert len(rows(hist.path)) == 10
    # The retention starts on day 2 at 02:13: day 2's partition holds newer minutes, so it
    # stays whole; days 0 and 1 go, minute rows (2 a day) and hourly rows (2 a day) alike.
    assert hist.prune(T0 + 4 * 86400 + 8000) == 4 + 4
    assert [r[0] for r in rows(hist.path)] == [(T0 + d * 86400 + s) // 60
                                               for d in (2, 3, 4) for s in (0, 7200)]
    assert {s["tags"]["device"] for s in hist.list_series()} == {"d2", "d3", "d4", "all"}
    assert hist.series("inverter", "power_w", T0, T0 + 5 * 86400, 86400) == [
        (T0, None, None, None), (T0 + 86400, None, None, None),
        (T0 + 2 * 86400, 2, 2, 2), (T0 + 3 * 86400, 3, 3, 3), (T0 + 4 * 86400, 4, 4, 4)]
    every = next(s for s in hist.list_series() if s["tags"]["device"] == "all")
    assert every["first"] == T0 + 2 * 86400  # the oldest kept minute
    assert hist.prune(T0 + 4 * 86400 + 8000) == 0
    # A series pruned away comes back with a new point.
    hist.add(pt(T0 + 5 * 86400, 1, device="d0"))
    hist.flush(T0 + 5 * 86400 + 60)
    assert "d0" in {s["tags"]["device"] for s in hist.list_series()}


def test_reads_span_partitions(tmp_path: Path) -> None:
    hist = LocalHistory(tmp_path / "h.sqlite3", partition_days=1)
    midnight = T0 + 86400  # partitions are UTC days here
    for s, v in ((-120, 1), (-60, 2), (0, 3), (60, 4)):
        hist.add(pt(midnight + s, v))
    hist.flush(midnight + 120)
    assert len(rows(hist.path, "minute")) == 4
    assert hist.series("inverter", "power_w", midnight - 600, midnight + 600, 600) == [
        (midnight - 600, 1, 1.5, 2), (midnight, 3, 3.5, 4)]
    # 7-minute buckets do not divide a day: the one from 23:58 holds minutes of both days.
    assert (midnight - 120) % 420 == 0
    assert hist.series("inverter", "power_w", midnight - 120, midnight + 120, 420) == [
        (midnight - 120, 1, 2.5, 4)]
    out = io.StringIO()
    assert hist.export_csv(out, midnight - 600, midnight + 600) == 4
    assert [line.split(",")[4] for line in out.getvalue().splitlines()[1:]] == [
        "1.0", "2.0", "3.0", "4.0"]


def test_list_series_first_and_last(hist: LocalHistory) -> None:
    hist.add(pt(T0 + 3600, 1))
    hist.add(pt(T0 + 7 * 3600 + 125, 1))
    hist.flush(T0 + 7 * 3600 + 200)  # the second minute is newer than the last rollup
    [s] = hist.list_series()
    assert s == {"measurement": "inverter", "tags": {"device": "a"}, "field": "power_w",
                 "first": T0 + 3600.0, "last": T0 + 7 * 3600 + 120.0}
    hist.add(pt(T0 + 60, 1))  # older than the first: first moves back
    hist.flush(T0 + 7 * 3600 + 300)
    assert hist.list_series()[0]["first"] == T0 + 60.0


def test_export_csv(hist: LocalHistory) -> None:
    hist.add(pt(T0 + 5, 1, device="linky", phase="2", field="current_a",
                measurement="teleinfo"))
    hist.add(pt(T0 + 6, 4, device="linky", phase="2", field="current_a",
                measurement="teleinfo"))
    hist.add(pt(T0 + 65, 7))
    hist.add(pt(T0 + 600, 9))  # outside the range
    hist.flush(T0 + 700)
    out = io.StringIO()
    assert hist.export_csv(out, T0, T0 + 120) == 2
    got = list(csv.reader(io.StringIO(out.getvalue())))
    stamp = "2023-11-14T00:00:00Z"
    assert got == [
        ["time", "measurement", "tags", "field", "min", "mean", "max", "count"],
        [stamp, "teleinfo", "device=linky;phase=2", "current_a", "1.0", "2.5", "4.0", "2"],
        [stamp.replace("00:00:00", "00:01:00"), "inverter", "device=a", "power_w", "7.0",
         "7.0", "7.0", "1"],
    ]


def test_a_failed_write_keeps_the_batch(hist: LocalHistory, tmp_path: Path) -> None:
    hist.add(pt(T0, 1))
    blocker = sqlite3.connect(hist.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: flush fails
    hist.db.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(sqlite3.OperationalError):
        hist.flush(T0 + 60)
    blocker.rollback()
    hist.add(pt(T0 + 1, 3))
    assert hist.flush(T0 + 60) == 1
    assert rows(hist.path) == [(T0 // 60, 1, 3, 4, 2)]


_CHILD = """
import sys
from pathlib import Path
from services.historian.history import LocalHistory
from services.historian.points import Point
hist = LocalHistory(Path(sys.argv[1]))
t0 = int(sys.argv[2])
minute = 0
while True:
    for s in range(60):  # 40 series, one point a second each
        for d in range(40):
            hist.add(Point("x", (("device", str(d)),), (("v", float(minute)),),
                           (t0 + minute * 60 + s) * 10**9))
    minute += 1
    hist.flush(t0 + minute * 60)
    print(minute, flush=True)  # every minute before this one is committed
"""


def test_power_cut_leaves_every_flushed_batch(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(T0)], cwd=ROOT,
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    flushed = 0
    while flushed < 8:
        line = child.stdout.readline()
        assert line, "the writer died"
        flushed = int(line)
    child.send_signal(signal.SIGKILL)  # mid-way through adding or writing the next minutes
    child.wait()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    by_minute: dict[int, list[tuple[int, float]]] = {}
    for minute, count, low in rows(path, "minute, count, min"):
        by_minute.setdefault(minute, []).append((count, low))
    got = [(m, len(b), min(c for c, _ in b), len({v for _, v in b}))
           for m, b in sorted(by_minute.items())]
    # Every acknowledged minute is there, whole: 40 series of 60 samples each; a later batch
    # is there whole or not at all.
    assert len(got) >= flushed
    for i, (minute, n_series, samples, same) in enumerate(got):
        assert (minute, n_series, samples, same) == (T0 // 60 + i, 40, 60, 1)
    reopened = LocalHistory(path)
    assert reopened.series("x", "v", T0, T0 + 60, 60) == [(T0, 0, 0, 0)]
