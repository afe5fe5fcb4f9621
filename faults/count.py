"""Reading by reading: what the ground truth saw on the journal against what each sink kept.

A reading is one state of one device, identified by (service, device, ts). The ground truth
is every journal message the fault run's own subscriber saw (deduplicated: a publisher replays
its last 30 s after a reconnection on purpose). The local history keeps one-minute
aggregates: a reading adds 1 to the ``count`` of each series it has a value for, so per device
and minute, the readings kept are compared series by series (a loss and a double within the
same minute and series would cancel out there). VictoriaMetrics keeps the raw samples: a
reading is there when its time is in the device's series, doubled when a series holds that
time twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from faults.truth import Seen
from faults.vm import Samples
from services.historian.points import flatten

Device = tuple[str, str]  # service, device
RAM = "history, in RAM at the cut"
SeriesKey = tuple[str, tuple[tuple[str, str], ...], str]  # measurement, tags, field


@dataclass(frozen=True)
class Reading:
    """One state as the ground truth saw it."""

    service: str
    device: str
    ts_ms: int
    series: tuple[SeriesKey, ...]  # the local history series it adds to
    metrics: tuple[str, ...]  # its VictoriaMetrics series (name and labels, as exported)

    @property
    def minute(self) -> int:
        """Its minute since the epoch (the local history's bucket)."""
        return self.ts_ms // 60_000


def readings(messages: list[Seen], prefix: str) -> list[Reading]:
    """Every distinct reading on ``<prefix>/<service>/<device>/journal``."""
    seen: dict[tuple[str, str, int], Reading] = {}
    head = prefix + "/"
    for msg in messages:
        parts = msg.topic.removeprefix(head).split("/")
        if not msg.topic.startswith(head) or len(parts) != 3 or parts[2] != "journal":
            continue
        state = msg.json()
        if state is None or not isinstance(state.get("ts"), str):
            continue
        when = datetime.fromisoformat(state.pop("ts"))
        service, device = parts[0], parts[1]
        key = (service, device, round(when.timestamp() * 1000))
        if key in seen:
            continue
        points = flatten(service, device, state, when)
        series = tuple((p.measurement, p.tags, name) for p in points for name, _ in p.fields)
        metrics = tuple(json.dumps({"__name__": f"{p.measurement}_{name}", **dict(p.tags)},
                                   sort_keys=True) for p in points for name, _ in p.fields)
        if series:
            seen[key] = Reading(service, device, key[2], series, metrics)
    return sorted(seen.values(), key=lambda r: (r.ts_ms, r.service, r.device))


@dataclass
class Tally:
    """Lost and doubled readings, per sink."""

    lost: Counter[str] = field(default_factory=Counter)
    doubled: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, sink: str, lost: int, doubled: int, where: str) -> None:
        """Count a mismatch, keeping a few examples to print."""
        self.lost[sink] += lost
        self.doubled[sink] += doubled
        if (lost or doubled) and len(self.examples) < 8:
            self.examples.append(f"{sink} {where}: lost {lost}, doubled {doubled}")


def history_counts(db_file: Path) -> dict[tuple[SeriesKey, int], int]:
    """(series, minute) -> readings counted, from every minute table of the local history."""
    db = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        names = {int(i): (m, tuple(sorted(json.loads(t).items())), f)
                 for i, m, t, f in db.execute("SELECT id, measurement, tags, field FROM series")}
        tables = [t for (t,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name GLOB 'samples_[0-9]*'")]
        out: dict[tuple[SeriesKey, int], int] = {}
        for table in tables:
            for key, count in db.execute(f"SELECT key, count FROM {table}"):  # noqa: S608
                sid, minute = int(key) & 0xFFFF, int(key) >> 16
                if sid in names:
                    out[(names[sid], minute)] = out.get((names[sid], minute), 0) + int(count)
        return out
    finally:
        db.close()


def compare_history(truth: list[Reading], stored: dict[tuple[SeriesKey, int], int],
                    phase_of: Callable[[int], str], tally: dict[str, Tally],
                    in_ram: Callable[[int], str | None] = lambda _m: None) -> None:
    """Per device and minute: the worst series' shortfall is lost, its excess doubled.
    ``in_ram(minute)``: the phase a minute's shortfall is charged to as "in RAM at a power
    cut" (the uncommitted minutes), None for any other minute."""
    want: dict[tuple[Device, int], Counter[SeriesKey]] = defaultdict(Counter)
    phases: dict[tuple[Device, int], Counter[str]] = defaultdict(Counter)
    for r in truth:
        for s in r.series:
            want[((r.service, r.device), r.minute)][s] += 1
        phases[((r.service, r.device), r.minute)][phase_of(r.ts_ms)] += 1
    for (device, minute), series in want.items():
        lost = max(max(0, n - stored.get((s, minute), 0)) for s, n in series.items())
        doubled = max(max(0, stored.get((s, minute), 0) - n) for s, n in series.items())
        where = f"{device[0]}/{device[1]} minute {minute}"
        cut = in_ram(minute)
        if cut is not None:
            tally[cut].add(RAM, lost, 0, where)
            lost = 0
        # A minute may span two phases: it is charged to the one most of its readings are in.
        phase = phases[(device, minute)].most_common(1)[0][0]
        tally[phase].add("history", lost, doubled, where)


def compare_vm(truth: list[Reading], samples: Samples, phase_of: Callable[[int], str],
               tally: dict[str, Tally]) -> None:
    """A reading is lost when its time is in none of its series; doubled when in one twice."""
    counted = {name: Counter(stamps) for name, stamps in samples.items()}
    for r in truth:
        hits = [counted.get(m, Counter()).get(r.ts_ms, 0) for m in r.metrics]
        lost = int(max(hits) == 0)
        doubled = int(max(hits) > 1)
        tally[phase_of(r.ts_ms)].add(
            "victoria-metrics", lost, doubled, f"{r.service}/{r.device} ts {r.ts_ms}")


def integrity(data_dir: Path) -> dict[str, str]:
    """``PRAGMA integrity_check`` of every SQLite file under the data directory."""
    out = {}
    for path in sorted(data_dir.rglob("*.sqlite3")):
        db = sqlite3.connect(path)
        try:
            out[path.name] = "; ".join(str(r[0]) for r in db.execute("PRAGMA integrity_check"))
        except sqlite3.DatabaseError as exc:
            out[path.name] = f"error: {exc}"
        finally:
            db.close()
    return out
