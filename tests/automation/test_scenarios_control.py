"""The automation among the other controls: a user's order, shedding, another relay's run.

A user's forced hour counts as on-time and shedding time does not (DESIGN.md: the daily
counters count the relay's real on-time); min_off_s and the start cap are timed from the
relay's real output too; a load sequenced on another relay follows that relay's real output,
whoever switched it. run_day checks the invariants on every tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from services.automation.engine_state import RelayInput
from tests.automation.days import Script, at, run_day
from tests.automation.scenario_days import config

WINTER, NEXT = "2026-01-14", "2026-01-15"
SUMMER = "2026-07-01"
H = "water-heater"


def test_user_hour_counts_shed_time_does_not_catch_up_resumes_with_what_is_owed() -> None:
    user = (at(WINTER, "23:00"), at(WINTER, "23:30"))
    shed = (at(NEXT, "04:00"), at(NEXT, "04:20"))

    def forced(now: datetime) -> Mapping[str, RelayInput]:
        if user[0] <= now < user[1]:
            return {H: RelayInput("on", "user", user[0])}
        if shed[0] <= now < shed[1]:
            return {H: RelayInput("off", "shed", shed[0])}
        return {}

    load = {"relay": H, "power_w": 3000, "daily": {"min_on": "3h", "catch_up": "offpeak"}}
    cfg = config([load], offpeak=["22:00-06:00"], tick_s=60)
    day = run_day(cfg, Script(forced=forced), at(WINTER, "21:00"), at(NEXT, "06:00"),
                  step_s=60)
    # The user's half hour counts: 2 h 30 owed, so the catch-up starts at 03:30, not 03:00.
    after_user = day.at(user[1])[H]
    assert after_user.on_today_s == 1800 and after_user.remaining_s == 9000
    assert after_user.latest_start == at(NEXT, "03:30")
    assert after_user.wish == "off"
    catch_up_on = [s for s, _ in day.on_spans(H) if s > user[1]]
    assert catch_up_on[0] == at(NEXT, "03:30")
    assert day.at(at(NEXT, "03:30"))[H].status == "catch_up"
    # Shed for 20 minutes: no on-time, so 2 h are still owed when it ends with 1 h 40 left.
    end_of_shed = day.at(shed[1])[H]
    assert end_of_shed.on_today_s == 3600 and end_of_shed.remaining_s == 7200
    # It runs what is left all the same (a short run beats none), with one event.
    assert end_of_shed.wish == "on" and end_of_shed.status == "unreachable"
    events = [e for _, d in day.ticks for e in d[H].events if e.kind == "unreachable"]
    assert len(events) == 1
    last = day.ticks[-1][1][H]
    assert last.on_today_s == 0  # 06:00: a new day
    before = day.at(at(NEXT, "05:59"))[H]
    assert before.on_today_s == 3600 + 99 * 60 and before.wish == "on"


def test_sequencing_b_runs_only_after_a_has_been_on_five_minutes_whoever_started_a() -> None:
    a = {"relay": "a", "schedule": [{"time": "10:00-10:03", "state": "on"},
                                    {"time": "10:10-11:00", "state": "on"}]}
    b = {"relay": "b", "require": [{"relay": "a", "is": "on", "for_s": 300}]}
    user = (at(SUMMER, "11:30"), at(SUMMER, "11:40"))

    def forced(now: datetime) -> Mapping[str, RelayInput]:
        if user[0] <= now < user[1]:
            return {"a": RelayInput("on", "user", user[0])}
        return {}

    day = run_day(config([a, b]), Script(forced=forced), at(SUMMER, "09:55"),
                  at(SUMMER, "12:00"), step_s=5)
    # A's first run lasts 3 minutes: too short for B.
    assert day.on_spans("a")[0] == (at(SUMMER, "10:00"), at(SUMMER, "10:03"))
    b_spans = day.on_spans("b")
    assert b_spans[0] == (at(SUMMER, "10:15"), at(SUMMER, "11:00:05"))  # A seen off a tick later
    assert day.at(at(SUMMER, "10:20"))["b"].status == "required"
    # A switched on by the user: B follows its real output all the same.
    assert b_spans[1] == (user[0] + timedelta(seconds=300), user[1] + timedelta(seconds=5))
    assert len(b_spans) == 2


def test_min_off_is_timed_from_a_users_off_order() -> None:
    load = {"relay": H, "power_w": 3000, "priority": 1, "min_off_s": 300,
            "surplus": {"margin_w": 100, "on_after_s": 60, "off_import_w": 200,
                        "off_after_s": 180}}
    user = (at(SUMMER, "10:30"), at(SUMMER, "10:32"))

    def forced(now: datetime) -> Mapping[str, RelayInput]:
        if user[0] <= now < user[1]:
            return {H: RelayInput("off", "user", user[0])}
        return {}

    def signals(now: datetime, out: Mapping[str, str]) -> dict[str, float]:
        return {"grid": -4500.0 + (3000.0 if out[H] == "on" else 0.0)}

    day = run_day(config([load]), Script(signals=signals, forced=forced), at(SUMMER, "10:00"),
                  at(SUMMER, "11:00"), step_s=5)
    # The user's order ends at 10:32; the surplus still wants it, but the relay has been off
    # only 2 minutes of its 5: back on at 10:35, timed from the user's off.
    assert [s for s, _ in day.on_spans(H)][1:] == [user[0] + timedelta(seconds=300)]
    held = day.at(at(SUMMER, "10:33"))[H]
    assert (held.wish, held.status, held.hold) == ("off", "surplus", "min_off")


def test_max_starts_count_a_users_starts_and_never_refuse_them() -> None:
    load = {"relay": "pump", "max_starts_per_hour": 2,
            "schedule": [{"time": "10:40-12:00", "state": "on"}]}
    user_on = [(at(SUMMER, f"10:{m:02d}"), at(SUMMER, f"10:{m + 5:02d}")) for m in (0, 10, 20)]

    def forced(now: datetime) -> Mapping[str, RelayInput]:
        for start, end in user_on:
            if start <= now < end:
                return {"pump": RelayInput("on", "user", start)}
        return {}

    day = run_day(config([load]), Script(forced=forced), at(SUMMER, "09:59"),
                  at(SUMMER, "12:00"), step_s=60)
    # The user started it at 10:00, 10:10 and 10:20 (the third over the cap: the relay obeys
    # a user). The schedule's own start waits until fewer than 2 starts are left in the last
    # hour: 11:10, when 10:10 leaves it.
    assert day.at(at(SUMMER, "10:25"))["pump"].starts_today == 3
    held = day.at(at(SUMMER, "10:40"))["pump"]
    assert (held.wish, held.status, held.hold) == ("off", "scheduled", "max_starts")
    assert day.at(at(SUMMER, "11:09"))["pump"].wish == "off"
    assert day.on_spans("pump")[-1] == (at(SUMMER, "11:10"), at(SUMMER, "12:00"))
