"""`enerbox automation replay --from-history DATE`: rows from the historian's own file."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from services.automation.config import AutomationConfig
from services.automation.replay_history import history_rows, repeat_s
from services.historian.history import LocalHistory
from services.historian.points import flatten
from tests.automation.replay_cli import CONFIG, at, replay

DAY = date(2026, 7, 1)


def _record(path: Path, start: datetime, end: datetime, grid: Callable[[datetime], float],
            index: Callable[[datetime], str], every_s: int = 10) -> None:
    """What the historian would have stored: the Linky's states through its own writer."""
    hist = LocalHistory(path)
    counters = {"hc": 1_000_000.0, "hp": 2_000_000.0}
    t = start
    while t < end:
        net = grid(t)
        counters[index(t)] += max(0.0, net) * every_s / 3600
        state = {"net_power_va": net, "energy_import_by_index_wh": dict(counters),
                 "tariff_period": index(t), "ejp_notice": False}
        for point in flatten("teleinfo", "linky", state, t):
            hist.add(point)
        t += timedelta(seconds=every_s)
    hist.flush(end.timestamp() + 120, force=True)
    hist.close()


def _offpeak(t: datetime) -> str:
    return "hc" if t.hour >= 22 or t.hour < 6 else "hp"


def _sunny(t: datetime) -> float:
    h = t.hour + t.minute / 60
    return round(400 - max(0.0, math.sin(math.pi * (h - 7) / 13)) * 3500)


def _automation() -> AutomationConfig:
    import yaml

    return AutomationConfig.model_validate(yaml.safe_load(CONFIG)["automation"])


def test_rows_are_minute_means_repeated_within_the_minute(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    _record(path, at("05:50"), at("06:10"), lambda t: 100.0 if t.second < 30 else 300.0,
            _offpeak)
    hist = LocalHistory(path)
    rows = history_rows(hist, _automation(), DAY)
    hist.close()
    assert repeat_s(_automation()) == 15.0  # half the grid signal's 30 s
    assert rows[0].ts == at("06:00")  # the automation day starts at 06:00
    assert [r.ts for r in rows[:4]] == [at("06:00") + timedelta(seconds=s)
                                        for s in (0, 15, 30, 45)]
    assert rows[-1].ts == at("06:09:45")
    first = json.loads(rows[0].payload)
    assert first["net_power_va"] == pytest.approx(200.0)  # the mean: spikes are smoothed
    assert first["ejp_notice"] is False
    # The hc index advanced in the hour before 06:00, the hp one from 06:00.
    assert first["tariff_period"] == "hp"
    assert {r.topic.service + "/" + str(r.topic.device) for r in rows} == {"teleinfo/linky"}


def test_the_period_is_carried_while_no_index_advances(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    # Exporting from 06:00: no index moves, the last one that did (hc) still runs.
    _record(path, at("05:30"), at("06:05"), lambda t: 500.0 if t < at("06:00") else -800.0,
            _offpeak)
    hist = LocalHistory(path)
    rows = history_rows(hist, _automation(), DAY)
    hist.close()
    assert {json.loads(r.payload)["tariff_period"] for r in rows} == {"hc"}


def test_tempo_colour_from_the_index_name(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    hist = LocalHistory(path)
    for k in range(10):
        t = at("07:00") + timedelta(minutes=k)
        state = {"net_power_va": 900, "energy_import_by_index_wh": {
            "blue_hp": 5000, "red_hc": 100, "red_hp": 200 + 10 * k}}
        for point in flatten("teleinfo", "linky", state, t):
            hist.add(point)
    hist.flush(at("08:00").timestamp(), force=True)
    payloads = [json.loads(r.payload) for r in history_rows(hist, _automation(), DAY)]
    hist.close()
    assert payloads[-1]["tariff_period"] == "red_hp"
    assert payloads[-1]["tempo_today"] == "red"


def test_replay_a_day_from_the_history(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    _record(path, at("10:00"), at("13:00"), _sunny, _offpeak)
    config = CONFIG + f"historian:\n  db_file: {path}\n"
    rows_out = tmp_path / "rows.jsonl"
    run = replay(tmp_path, [], config, "--from-history", "2026-07-01",
                 "--write-rows", str(rows_out))
    assert run.code == 0, run.stderr
    heater = run.of("water-heater")
    assert heater[0]["ts"] == at("10:00").isoformat()
    assert any(x["output"] == "on" and x["status"] == "surplus" for x in heater)
    assert run.summary["relays"]["water-heater"]["starts"] == 1
    # The rows it built replay the same from the file.
    again = replay(tmp_path, [], config, str(rows_out))
    assert again.code == 0, again.stderr
    assert again.lines == run.lines


def test_a_day_the_history_does_not_have_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    _record(path, at("10:00"), at("10:10"), _sunny, _offpeak)
    config = CONFIG + f"historian:\n  db_file: {path}\n"
    run = replay(tmp_path, [], config, "--from-history", "2026-06-01")
    assert run.code == 2 and "nothing the automation reads on 2026-06-01" in run.stderr
    run = replay(tmp_path, [], config, "--from-history", "yesterday")
    assert run.code == 2 and "YYYY-MM-DD" in run.stderr
    run = replay(tmp_path, [], CONFIG + f"historian:\n  db_file: {tmp_path / 'none.db'}\n",
                 "--from-history", "2026-07-01")
    assert run.code == 2 and "no history at" in run.stderr
