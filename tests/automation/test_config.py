"""The automation section: DESIGN.md's example loads, defaults, and what config check rejects."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import Field

from services.automation.config import AutomationConfig, catch_up_minutes, lenient_readings
from services.automation.units import Window
from services.core.config import ConfigError, Section, load_model

# DESIGN.md's "Automation" example, verbatim.
EXAMPLE = """
automation:
  tick_s: 5
  timezone: Europe/Paris          # local time of the rules (the default)
  day_starts_at: "06:00"          # daily counters reset here (the Tempo day runs 06:00 to 06:00)
  offpeak: ["22:00-06:00"]        # for planning ahead; default: learned from the meter's changes
  signals:                        # named inputs: one field of one device's state + a freshness limit
    grid:     {source: teleinfo/linky, field: net_power_va, stale_after_s: 30}
    soc:      {source: vedirect/hq2231sim01, field: soc_pct, stale_after_s: 60}
    charger:  {source: vedirect/hq2245sim02, field: charge_state, stale_after_s: 60}
    tank_c:   {source: temperature/ballon, field: temperature_c, stale_after_s: 180}
    heater_w: {source: pulses/heater, field: power_w, stale_after_s: 400}
  tariff: {source: teleinfo/linky, stale_after_s: 120}   # or just "teleinfo/linky" (120 s)
  surplus:                        # one allocator shared by every load with a `surplus:` block
    grid: grid                    # the signal: + import, − export
    smoothing_s: 60               # averaging time constant of the grid signal
    reserve_w: 50                 # export always left to the grid
    step_s: 60                    # at most one switch-on per step, all loads together
    # offgrid: {charger: charger, battery_current: <signal>, discharge_a: 2}  (no export to see)
  loads:
    - relay: water-heater
      power_w: 3000
      power_from: heater_w        # optional: its measured power, else power_w
      priority: 1                 # lower number = served first
      surplus: {margin_w: 100, on_after_s: 60, off_import_w: 200, off_after_s: 180}
      min_on_s: 600
      min_off_s: 300
      max_starts_per_hour: 4
      battery: {signal: soc, min: 90, resume: 95}
      daily: {min_on: 3h, max_on: 6h, by: "06:00", catch_up: offpeak}
      done_when: {relay: water-heater, is: "on", signal: heater_w, below: 50, for_s: 600}
      block:   [{tempo_today: red, period: hp}, {signal: tank_c, above: 75}]
      require: [{tempo_tomorrow: red, period: hc}]
      when_stale: "off"           # "off" (the default) | hold: keep the last wish hold_s, then off
      hold_s: 300
    - relay: pool-pump
      power_w: 900
      priority: 2
      surplus: {margin_w: 50, on_after_s: 120, off_import_w: 100, off_after_s: 300}
      allow: [{time: "10:00-18:00"}]
      daily: {min_on: 2h, by: "18:00", catch_up: "15:00-18:00"}
    - relay: living               # a fil pilote zone: orders instead of on/off
      schedule:
        - {time: "06:30-08:30", days: mon-fri, order: confort}
        - {time: "17:00-22:30", order: confort}
      default: eco                # its "off": what blocked, stale and "nothing applies" mean
      block: [{ejp: peak}, {ejp: notice}]
      when_stale: hold
