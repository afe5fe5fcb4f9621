"""The fault run's counting: a reading missing or doubled in a sink is seen, one by one."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from faults.count import RAM, Tally, compare_history, compare_vm, history_counts, readings
from faults.truth import Seen
from services.historian.history import LocalHistory
from services.historian.points import flatten

PREFIX = "faults"
BASE = 1_780_000_000 // 60 * 60  # a minute boundary


def journal(service: str, device: str, ts: float, power: float) -> Seen:
    stamp = f"{ts:.3f}"
    iso = datetime.fromtimestamp(float(stamp), UTC).isoformat(timespec="milliseconds")
    body = json.dumps({"apparent_power_va": power, "current_a": [1.5], "ts": iso}).encode()
    return Seen(0.0, f"{PREFIX}/{service}/{device}/journal", body, False)


def truth_of(n: int) -> list[Seen]:
    msgs = [journal("teleinfo", "linky", BASE + i * 1.5, 100 + i) for i in range(n)]
    return msgs + msgs[:3]  # a publisher's replay after a reconnection: not new readings


def store(tmp_path: Path, msgs: list[Seen], skip: set[int], twice: set[int]) -> Path:
    db = tmp_path / "history.sqlite3"
    history = LocalHistory(db, retention_days=30)
    for i, msg in enumerate(msgs):
        state = msg.json()
        assert state is not None
        when = datetime.fromisoformat(state.pop("ts"))
        for _ in range(0 if i in skip else 2 if i in twice else 1):
            for point in flatten("teleinfo", "linky", state, when):
                history.add(point)
    history.flush(BASE + 3600, force=True)
    history.close()
    return db


def test_replays_are_one_reading() -> None:
    assert len(readings(truth_of(50), PREFIX)) == 50


def test_history_lost_and_doubled_per_minute(tmp_path: Path) -> None:
    msgs = truth_of(80)[:80]
    truth = readings(msgs, PREFIX)
    # 40 readings a minute: two lost in the first, one doubled in the second (aggregates
    # cannot tell a loss from a double within one minute: they would cancel out).
    db = store(tmp_path, msgs, skip={3, 4}, twice={50})
    tally: dict[str, Tally] = defaultdict(Tally)
    compare_history(truth, history_counts(db), lambda _ms: "all", tally)
    assert tally["all"].lost["history"] == 2
    assert tally["all"].doubled["history"] == 1


def test_history_shortfall_in_the_cut_minutes_is_charged_apart(tmp_path: Path) -> None:
    msgs = truth_of(80)[:80]
    truth = readings(msgs, PREFIX)
    db = store(tmp_path, msgs, skip={3, 70}, twice=set())
    tally: dict[str, Tally] = defaultdict(Tally)
    last_minute = truth[-1].minute
    compare_history(truth, history_counts(db), lambda _ms: "all", tally,
                    lambda m: "cut" if m == last_minute else None)
    assert tally["all"].lost["history"] == 1  # reading 3, in the first minute
    assert tally["cut"].lost[RAM] == 1  # reading 70, in the minute of the cut


def test_vm_lost_and_doubled_per_sample() -> None:
    truth = readings(truth_of(20), PREFIX)
    samples: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(truth):
        if i == 5:
            continue  # lost
        for metric in r.metrics:
            samples[metric] += [r.ts_ms] * (2 if i == 7 else 1)
    tally: dict[str, Tally] = defaultdict(Tally)
    compare_vm(truth, dict(samples), lambda _ms: "all", tally)
    assert tally["all"].lost["victoria-metrics"] == 1
    assert tally["all"].doubled["victoria-metrics"] == 1
