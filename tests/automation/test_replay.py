"""`enerbox automation replay` through its real command line, on days written as JSONL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests.automation.replay_cli import CONFIG, at, meter_rows, replay, row, sunny


def _ts(line: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(line["ts"]))


def test_sunny_day_heater_by_surplus_without_over_allocating(tmp_path: Path) -> None:
    # About 2.6 kW exported at the peak: the heater (2000 W) fits, the pump (900 W) fits only
    # if the heater's power were counted twice (the recording has the home without it).
    def grid(t: datetime) -> float:
        return max(-2600.0, sunny(t))

    run = replay(tmp_path, meter_rows(at("10:00"), at("14:00"), grid))
    assert run.code == 0, run.stderr
    heater, pump, living = run.of("water-heater"), run.of("pool-pump"), run.of("living")
    assert [line["ts"] for line in run.lines[:3]] == [at("10:00").isoformat()] * 3
    assert heater[0]["output"] == "off" and pump[0]["output"] == "off"
    assert living[0]["output"] == "eco"  # its default order, off the schedule
    on = next(line for line in heater if line["output"] == "on")
    assert on["source"] == "auto" and on["status"] == "surplus"
    assert all(line["output"] == "off" for line in pump), pump
    summary = run.summary["relays"]
    assert summary["water-heater"]["starts"] == 1
    assert summary["water-heater"]["on_s"] == (at("14:00") - _ts(on)).total_seconds()
    assert summary["pool-pump"] == {"on_s": 0, "starts": 0}


def test_more_sun_gives_the_pump_its_turn(tmp_path: Path) -> None:
    # 4 kW exported: both fit, the heater (priority 1) first, the pump a step later.
    run = replay(tmp_path, meter_rows(at("11:00"), at("13:00"), lambda t: -4000.0))
    assert run.code == 0, run.stderr
    heater_on = next(_ts(x) for x in run.of("water-heater") if x["output"] == "on")
    pump_on = next(_ts(x) for x in run.of("pool-pump") if x["output"] == "on")
    assert heater_on < pump_on


def test_user_order_then_back_to_auto_on_expiry(tmp_path: Path) -> None:
    rows = meter_rows(at("08:00"), at("09:00"), lambda t: 600.0)
    rows.append(row(at("08:20:02"), "relays/water-heater/set", {"mode": "on", "for_s": 600}))
    rows.sort(key=lambda r: str(r["ts"]))
    run = replay(tmp_path, rows)
    assert run.code == 0, run.stderr
    heater = run.of("water-heater")
    assert [(x["output"], x["source"]) for x in heater] == [
        ("off", "auto"), ("on", "user"), ("off", "auto")]
    assert _ts(heater[1]) == at("08:20:02")  # the relay acts on the command at once
    assert _ts(heater[2]) - _ts(heater[1]) < timedelta(seconds=600 + 5)
    assert _ts(heater[2]) - _ts(heater[1]) >= timedelta(seconds=600)
    assert run.summary["relays"]["water-heater"] == {"on_s": 600, "starts": 1}


def test_shed_row_overrides_then_restores(tmp_path: Path) -> None:
    rows = meter_rows(at("11:00"), at("12:30"), lambda t: -4000.0)
    rows += [row(at("12:00"), "relays/water-heater/shed",
                 {"shed": True, "reason": "phase 1 over 45 A"}),
             row(at("12:10"), "relays/water-heater/shed", {"shed": False})]
    rows.sort(key=lambda r: str(r["ts"]))
    run = replay(tmp_path, rows)
    assert run.code == 0, run.stderr
    changes = [(x["output"], x["source"], x["ts"]) for x in run.of("water-heater")]
    assert ("off", "shed", at("12:00").isoformat()) in changes
    after = [c for c in changes if c[2] >= at("12:10").isoformat()]
    assert after[0][:2] == ("on", "auto")
    shed_line = next(x for x in run.of("water-heater") if x["source"] == "shed")
    assert "phase 1 over 45 A" in shed_line["reason"]


def test_zone_follows_its_schedule_and_counts_confort_as_on(tmp_path: Path) -> None:
    rows = meter_rows(at("16:30"), at("23:00"), lambda t: 800.0, every_s=20)
    run = replay(tmp_path, rows)
    assert run.code == 0, run.stderr
    living = [(x["output"], x["ts"]) for x in run.of("living")]
    assert living == [("eco", at("16:30").isoformat()), ("confort", at("17:00").isoformat()),
                      ("eco", at("22:30").isoformat())]
    assert run.summary["relays"]["living"] == {"on_s": 5.5 * 3600, "starts": 1}


def test_zone_order_from_a_user(tmp_path: Path) -> None:
    rows = meter_rows(at("09:00"), at("09:30"), lambda t: 800.0, every_s=20)
    rows.append(row(at("09:10"), "relays/living/set", {"order": "hors-gel", "for_s": 300}))
    rows.sort(key=lambda r: str(r["ts"]))
    run = replay(tmp_path, rows)
    assert run.code == 0, run.stderr
    assert [(x["output"], x["source"]) for x in run.of("living")] == [
        ("eco", "auto"), ("hors-gel", "user"), ("eco", "auto")]


def test_a_bad_row_exits_2_naming_its_line(tmp_path: Path) -> None:
    rows: list[dict[str, object] | str] = list(meter_rows(at("09:00"), at("09:00:20"),
                                                          lambda t: 0.0))
    rows.insert(2, '{"ts": "2026-07-01T09:00:05+02:00", "topic": "teleinfo/linky/state"')
    run = replay(tmp_path, rows)
    assert run.code == 2
    assert "line 3" in run.stderr and "not JSON" in run.stderr
    assert run.lines == []


def test_a_command_the_contract_refuses_exits_2_naming_its_line(tmp_path: Path) -> None:
    rows: list[dict[str, object] | str] = list(meter_rows(at("09:00"), at("09:00:20"),
                                                          lambda t: 0.0))
    rows.append(row(at("09:00:30"), "relays/water-heater/set", {"order": "confort"}))
    run = replay(tmp_path, rows)
    assert run.code == 2
    assert "line 4" in run.stderr and "fil pilote" in run.stderr


def test_a_naive_time_exits_2(tmp_path: Path) -> None:
    run = replay(tmp_path, [row(at("09:00"), "teleinfo/linky/state", {}),
                            '{"ts": "2026-07-01T09:00:05", "topic": "teleinfo/linky/state", '
                            '"payload": {}}'])
    assert run.code == 2 and "line 2" in run.stderr and "zone" in run.stderr


def test_a_bad_config_exits_2(tmp_path: Path) -> None:
    bad = CONFIG.replace("tick_s: 5", "tick_s: -5")
    run = replay(tmp_path, meter_rows(at("09:00"), at("09:01"), lambda t: 0.0), bad)
    assert run.code == 2
    assert "automation.tick_s" in run.stderr


def test_a_config_without_loads_exits_2(tmp_path: Path) -> None:
    run = replay(tmp_path, meter_rows(at("09:00"), at("09:01"), lambda t: 0.0),
                 "relays: {}\n")
    assert run.code == 2 and "automation.loads" in run.stderr


def test_a_missing_input_exits_2(tmp_path: Path) -> None:
    run = replay(tmp_path, [], CONFIG, str(tmp_path / "nowhere.jsonl"))
    assert run.code == 2 and "cannot read" in run.stderr


def test_rows_the_replay_plays_itself_are_skipped(tmp_path: Path) -> None:
    # A recording of the whole bus holds the relays' and the automation's own messages:
    # the replay plays those, so the recorded ones do not count.
    rows = meter_rows(at("08:00"), at("08:10"), lambda t: 600.0)
    rows += [row(at("08:01"), "relays/water-heater/state", {"state": "on", "source": "user"}),
             row(at("08:01"), "relays/water-heater/auto", {"state": "on"}),
             row(at("08:01"), "teleinfo/linky/raw", {"PAPP": "00600"})]
    rows.sort(key=lambda r: str(r["ts"]))
    run = replay(tmp_path, rows)
    assert run.code == 0, run.stderr
    assert [x["output"] for x in run.of("water-heater")] == ["off"]


def test_automation_switched_off_then_on(tmp_path: Path) -> None:
    # The load's "automation enabled" switch: off clears the wish (the relay's default).
    rows = meter_rows(at("11:00"), at("12:30"), lambda t: -4000.0)
    rows += [row(at("12:00"), "automation/water-heater/set", "OFF"),
             row(at("12:10"), "automation/water-heater/set", {"enabled": True})]
    rows.sort(key=lambda r: str(r["ts"]))
    run = replay(tmp_path, rows)
    assert run.code == 0, run.stderr
    heater = [(x["output"], x["source"], x["status"], x["ts"]) for x in run.of("water-heater")]
    assert ("off", "default", "disabled", at("12:00").isoformat()) in heater
    assert next(h[:2] for h in heater if h[3] > at("12:10").isoformat()) == ("on", "auto")


def test_a_power_from_signal_the_recording_lacks_reads_power_w(tmp_path: Path) -> None:
    # The heater's own meter (pulses/heater) is not in the recording: the replay makes it
    # read 2000 W while the heater is on, 0 while off, instead of leaving it stale (its
    # done_when, the thermostat, would then hold the load stale, and off, all day).
    config = CONFIG.replace(
        "    grid: {source: teleinfo/linky, field: net_power_va, stale_after_s: 30}\n",
        "    grid: {source: teleinfo/linky, field: net_power_va, stale_after_s: 30}\n"
        "    heater_w: {source: pulses/heater, field: power_w, stale_after_s: 60}\n").replace(
        "      power_w: 2000\n", "      power_w: 2000\n      power_from: heater_w\n"
        "      done_when: {relay: water-heater, is: \"on\", signal: heater_w, below: 50, "
        "for_s: 600}\n")
    assert "power_from: heater_w" in config
    run = replay(tmp_path, meter_rows(at("11:00"), at("12:00"), lambda t: -2600.0), config)
    assert run.code == 0, run.stderr
    heater = run.of("water-heater")
    assert ("on", "auto", "surplus") in [(x["output"], x["source"], x["status"]) for x in heater]
    assert all(x["status"] != "stale" for x in heater)
    assert all(x["output"] == "off" for x in run.of("pool-pump"))
