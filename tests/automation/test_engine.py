"""The engine's rule order on scripted days (fake clock), invariants checked on every tick."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from services.automation.config import AutomationConfig
from services.automation.daily import output_is_on
from services.automation.engine import Engine
from services.automation.engine_state import (
    Inputs,
    RelayInput,
    SignalInput,
    TariffInput,
    tariff_facts,
)
from tests.automation.days import PARIS, Script, Values, at, run_day

SUMMER = "2026-07-01"
WINTER = "2026-01-14"


def cfg(loads: list[dict[str, Any]], **extra: Any) -> AutomationConfig:
    """An automation section with the usual signals."""
    signals = {
        "grid": {"source": "teleinfo/linky", "field": "net_power_va", "stale_after_s": 30},
        "soc": {"source": "vedirect/bmv", "field": "soc_pct", "stale_after_s": 60},
        "tank_c": {"source": "temperature/ballon", "field": "temperature_c",
                   "stale_after_s": 180},
        "heater_w": {"source": "pulses/heater", "field": "power_w", "stale_after_s": 400},
    }
    data: dict[str, Any] = {"tick_s": 5, "signals": signals, "tariff": "teleinfo/linky",
                            "loads": loads, **extra}
    if any("surplus" in load for load in loads):
        data.setdefault("surplus", {"grid": "grid", "smoothing_s": 60, "reserve_w": 50,
                                    "step_s": 60})
    return AutomationConfig.model_validate(data)


def sun_w(now: datetime, peak: float) -> float:
    """A clear day's PV: a sine from 07:00 to 21:00 local."""
    hours = now.hour + now.minute / 60 - 7
    return max(0.0, math.sin(math.pi * hours / 14)) * peak


HEATER = {"relay": "water-heater", "power_w": 3000, "power_from": "heater_w", "priority": 1,
          "surplus": {"margin_w": 100, "on_after_s": 60, "off_import_w": 200,
                      "off_after_s": 180},
          "min_on_s": 600, "min_off_s": 300, "max_starts_per_hour": 4,
          "done_when": {"relay": "water-heater", "is": "on", "signal": "heater_w",
                        "below": 50, "for_s": 600}}


def test_summer_day_surplus_then_thermostat_opens() -> None:
    opens = at(SUMMER, "14:00")

    def signals(now: datetime, out: Mapping[str, str]) -> Values:
        on = out["water-heater"] == "on"
        heater = 3000.0 if on and now < opens else 0.0
        return {"grid": 400 - sun_w(now, 5000) + heater, "heater_w": heater}

    config = cfg([HEATER])
    day = run_day(config, Script(signals=signals), at(SUMMER, "06:00"), at(SUMMER, "20:00"),
                  step_s=10)
    first = day.first("water-heater", "surplus")
    assert first is not None and at(SUMMER, "09:00") < first < at(SUMMER, "12:00")
    assert day.at(at(SUMMER, "13:00"))["water-heater"].wish == "on"
    done = day.first("water-heater", "done")
    # on, drawing nothing for 10 minutes after the thermostat opened: done for the day
    assert done is not None and at(SUMMER, "14:10") <= done <= at(SUMMER, "14:11")
    reason = day.at(done)["water-heater"]
    assert reason.reason.startswith("fait : signal heater_w sous 50, relais water-heater allumé")
    assert "done_when held" in reason.reason_en
    assert all(d["water-heater"].wish == "off" for t, d in day.ticks if t >= done)
    assert day.at(at(SUMMER, "20:00"))["water-heater"].on_today_s > 3 * 3600


