"""The condition grammar and its evaluation: all/any, windows, staleness, for_s, DST."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from services.automation.conditions import (
    AnyOf,
    Condition,
    HoldState,
    SignalValue,
    Snapshot,
    TariffFacts,
    Truth,
    evaluate,
    uses_relays,
    uses_signals,
    uses_tariff,
)
from services.core.config import Section

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")


class Holder(Section):
    """A model with one condition list, as a load has."""

    when: AnyOf


def conds(text: str) -> tuple[Condition, ...]:
    """Conditions written as in the YAML file (read as YAML 1.1)."""
    return Holder.model_validate({"when": yaml.safe_load(text)}).when


def at(text: str, **kw: Any) -> Snapshot:
    """A snapshot at a local Paris time given as 'YYYY-MM-DD HH:MM'."""
    now = datetime.fromisoformat(text).replace(tzinfo=PARIS)
    return Snapshot(now=now, **kw)


def truth(text: str, snap: Snapshot) -> Truth:
    return evaluate(conds(text), snap, HoldState(), "t")[0].truth


FRESH = TariffFacts(period="hp", tempo_today="red", tempo_tomorrow="unknown", ejp="none")


def test_a_map_is_all_of_its_keys_a_list_any_of_its_maps() -> None:
    snap = at("2026-01-14 10:00", tariff=FRESH)  # a Wednesday
    assert truth("{tempo_today: red, period: hp}", snap) is Truth.HOLDS
    assert truth("{tempo_today: red, period: hc}", snap) is Truth.FAILS
    assert truth("[{tempo_today: red, period: hc}, {tempo_today: red}]", snap) is Truth.HOLDS
    assert truth("[{period: hc}, {ejp: peak}]", snap) is Truth.FAILS
    outcome, _ = evaluate(conds("[{period: hc}, {days: wed}, {time: 09:00-11:00}]"), snap,
                          HoldState(), "t")
    assert outcome.holds and outcome.matched == conds("{days: wed}")[0]


def test_time_days_and_months() -> None:
    wed = at("2026-01-14 10:00")
    assert truth('{time: "10:00-18:00"}', wed) is Truth.HOLDS
    assert truth('{time: "08:00-10:00"}', wed) is Truth.FAILS  # the end is excluded
    assert truth("{days: mon-fri}", wed) is Truth.HOLDS
    assert truth("{days: [sat, sun]}", wed) is Truth.FAILS
    assert truth("{months: nov-feb}", wed) is Truth.HOLDS
    assert truth("{months: [jul, aug]}", wed) is Truth.FAILS


def test_a_window_wrapping_midnight_counts_on_the_day_it_started() -> None:
    rule = '{time: "22:00-06:00", days: fri}'
    assert truth(rule, at("2026-01-16 23:00")) is Truth.HOLDS  # Friday night
    assert truth(rule, at("2026-01-17 02:00")) is Truth.HOLDS  # Saturday 02:00: Friday's
    assert truth(rule, at("2026-01-16 02:00")) is Truth.FAILS  # Thursday's night
    assert truth(rule, at("2026-01-17 23:00")) is Truth.FAILS  # Saturday night
    # Months follow the start day too: New Year's night belongs to December.
    assert truth('{time: "22:00-06:00", months: dec}', at("2027-01-01 01:00")) is Truth.HOLDS


def test_signals_above_below_in() -> None:
    snap = at("2026-07-01 12:00", signals={
        "tank_c": SignalValue(76.0), "soc": SignalValue(95), "charger": SignalValue("float"),
    })
    assert truth("{signal: tank_c, above: 75}", snap) is Truth.HOLDS
    assert truth("{signal: tank_c, above: 76}", snap) is Truth.FAILS  # strictly
    assert truth("{signal: tank_c, below: 80, above: 70}", snap) is Truth.HOLDS
    assert truth("{signal: soc, in: [90, 95]}", snap) is Truth.HOLDS  # bounds included
    assert truth("{signal: soc, in: [96, 100]}", snap) is Truth.FAILS
    assert truth("{signal: charger, above: 0}", snap) is Truth.FAILS  # text never compares


def test_relay_is_on_or_off() -> None:
    snap = at("2026-07-01 12:00", relays={"a": "on", "zone": "confort-1", "eco-zone": "eco"})
    assert truth("{relay: a, is: on}", snap) is Truth.HOLDS  # unquoted on: YAML's True
    assert truth('{relay: a, is: "off"}', snap) is Truth.FAILS
    assert truth("{relay: zone, is: on}", snap) is Truth.HOLDS
    assert truth("{relay: eco-zone, is: off}", snap) is Truth.HOLDS  # eco is a zone's "off"


@pytest.mark.parametrize(("rule", "snap", "inputs"), [
    ("{signal: tank_c, above: 75}", at("2026-07-01 12:00", signals={
        "tank_c": SignalValue(80.0, stale=True)}), {"tank_c"}),
    ("{signal: tank_c, above: 75}", at("2026-07-01 12:00"), {"tank_c"}),
    ("{signal: tank_c, above: 75}", at("2026-07-01 12:00", signals={
        "tank_c": SignalValue(None)}), {"tank_c"}),
    ("{period: hp}", at("2026-07-01 12:00"), {"tariff"}),
    ("{period: hp}", at("2026-07-01 12:00", tariff=TariffFacts("hp", stale=True)), {"tariff"}),
    ("{relay: a, is: on}", at("2026-07-01 12:00"), {"relay:a"}),
    # Stale wins over a key that fails, and over another map that holds: no decision on it.
    ('{period: hp, time: "00:00-01:00"}', at("2026-07-01 12:00"), {"tariff"}),
    ("[{days: wed}, {ejp: peak}]", at("2026-07-01 12:00"), {"tariff"}),
])
def test_a_condition_reading_a_stale_input_is_stale(
    rule: str, snap: Snapshot, inputs: set[str]
) -> None:
    outcome, _ = evaluate(conds(rule), snap, HoldState(), "t")
    assert outcome.truth is Truth.STALE and not outcome.holds
    assert outcome.stale == inputs


def test_what_a_condition_uses() -> None:
    block = conds("[{tempo_today: red, period: hp}, {signal: tank_c, above: 75}, "
                  "{relay: b, is: on}]")
    assert uses_signals(block) == {"tank_c"}
    assert uses_tariff(block)
    assert uses_relays(block) == {"b"}
    assert not uses_tariff(conds('[{time: "10:00-18:00"}, {signal: x, below: 1}]'))


def test_for_s_held_broken_restored() -> None:
    rule = conds("{signal: heater_w, below: 50, for_s: 10min}")
    start = datetime(2026, 7, 1, 12, 0, tzinfo=PARIS)

    def tick(minute: float, watts: float | None, hold: HoldState) -> tuple[Truth, HoldState]:
        snap = Snapshot(now=start + timedelta(minutes=minute), signals={
            "heater_w": SignalValue(watts, stale=watts is None)})
        outcome, hold = evaluate(rule, snap, hold, "heater.done_when")
        return outcome.truth, hold

    hold = HoldState()
    result, hold = tick(0, 10, hold)
    assert result is Truth.FAILS and len(hold.since) == 1  # holding, not yet long enough
    result, hold = tick(9.9, 10, hold)
    assert result is Truth.FAILS
    result, hold = tick(10, 10, hold)
    assert result is Truth.HOLDS  # held 10 min without a break
    result, hold = tick(11, 3000, hold)
    assert result is Truth.FAILS and not hold.since  # broken: the run restarts
    result, hold = tick(12, 10, hold)
    result, hold = tick(21, 10, hold)
    assert result is Truth.FAILS
    # The state survives a restart through JSON.
    hold = HoldState.from_json(hold.to_json())
    result, hold = tick(22, 10, hold)
    assert result is Truth.HOLDS  # restored: 10 min since minute 12
    # A stale gap breaks the run too: "continuously" cannot be vouched for across it.
    result, hold = tick(23, None, hold)
    assert result is Truth.STALE and not hold.since
    result, hold = tick(24, 10, hold)
    assert result is Truth.FAILS


def test_for_s_of_a_relay_counts_from_the_relays_own_record() -> None:
    rule = conds("{relay: a, is: on, for_s: 300}")
    now = datetime(2026, 7, 1, 12, 0, tzinfo=PARIS)
    snap = Snapshot(now=now, relays={"a": "on"}, relays_since={"a": now - timedelta(minutes=6)})
    assert evaluate(rule, snap, HoldState(), "b.require")[0].holds  # a fresh start
    recent = Snapshot(now=now, relays={"a": "on"}, relays_since={"a": now})
    assert not evaluate(rule, recent, HoldState(), "b.require")[0].holds


def test_hold_state_keys_are_per_rule_and_others_are_kept() -> None:
    now = at("2026-07-01 12:00", signals={"x": SignalValue(1.0)})
    _, hold = evaluate(conds("{signal: x, below: 5, for_s: 60}"), now, HoldState(), "a")
    _, hold = evaluate(conds("{signal: x, below: 6, for_s: 60}"), now, hold, "b")
    assert set(hold.since) == {"a", "b"}  # "b" kept "a"'s entry
    # A rule edited (or removed) drops its old entry, and only that one.
    _, edited = evaluate(conds("{signal: x, below: 4, for_s: 60}"), now, hold, "a")
    assert edited.since["b"] == hold.since["b"] and edited.since["a"] != hold.since["a"]
    _, removed = evaluate((), now, hold, "a")
    assert removed.since == {"b": hold.since["b"]}
    # Nothing to time: the very same state comes back (no copy per tick).
    _, same = evaluate(conds("{signal: x, above: 5}"), now, hold, "c")
    assert same is hold
    assert HoldState.from_json(hold.to_json()) == hold
    bad = {"k": {"x": "y", "j": True, "n": 5}, "z": 3}
    assert HoldState.from_json(bad).since == {"k": {"n": 5.0}}
    assert HoldState.from_json(None).since == {}


def test_dst_spring_a_window_in_the_skipped_hour_never_holds() -> None:
    # 2026-03-29, Europe/Paris: 02:00 CET -> 03:00 CEST; 02:xx local never happens.
    rule = '{time: "02:00-03:00"}'
    start = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # 01:00 local
    held = 0
    for minute in range(0, 4 * 60):
        local = (start + timedelta(minutes=minute)).astimezone(PARIS)
        held += truth(rule, Snapshot(now=local)) is Truth.HOLDS
    assert held == 0
    # The neighbours behave: 01:00-03:00 holds one real hour that night.
    assert sum(truth('{time: "01:00-03:00"}', Snapshot(
        now=(start + timedelta(minutes=m)).astimezone(PARIS))) is Truth.HOLDS
               for m in range(4 * 60)) == 60


def test_dst_autumn_a_window_in_the_repeated_hour_holds_both_times() -> None:
    # 2026-10-25: 03:00 CEST -> 02:00 CET; 02:00-03:00 local happens twice (two real hours).
    start = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)  # 01:00 CEST
    held = sum(truth('{time: "02:00-03:00"}', Snapshot(
        now=(start + timedelta(minutes=m)).astimezone(PARIS))) is Truth.HOLDS
               for m in range(4 * 60))
    assert held == 120


def test_for_s_counts_real_seconds_across_the_autumn_change() -> None:
    rule = conds("{signal: x, below: 5, for_s: 1h}")
    before = datetime(2026, 10, 25, 0, 30, tzinfo=UTC).astimezone(PARIS)  # 02:30 CEST
    after = datetime(2026, 10, 25, 1, 30, tzinfo=UTC).astimezone(PARIS)  # 02:30 CET
    assert before.replace(tzinfo=None) == after.replace(tzinfo=None)  # same wall clock
    sig = {"x": SignalValue(1.0)}
    _, hold = evaluate(rule, Snapshot(now=before, signals=sig), HoldState(), "k")
    assert evaluate(rule, Snapshot(now=after, signals=sig), hold, "k")[0].holds


@pytest.mark.parametrize(("bad", "message"), [
    ("{signal: x}", "needs above, below or in"),
    ("{above: 3}", "need a 'signal'"),
    ("{signal: x, in: [5, 1]}", "low bound above"),
    ("{relay: a}", "'relay' and 'is' go together"),
    ("{is: on}", "'relay' and 'is' go together"),
    ("{relay: a, is: maybe}", "neither"),
    ("{for_s: 60}", "empty condition"),
    ("{}", "empty condition"),
    ("{signal: x, below: 1, for_s: 0}", "greater than 0"),
    ("{signal: x, below: 1, for_s: -5}", "greater than 0"),
    ("{signal: x, below: 1, for_s: 5 minutes}", "not a duration"),
    ("{tempo_today: pink}", "'blue', 'white', 'red' or 'unknown'"),
    ("{time: 25:00-06:00}", "not a time window"),
    ("{days: funday}", "not a day"),
    ("{colour: red}", "Extra inputs"),
])
def test_bad_conditions_are_rejected_with_a_message(bad: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        conds(bad)


def test_snapshot_needs_local_aware_time() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        Snapshot(now=datetime(2026, 7, 1, 12, 0))