"""  # noqa: E501 (verbatim: one comment of DESIGN.md's is 101 characters)
# The same, as a user may write it: YAML 1.1 then reads off/on as booleans, 18:00 as 1080.
UNQUOTED = (EXAMPLE.replace('"off"', "off").replace('"on"', "on").replace('"06:00"', "6:00")
            .replace('"18:00"', "18:00"))


def section(text: str = EXAMPLE) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(text)["automation"]
    return raw


def load(raw: dict[str, Any]) -> AutomationConfig:
    return AutomationConfig.model_validate(raw)


def test_the_design_example_loads() -> None:
    cfg = load(section())
    assert cfg.tick_s == 5 and cfg.day_starts_at == 360
    assert cfg.offpeak == (Window(22 * 60, 6 * 60),)
    assert cfg.signals["grid"].field == "net_power_va"
    assert cfg.tariff is not None and cfg.tariff.stale_after_s == 120
    heater, pump, living = cfg.loads
    assert heater.daily is not None and heater.daily.min_on == 3 * 3600
    assert heater.daily.max_on == 6 * 3600 and heater.daily.catch_up == "offpeak"
    assert heater.done_when is not None and heater.done_when[0].is_ == "on"
    assert heater.done_when[0].for_s == 600 and len(heater.block) == 2
    assert heater.when_stale == "off" and heater.battery is not None
    assert pump.daily is not None and pump.daily.catch_up == (Window(900, 1080),)
    assert pump.allow[0].time == Window(600, 1080) and pump.priority == 2
    assert living.default == "eco" and living.when_stale == "hold"
    assert living.schedule[0].days == frozenset({1, 2, 3, 4, 5}) and living.priority is None
    assert cfg.by_of(heater) == 360 and cfg.by_of(pump) == 1080
    assert catch_up_minutes(cfg, heater) == 480 and catch_up_minutes(cfg, pump) == 180


def test_unquoted_yaml11_values_read_the_same_and_are_reported() -> None:
    raw = section(UNQUOTED)
    assert raw["loads"][0]["when_stale"] is False and raw["loads"][1]["daily"]["by"] == 1080
    assert load(raw) == load(section())
    notes = lenient_readings(raw)
    assert 'automation.loads.0.when_stale: unquoted off (YAML boolean False) read as "off"' in (
        notes)
    assert any(n.startswith("automation.day_starts_at: unquoted 06:00") for n in notes)
    assert any(n.startswith("automation.loads.1.daily.by: unquoted 18:00") for n in notes)
    assert any(n.startswith("automation.loads.0.done_when.is: unquoted on") for n in notes)
    assert lenient_readings(section()) == []


def test_defaults() -> None:
    cfg = load({"tariff": "teleinfo/linky", "loads": [{"relay": "lamp"}]})
    assert cfg.tick_s == 5 and cfg.timezone == "Europe/Paris" and cfg.day_starts_at == 360
    assert cfg.offpeak is None and cfg.surplus is None
    assert cfg.tariff is not None and cfg.tariff.source == "teleinfo/linky"
    assert cfg.tariff.stale_after_s == 120
    lamp = cfg.loads[0]
    assert lamp.when_stale == "off" and lamp.hold_s == 300 and lamp.priority is None
    assert lamp.min_on_s == 0 and lamp.block == () and lamp.done_when is None
    assert cfg.by_of(lamp) == 360
    surplus = load({"signals": {"g": {"source": "a/b", "field": "f", "stale_after_s": "30s"}},
                    "surplus": {"grid": "g"}}).surplus
    assert surplus is not None and (surplus.smoothing_s, surplus.reserve_w) == (60, 50)


def test_offpeak_still_to_learn_is_not_checked() -> None:
    raw = section()
    del raw["offpeak"]
    cfg = load(raw)
    assert catch_up_minutes(cfg, cfg.loads[0]) is None


def edit(path: str, value: Any) -> dict[str, Any]:
    """The example with one key (dotted path, list indexes as numbers) set or deleted."""
    raw = section()
    *parents, last = path.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return raw


DELETE = object()
REJECTED = [
    ("loads.0.battery.resume", 90, "loads.0.battery", "resume (90) must be above min (90)"),
    ("loads.0.battery.resume", 85, "loads.0.battery", "resume (85) must be above min (90)"),
    ("loads.0.battery.signal", "socc", "automation",
     "loads.0 (water-heater).battery.signal: unknown signal 'socc' (signals: charger, grid, "
     "heater_w, soc, tank_c)"),
    ("loads.0.power_from", "heater", "automation",
     "loads.0 (water-heater).power_from: unknown signal 'heater'"),
    ("loads.0.block.1.signal", "tank", "automation",
     "loads.0 (water-heater).block.1.signal: unknown signal 'tank'"),
    ("loads.0.done_when.signal", "w", "automation",
     "loads.0 (water-heater).done_when.0.signal: unknown signal 'w'"),
    ("surplus.grid", "meter", "automation", "surplus.grid: unknown signal 'meter'"),
    ("surplus", {"offgrid": {"charger": "charger", "battery_current": "amps"}}, "automation",
     "surplus.offgrid.battery_current: unknown signal 'amps'"),
    ("surplus", {"grid": "grid", "offgrid": {"charger": "charger", "battery_current": "soc"}},
     "surplus", "give exactly one of 'grid' (a signal) or 'offgrid'"),
    ("loads.0.daily.by", "00:00", "automation",
     "loads.0 (water-heater).daily.min_on: 3h does not fit in its catch-up windows before "
     "00:00 (2h, less any time outside allow)"),
    ("loads.1.allow", [{"time": "10:00-16:30"}], "automation",
     "loads.1 (pool-pump).daily.min_on: 2h does not fit in its catch-up windows before 18:00 "
     "(1h30min, less any time outside allow)"),
    ("loads.1.daily.by", "16:00", "automation", "2h does not fit in its catch-up windows "
     "before 16:00 (1h,"),
    ("loads.2.relay", "pool-pump", "automation",
     "loads: each relay may appear once, repeated: pool-pump"),
    ("loads.2.schedule.1.order", "warm", "loads.2.schedule.1",
     "order 'warm' is not a fil pilote order (confort, eco, hors-gel, arret, confort-1, "
     "confort-2)"),
    ("loads.2.schedule.1.state", "on", "loads.2.schedule.1", "give exactly one of 'order'"),
    ("loads.2.default", DELETE, "loads.2", "a schedule of orders is a fil pilote zone's"),
    ("loads.2.default", "cosy", "loads.2", "default 'cosy' is not off, on or a fil pilote"),
    ("loads.2.schedule.0", {"time": "06:00-07:00", "state": "on"}, "loads.2",
     "use either order (a zone) or state (a switch), not both"),
    ("tick_s", 0, "tick_s", "greater than 0"),
    ("tick_s", "-5s", "tick_s", "is not a duration"),
    ("signals.grid.stale_after_s", 0, "signals.grid.stale_after_s", "greater than 0"),
    ("signals.grid.source", "linky", "signals.grid.source", "is not a source"),
    ("tariff", "linky", "tariff.source", "is not a source"),
    ("loads.0.hold_s", "0min", "loads.0.hold_s", "greater than 0"),
    ("loads.0.min_on_s", -1, "loads.0.min_on_s", "greater than or equal to 0"),
    ("loads.0.surplus.on_after_s", -60, "loads.0.surplus.on_after_s", "greater than or equal"),
    ("loads.0.daily.min_on", 0, "loads.0.daily.min_on", "greater than 0"),
    ("loads.0.daily.max_on", "25h", "loads.0.daily.max_on", "less than or equal to 86400"),
    ("loads.0.daily.max_on", "2h", "loads.0.daily", "min_on (3h) is above max_on (2h)"),
    ("loads.0.done_when.for_s", 0, "loads.0.done_when.0.for_s", "greater than 0"),
    ("loads.0.max_starts_per_hour", 0, "loads.0.max_starts_per_hour", "greater than or equal"),
    ("loads.0.power_w", DELETE, "loads.0", "a load with 'surplus' needs power_w"),
    ("loads.0.power_w", 0, "loads.0.power_w", "greater than 0"),
    ("loads.0.when_stale", "on", "loads.0.when_stale", "'off' or 'hold'"),
    ("loads.0.relay", "Water Heater", "loads.0.relay", "must be a relay id"),
    ("loads.1.daily.min_on", DELETE, "loads.1.daily", "catch_up needs a min_on"),
    ("loads.1.daily.catch_up", "15:00-15:00", "loads.1.daily.catch_up", "empty window"),
    ("surplus", DELETE, "automation", "loads with a 'surplus' block need the 'surplus' section"),
    ("timezone", "Europe/Pariss", "timezone", "unknown time zone 'Europe/Pariss'"),
    ("day_starts_at", "6h", "day_starts_at", "is not a time of day"),
    ("signals.Grid", {"source": "a/b", "field": "f", "stale_after_s": 5}, "signals",
     "signal names must be slugs"),
    ("loads.0.colour", "red", "loads.0.colour", "unknown key"),
]


class Root(Section):
    """A root with only this section, read the way the app reads its file."""

    automation: AutomationConfig = Field(default_factory=AutomationConfig)


@pytest.mark.parametrize(("path", "value", "key", "message"), REJECTED,
                         ids=[f"{r[0]}={r[1]!r}"[:60] for r in REJECTED])
def test_rejected_with_the_key_and_why(
    path: str, value: Any, key: str, message: str, tmp_path: Path
) -> None:
    file = tmp_path / "enerbox.yaml"
    file.write_text(yaml.safe_dump({"automation": edit(path, value)}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_model(Root, file, env={})
    # Cross-key checks are the section's own: reported as "automation: <key>: <why>".
    start = "automation:" if key == "automation" else f"automation.{key}"
    lines = [p for p in info.value.problems if p.startswith(start)]
    assert any(message in line for line in lines), info.value.report()


def test_every_problem_is_listed_at_once() -> None:
    raw = edit("loads.0.power_from", "nope")
    raw["surplus"]["grid"] = "nothing"
    raw["loads"][1]["relay"] = "water-heater"
    with pytest.raises(ValueError, match="repeated: water-heater") as info:
        load(raw)
    assert "surplus.grid: unknown signal 'nothing'" in str(info.value)
    assert "loads.0 (water-heater).power_from: unknown signal 'nope'" in str(info.value)


def test_the_schedule_picks_the_first_slot_and_wrapping_slots_keep_their_start_day() -> None:
    living = load(section()).loads[2]
    paris = ZoneInfo("Europe/Paris")
    assert living.scheduled(datetime(2026, 1, 14, 7, 0, tzinfo=paris)) == "confort"  # Wed
    assert living.scheduled(datetime(2026, 1, 17, 7, 0, tzinfo=paris)) is None  # Saturday
    assert living.scheduled(datetime(2026, 1, 17, 18, 0, tzinfo=paris)) == "confort"
    night = load({"loads": [{"relay": "boiler", "schedule": [
        {"time": "22:00-02:00", "days": "fri", "state": True}]}]}).loads[0]
    assert night.scheduled(datetime(2026, 1, 17, 1, 0, tzinfo=paris)) == "on"  # Friday's night
    assert night.scheduled(datetime(2026, 1, 16, 1, 0, tzinfo=paris)) is None  # Thursday's