def test_grey_winter_day_caught_up_at_three_in_offpeak() -> None:
    load = {"relay": "water-heater", "power_w": 3000,
            "daily": {"min_on": "3h", "catch_up": "offpeak"}}
    config = cfg([load], offpeak=["22:00-06:00"])
    day = run_day(config, Script(), at(WINTER, "06:00"), at("2026-01-15", "06:10"), step_s=60)
    assert day.on_spans("water-heater") == [(at("2026-01-15", "03:00"),
                                             at("2026-01-15", "06:00"))]
    d = day.at(at("2026-01-15", "03:00"))["water-heater"]
    assert d.status == "catch_up" and d.hold is None
    assert d.reason == "rattrapage heures creuses : 3 h restantes avant 06:00"
    assert "still fits" in d.reason_en
    noon = day.at(at(WINTER, "12:00"))["water-heater"]
    assert noon.remaining_s == 3 * 3600 and noon.latest_start == at("2026-01-15", "03:00")
    assert noon.status == "idle" and noon.min_on_s == 3 * 3600 and noon.by == "06:00"
    assert noon.reason == "rattrapage à 03:00 (3 h dues avant 06:00)"


def _hphc(now: datetime, today: str = "red") -> dict[str, Any]:
    hp = 6 <= now.hour < 22
    return {"tariff_period": f"tempo_{today}_{'hp' if hp else 'hc'}", "tempo_today": today,
            "tempo_tomorrow": "blue"}


def test_red_tempo_day_blocked_in_hp_caught_up_in_hc() -> None:
    load = {"relay": "water-heater", "daily": {"min_on": "2h", "catch_up": "offpeak"},
            "block": [{"tempo_today": "red", "period": "hp"}],
            "schedule": [{"time": "12:00-14:00", "state": "on"}]}
    config = cfg([load], offpeak=["22:00-06:00"])
    day = run_day(config, Script(tariff=_hphc), at(WINTER, "06:00"),
                  at("2026-01-15", "05:59"), step_s=60)
    noon = day.at(at(WINTER, "13:00"))["water-heater"]
    assert noon.wish == "off" and noon.status == "blocked"
    assert noon.reason == "bloqué : jour rouge HP"
    assert noon.reason_en == "blocked: red day, peak hours"
    assert day.on_spans("water-heater") == [(at("2026-01-15", "04:00"),
                                             at("2026-01-15", "05:59"))]


def test_tariff_facts_mapping() -> None:
    now = at(WINTER, "12:00")
    facts = tariff_facts(TariffInput(now, "ejp_peak", ejp_notice=True), now, 120)
    assert facts is not None and facts.ejp == "peak" and facts.period is None
    facts = tariff_facts(TariffInput(now, "ejp_normal", ejp_notice=True), now, 120)
    assert facts is not None and facts.ejp == "notice"
    facts = tariff_facts(TariffInput(now, "tempo_blue_hc", "blue", "weird"), now, 120)
    assert facts is not None and facts.period == "hc" and facts.tempo_tomorrow == "unknown"
    facts = tariff_facts(TariffInput(now - timedelta(seconds=121), "hp"), now, 120)
    assert facts is not None and facts.period == "hp" and facts.stale


def test_soc_across_the_floor_and_back_through_the_resume_band() -> None:
    load = {"relay": "pump", "battery": {"signal": "soc", "min": 90, "resume": 95},
            "schedule": [{"time": "00:00-24:00", "state": "on"}]}
    levels = [(at(SUMMER, "10:00"), 96.0), (at(SUMMER, "11:00"), 89.0),
              (at(SUMMER, "12:00"), 92.0), (at(SUMMER, "13:00"), 95.0)]

    def signals(now: datetime, out: Mapping[str, str]) -> Values:
        return {"soc": [v for t, v in levels if t <= now][-1]}

    day = run_day(cfg([load]), Script(signals=signals), at(SUMMER, "10:00"),
                  at(SUMMER, "14:00"), step_s=60)
    statuses = {h: day.at(at(SUMMER, h))["pump"] for h in ("10:30", "11:30", "12:30", "13:30")}
    assert [d.wish for d in statuses.values()] == ["on", "off", "off", "on"]
    assert statuses["12:30"].status == "blocked"
    assert statuses["12:30"].reason == "batterie soc 92 : reprise à 95 (plancher 90)"
    assert statuses["11:30"].reason == "batterie soc 89 sous le plancher 90 (reprise à 95)"
    assert "back at 95" in statuses["12:30"].reason_en


def _silent_meter(now: datetime, out: Mapping[str, str]) -> Values:
    silent = at(SUMMER, "12:00") <= now < at(SUMMER, "12:02")
    return {"grid": None if silent else -2000.0}


def test_meter_silent_two_minutes_stale_then_off() -> None:
    load = {"relay": "pump", "require": [{"signal": "grid", "below": -1000}]}
    day = run_day(cfg([load]), Script(signals=_silent_meter), at(SUMMER, "11:55"),
                  at(SUMMER, "12:10"))
    assert day.at(at(SUMMER, "11:59"))["pump"].status == "required"
    stale = day.first("pump", "stale")
    assert stale is not None and stale == at(SUMMER, "12:00:30")  # last value 11:59:55: 35 s > 30 s
    assert day.at(stale)["pump"].wish == "off"
    assert day.at(stale)["pump"].reason == "données périmées : grid — arrêt"
    assert day.at(at(SUMMER, "12:02:05"))["pump"].status == "required"


def test_meter_silent_hold_then_off() -> None:
    load = {"relay": "pump", "require": [{"signal": "grid", "below": -1000}],
            "when_stale": "hold", "hold_s": 60}
    day = run_day(cfg([load]), Script(signals=_silent_meter), at(SUMMER, "11:55"),
                  at(SUMMER, "12:10"))
    held = day.at(at(SUMMER, "12:01"))["pump"]
    assert held.status == "stale" and held.wish == "on" and "holding" in held.reason_en
    assert held.reason.startswith("données périmées : grid — dernier état (allumé) gardé encore")
    after = day.at(at(SUMMER, "12:01:40"))["pump"]
    assert after.status == "stale" and after.wish == "off"


def _summer_signals(now: datetime, out: Mapping[str, str]) -> Values:
    cloud = 0.2 if (now.minute // 20) % 2 else 1.0  # 20 minutes of cloud every 40
    heater = 3000.0 if out.get("water-heater") == "on" else 0.0
    return {"grid": 400 - sun_w(now, 6000) * cloud + heater, "heater_w": heater}


def test_restart_mid_run_gives_identical_decisions() -> None:
    load = {**HEATER, "done_when": None, "daily": {"min_on": "2h", "catch_up": "offpeak"}}
    config = cfg([load], offpeak=["22:00-06:00"])
    start, end = at(SUMMER, "09:00"), at(SUMMER, "16:00")
    one = run_day(config, Script(signals=_summer_signals), start, end, roundtrip=False)
    two = run_day(config, Script(signals=_summer_signals), start, end,
                  restart_at=at(SUMMER, "12:30"))
    assert len(one.on_spans("water-heater")) > 1  # the clouds make it switch
    for (t1, d1), (t2, d2) in zip(one.ticks, two.ticks, strict=True):
        assert t1 == t2 and d1 == d2, t1


def test_sequencing_b_only_after_a_has_run_five_minutes() -> None:
    a = {"relay": "a", "schedule": [{"time": "10:00-11:00", "state": "on"}]}
    b = {"relay": "b", "require": [{"relay": "a", "is": "on", "for_s": 300}]}
    day = run_day(cfg([a, b]), Script(), at(SUMMER, "09:55"), at(SUMMER, "11:10"))
    assert day.first("a", "scheduled") is not None
    a_on = day.on_spans("a")[0][0]
    b_on = day.on_spans("b")[0][0]
    assert a_on == at(SUMMER, "10:00")
    assert b_on - a_on == timedelta(seconds=300)  # A's own "since" times it
    assert day.on_spans("b")[0][1] == at(SUMMER, "11:00:05")  # A seen off a tick later


def test_min_on_binds_a_surplus_choice_but_not_a_block() -> None:
    load = {**HEATER, "done_when": None, "block": [{"signal": "tank_c", "above": 75}]}
    config = cfg([load])

    def signals(now: datetime, out: Mapping[str, str]) -> Values:
        on = out["water-heater"] == "on"
        sunny = now < at(SUMMER, "12:03")
        heater = 3000.0 if on else 0.0
        hot = now >= at(SUMMER, "12:08")
        return {"grid": (-4000.0 if sunny else 500.0) + heater, "heater_w": heater,
                "tank_c": 80.0 if hot else 50.0}

    day = run_day(config, Script(signals=signals), at(SUMMER, "12:00"), at(SUMMER, "12:20"),
                  step_s=5)
    on_at = day.first("water-heater", "surplus")
    assert on_at is not None
    bound = day.at(at(SUMMER, "12:07"))["water-heater"]
    assert bound.wish == "on" and bound.hold == "min_on" and bound.status in {"idle", "surplus"}
    assert bound.reason.startswith("maintenu allumé : durée minimale 10 min (encore ")
    assert ", puis " in bound.reason
    blocked = day.at(at(SUMMER, "12:08"))["water-heater"]
    assert blocked.wish == "off" and blocked.status == "blocked"  # 1-5 act at once


def test_min_off_binds_a_choice() -> None:
    load = {"relay": "pump", "min_off_s": 600,
            "schedule": [{"time": "10:00-10:05", "state": "on"},
                         {"time": "10:07-11:00", "state": "on"}]}
    day = run_day(cfg([load]), Script(), at(SUMMER, "09:59"), at(SUMMER, "10:30"), step_s=60)
    held = day.at(at(SUMMER, "10:08"))["pump"]
    assert held.hold == "min_off" and held.status == "scheduled" and held.wish == "off"
    assert held.reason == ("maintenu éteint : arrêt minimal 10 min (encore 7 min), "
                           "puis programme : allumé")
    assert day.on_spans("pump")[1][0] == at(SUMMER, "10:15")


def test_max_starts_per_hour_caps_automation_starts() -> None:
    slots = [{"time": f"10:{m:02d}-10:{m + 5:02d}", "state": "on"} for m in range(0, 60, 10)]
    load = {"relay": "pump", "max_starts_per_hour": 2, "schedule": slots}
    day = run_day(cfg([load]), Script(), at(SUMMER, "10:00"), at(SUMMER, "10:59"), step_s=60)
    assert len(day.on_spans("pump")) == 2
    waiting = day.at(at(SUMMER, "10:21"))["pump"]
    assert waiting.hold == "max_starts" and waiting.status == "scheduled"
    assert waiting.reason == ("maintenu éteint : 2 démarrages dans l'heure (max 2), "
                              "puis programme : allumé")


def test_shed_time_is_not_on_time_and_user_on_counts() -> None:
    load = {"relay": "pump", "daily": {"min_on": "1h"},
            "schedule": [{"time": "10:00-12:00", "state": "on"}]}

    def forced(now: datetime) -> Mapping[str, RelayInput]:
        if at(SUMMER, "10:30") <= now < at(SUMMER, "11:00"):
            return {"pump": RelayInput("off", "shed")}
        return {}

    day = run_day(cfg([load]), Script(forced=forced), at(SUMMER, "10:00"),
                  at(SUMMER, "11:00"), step_s=60)
    last = day.ticks[-1][1]["pump"]
    assert last.on_today_s == 30 * 60 and last.remaining_s == 30 * 60
    assert last.starts_today == 1


def test_zone_orders_and_ejp_block() -> None:
    zone = {"relay": "living", "default": "eco", "when_stale": "hold",
            "schedule": [{"time": "17:00-22:30", "order": "confort"}],
            "block": [{"ejp": "peak"}, {"ejp": "notice"}]}
    engine = Engine(cfg([zone]))
    now = at(WINTER, "18:00")
    relays = {"living": RelayInput("eco")}
    normal = Inputs(tariff=TariffInput(now, "ejp_normal"), relays=relays)
    decisions, state = engine.tick(now, normal)
    assert decisions["living"].wish == "confort" and decisions["living"].status == "scheduled"
    assert decisions["living"].reason == "programme : confort"
    peak = Inputs(tariff=TariffInput(now, "ejp_peak"), relays=relays)
    decisions, state = engine.tick(now + timedelta(seconds=5), peak, state)
    assert decisions["living"].wish == "eco" and decisions["living"].status == "blocked"
    assert [e.kind for e in decisions["living"].events] == ["decision"]
    assert not output_is_on(decisions["living"].wish)


def test_unreachable_runs_what_is_left_with_one_event() -> None:
    load = {"relay": "pump", "daily": {"min_on": "2h", "by": "18:00",
                                       "catch_up": "15:00-18:00"}}
    engine = Engine(cfg([load]))
    state = None
    events = []
    now = at(SUMMER, "16:30")  # 1h30 of window left, 2 h owed
    for _ in range(10):
        decisions, state = engine.tick(now, Inputs(relays={"pump": RelayInput("off")}), state)
        events += [e for e in decisions["pump"].events if e.kind == "unreachable"]
        now += timedelta(seconds=5)
    assert decisions["pump"].status == "unreachable" and decisions["pump"].wish == "on"
    assert len(events) == 1 and "owed" in events[0].reason_en
    assert PARIS.key == "Europe/Paris"


def test_disabled_load_is_off_unallotted_and_still_counted() -> None:
    """A load the user switched off: status disabled, wish off, no surplus share, its real
    on-time still counted (a user running it counts)."""
    pump = {"relay": "pump", "power_w": 1000, "priority": 1,
            "surplus": {"margin_w": 0, "on_after_s": 0, "off_import_w": 0, "off_after_s": 0},
            "daily": {"min_on": "1h"}}
    heater = {"relay": "water-heater", "power_w": 2000, "priority": 2,
              "surplus": {"margin_w": 0, "on_after_s": 0, "off_import_w": 0, "off_after_s": 0}}
    config = cfg([pump, heater], surplus={"grid": "grid", "smoothing_s": 0, "reserve_w": 0,
                                          "step_s": 0})
    engine = Engine(config)
    now = at(SUMMER, "12:00")
    state: dict[str, Any] | None = None
    # The user runs the pump by hand: 1 kW the grid sees, 2.1 kW exported besides.
    relays = {"pump": RelayInput("on", "user"), "water-heater": RelayInput("off", "auto")}
    for k in range(3):
        t = now + timedelta(seconds=5 * k)
        inputs = Inputs(signals={"grid": SignalInput(-2100.0, t)}, relays=relays,
                        disabled=frozenset({"pump"}))
        decisions, state = engine.tick(t, inputs, state)
    d = decisions["pump"]
    assert d.status == "disabled" and d.wish == "off" and d.hold is None
    assert d.reason == "automatisme désactivé" and d.reason_en == "automation disabled"
    assert d.on_today_s == 10 and d.remaining_s == 3600 - 10
    # Its power is not added back as routed: the heater sees 2.1 kW, enough for its 2 kW.
    assert decisions["water-heater"].status == "surplus"
    assert decisions["water-heater"].reason == "surplus : 2 100 W disponibles"
    assert [e.status for e in decisions["pump"].events] == []  # disabled since the first tick


def test_disabled_then_enabled_again_decides_as_before() -> None:
    load = {"relay": "pump", "schedule": [{"time": "10:00-11:00", "state": "on"}]}
    engine = Engine(cfg([load]))
    now = at(SUMMER, "10:30")
    relays = {"pump": RelayInput("off")}
    off, state = engine.tick(now, Inputs(relays=relays, disabled=frozenset({"pump"})))
    assert off["pump"].status == "disabled" and off["pump"].wish == "off"
    on, state = engine.tick(now + timedelta(seconds=5), Inputs(relays=relays), state)
    assert on["pump"].status == "scheduled" and on["pump"].wish == "on"
    assert [(e.kind, e.status, e.reason_en) for e in on["pump"].events] == [
        ("decision", "scheduled", "schedule: on")]


def test_waiting_for_surplus_says_what_is_available_and_needed() -> None:
    surplus = {"grid": "grid", "smoothing_s": 0, "reserve_w": 50, "step_s": 60}
    config = cfg([{**HEATER, "done_when": None}], surplus=surplus)
    now = at(SUMMER, "12:00")
    inputs = Inputs(signals={"grid": SignalInput(-1250.0, now)},
                    relays={"water-heater": RelayInput("off")})
    decisions, _ = Engine(config).tick(now, inputs)
    d = decisions["water-heater"]
    assert d.status == "idle" and d.wish == "off"
    assert d.reason == "en attente de surplus (1 200 W disponibles, 3 100 W nécessaires)"
    assert d.reason_en == "waiting for surplus (1,200 W available, 3,100 W needed)"


def test_english_reasons_when_the_language_is_en() -> None:
    load = {"relay": "pump", "block": [{"signal": "tank_c", "above": 75}]}
    now = at(SUMMER, "12:00")
    inputs = Inputs(signals={"tank_c": SignalInput(80.0, now)}, relays={"pump": RelayInput("off")})
    decisions, _ = Engine(cfg([load], language="en")).tick(now, inputs)
    d = decisions["pump"]
    assert d.reason == d.reason_en == "blocked: signal tank_c above 75"
    decisions, _ = Engine(cfg([load])).tick(now, inputs)
    assert decisions["pump"].reason == "bloqué : signal tank_c au-dessus de 75"


def test_a_state_dict_other_than_the_last_one_is_read_not_reused() -> None:
    """The live objects are reused only for the very dict the last tick returned: an older
    or copied state is parsed (a replay restarting from a saved state decides from it)."""
    load = {"relay": "pump", "daily": {"min_on": "2h"},
            "schedule": [{"time": "10:00-12:00", "state": "on"}]}
    engine = Engine(cfg([load]))
    now = at(SUMMER, "10:00")
    relays = {"pump": RelayInput("on", "auto")}
    _, first = engine.tick(now, Inputs(relays=relays))
    saved = json.loads(json.dumps(first))
    state = first
    for k in range(1, 13):
        _, state = engine.tick(now + timedelta(minutes=5 * k), Inputs(relays=relays), state)
    again, _ = engine.tick(now + timedelta(minutes=5), Inputs(relays=relays), saved)
    assert again["pump"].on_today_s == 300  # from the saved state, not the live hour


def test_offgrid_reasons_name_the_charger_and_the_battery() -> None:
    """Off-grid there is no export to count: the reason says what the charger and battery do."""
    signals = {"charger": {"source": "vedirect/mppt", "field": "charge_state",
                           "stale_after_s": 60},
               "battery_a": {"source": "vedirect/bmv", "field": "current_a",
                             "stale_after_s": 60}}
    load = {"relay": "pump", "power_w": 500,
            "surplus": {"margin_w": 0, "on_after_s": 60, "off_import_w": 0, "off_after_s": 60}}
    config = AutomationConfig.model_validate({
        "signals": signals, "loads": [load],
        "surplus": {"offgrid": {"charger": "charger", "battery_current": "battery_a"}}})
    now = at(SUMMER, "12:00")
    inputs = Inputs(signals={"charger": SignalInput("float", now),
                             "battery_a": SignalInput(3.24, now)},
                    relays={"pump": RelayInput("off")})
    decisions, _ = Engine(config).tick(now, inputs)
    assert decisions["pump"].reason == ("surplus suffisant (chargeur en float, batterie +3,2 A),"
                                        " allumage après 1 min")
    assert "?" not in decisions["pump"].reason_en
