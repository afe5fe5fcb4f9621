"""The surplus allocator against scripted days: (t, grid_w) timelines of the home without the
routed loads, the loads' relays following the allocator at once, the meter seeing them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from services.automation.surplus import (
    AllocatorConfig,
    LoadNow,
    OffGridConfig,
    OffGridNow,
    RoutedLoad,
    SurplusAllocator,
    Verdict,
)

HEATER = RoutedLoad(id="water-heater", priority=1, power_w=3000, margin_w=100, on_after_s=60,
                    off_import_w=200, off_after_s=180)
PUMP = RoutedLoad(id="pool-pump", priority=2, power_w=900, margin_w=50, on_after_s=120,
                  off_import_w=100, off_after_s=300)
CONFIG = AllocatorConfig(smoothing_s=60, reserve_w=50, step_s=60)

Timeline = Sequence[tuple[float, float | None]]  # (t, grid_w without the routed loads) steps


def at(timeline: Timeline, t: float) -> float | None:
    """The timeline's value at `t`: the last step at or before it."""
    value: float | None = None
    for start, grid in timeline:
        if start > t:
            break
        value = grid
    return value


@dataclass
class Run:
    """What a simulated day did: every tick's verdicts and each load's switch times."""

    ticks: list[tuple[float, dict[str, Verdict]]] = field(default_factory=list)
    ons: dict[str, list[float]] = field(default_factory=dict)
    offs: dict[str, list[float]] = field(default_factory=dict)

    def switches(self) -> list[tuple[float, str, str]]:
        """(t, load, "on"|"off") in time order."""
        out = [(t, lid, "on") for lid, ts in self.ons.items() for t in ts]
        out += [(t, lid, "off") for lid, ts in self.offs.items() for t in ts]
        return sorted(out)

    def codes(self, lid: str) -> list[str]:
        """The load's verdict codes, tick by tick."""
        return [verdicts[lid].code for _, verdicts in self.ticks]


def simulate(alloc: SurplusAllocator, timeline: Timeline | Callable[[float], float | None],
             end_s: float, *, tick_s: float = 5, start_s: float = 0,
             other: Callable[[float], set[str]] = lambda _t: set(),
             measured: Callable[[float, str], float | None] = lambda _t, _lid: None,
             on_at_start: frozenset[str] = frozenset()) -> Run:
    """Tick the allocator; a relay is on while the allocator (or `other`) wants it on."""
    grid_of = timeline if callable(timeline) else (lambda t: at(timeline, t))
    on = {load.id: load.id in on_at_start for load in alloc.loads}
    run = Run(ons={lid: [] for lid in on}, offs={lid: [] for lid in on})
    t = start_s
    while t <= end_s:
        base = grid_of(t)
        forced = other(t)
        loads = {lid: LoadNow(on=on[lid] or lid in forced, measured_w=measured(t, lid),
                              on_for_other_reason=lid in forced) for lid in on}
        grid = None if base is None else base + sum(
            ln.draw_w(load) for load in alloc.loads for ln in [loads[load.id]])
        verdicts = alloc.step(t, grid, loads)
        run.ticks.append((t, verdicts))
        for lid, verdict in verdicts.items():
            if verdict.wants_on != on[lid]:
                (run.ons if verdict.wants_on else run.offs)[lid].append(t)
                on[lid] = verdict.wants_on
        t += tick_s
    return run


def test_clear_day_ramp_heater_takes_over_then_both_run() -> None:
    # Export grows by 100 W a minute for an hour (a clear morning), nothing on yet.
    ramp = [(m * 60.0, -100.0 * m) for m in range(61)]
    run = simulate(SurplusAllocator(CONFIG, [HEATER, PUMP]), ramp, 3600)
    (heater_on,) = run.ons["water-heater"]
    assert run.offs["water-heater"] == []
    # The pump fits first (1000 W with the reserve); the heater (3150 W) takes over once the
    # surplus covers it, the pump's power being added back; the pump gives way, and comes
    # back once the surplus covers both (3000 + 950 + 50 W).
    first_on, second_on = run.ons["pool-pump"]
    (pump_off,) = run.offs["pool-pump"]
    assert first_on < heater_on < pump_off < second_on
    assert -(at(ramp, first_on) or 0) >= 1000
    assert -(at(ramp, heater_on) or 0) >= 3150  # never before the surplus covered it
    assert -(at(ramp, second_on) or 0) >= 4000
    assert pump_off - heater_on < PUMP.off_after_s + CONFIG.smoothing_s


def test_cumulus_day_no_chatter_and_the_off_timer_resets_on_each_sunny_spell() -> None:
    # Surplus toggling 3 kW <-> 0 every two minutes for an hour, a 2 kW load.
    load = RoutedLoad(id="heater", priority=1, power_w=2000, margin_w=100, on_after_s=60,
                      off_import_w=200, off_after_s=180)
    cumulus = [(k * 120.0, -3000.0 if k % 2 == 0 else 0.0) for k in range(31)]
    run = simulate(SurplusAllocator(CONFIG, [load]), cumulus, 3600)
    assert run.ons["heater"] == [60]  # on once, in the first sunny spell
    assert run.offs["heater"] == []  # each cloud ends before off_after_s: no chatter
    codes = run.codes("heater")
    # Each cloud did take its allotment away (the off timer ran) and the sun gave it back.
    resets = sum(1 for a, b in itertools.pairwise(codes) if (a, b) == ("short", "on"))
    assert resets == 14


def test_cumulus_with_longer_clouds_switches_at_most_once_per_cloud() -> None:
    # Three-minute clouds outlast off_after_s with the smoothing lag: the load follows the
    # clouds, but never faster than its timers.
    load = RoutedLoad(id="heater", priority=1, power_w=2000, margin_w=100, on_after_s=60,
                      off_import_w=200, off_after_s=180)
    cumulus = [(k * 180.0, -3000.0 if k % 2 == 0 else 0.0) for k in range(21)]
    run = simulate(SurplusAllocator(CONFIG, [load]), cumulus, 3600)
    assert len(run.ons["heater"]) <= 10  # ten clouds
    for on, off in zip(run.ons["heater"], run.offs["heater"], strict=False):
        assert off - on >= load.off_after_s


def test_a_break_restarts_the_on_timer() -> None:
    config = AllocatorConfig(smoothing_s=0, reserve_w=0, step_s=60)
    load = RoutedLoad(id="a", priority=1, power_w=1000, on_after_s=60, off_after_s=60)
    # 50 s of surplus, a 10 s break, 50 s more: never 60 s without a break.
    timeline = [(0, -2000.0), (50, 0.0), (60, -2000.0), (115, 0.0)]
    run = simulate(SurplusAllocator(config, [load]), timeline, 300)
    assert run.ons["a"] == []
    run = simulate(SurplusAllocator(config, [load]), [(0, -2000.0)], 300)
    assert run.ons["a"] == [60]


def test_kettle_spike_while_routing_does_not_switch_off() -> None:
    # 3.6 kW export routed to the heater; a 2 kW kettle for two minutes at t=1200.
    timeline = [(0, -3600.0), (1200, -1600.0), (1320, -3600.0)]
    run = simulate(SurplusAllocator(CONFIG, [HEATER]), timeline, 2400)
    assert len(run.ons["water-heater"]) == 1 and run.ons["water-heater"][0] < 1200
    assert run.offs["water-heater"] == []
    spike = [verdicts["water-heater"] for t, verdicts in run.ticks if 1200 <= t <= 1400]
    assert any(not v.allotted and v.wants_on for v in spike)  # it did lose its allotment


def test_sustained_import_switches_off_after_off_after_s() -> None:
    timeline = [(0, -3600.0), (1200, 500.0)]  # the sun goes for good at t=1200
    run = simulate(SurplusAllocator(CONFIG, [HEATER]), timeline, 2400)
    assert len(run.offs["water-heater"]) == 1
    lost = next(t for t, v in run.ticks if t >= 1200 and not v["water-heater"].allotted)
    assert run.offs["water-heater"] == [lost + HEATER.off_after_s]


def test_higher_priority_takes_over_and_the_lower_gives_way_after_its_own_timer() -> None:
    # 1.2 kW export: the pump runs; then 3.8 kW: the heater takes it, the pump gives way.
    timeline = [(0, -1200.0), (1200, -3800.0)]
    run = simulate(SurplusAllocator(CONFIG, [HEATER, PUMP]), timeline, 3000)
    assert len(run.ons["pool-pump"]) == 1 and run.ons["pool-pump"][0] < 1200
    heater_on = run.ons["water-heater"][0]
    pump_off = run.offs["pool-pump"][0]
    lost = next(t for t, v in run.ticks if t >= 1200 and not v["pool-pump"].allotted)
    assert lost < heater_on < pump_off  # both ran a while: the pump had its own timer
    assert pump_off == lost + PUMP.off_after_s
    assert run.offs["water-heater"] == [] and len(run.ons["pool-pump"]) == 1


def test_one_switch_on_per_step_highest_priority_first() -> None:
    loads = [RoutedLoad(id=f"l{i}", priority=i, power_w=500, on_after_s=30) for i in range(3)]
    config = AllocatorConfig(smoothing_s=0, reserve_w=0, step_s=60)
    run = simulate(SurplusAllocator(config, loads), [(0, -5000.0)], 600)
    assert run.switches() == [(30, "l0", "on"), (90, "l1", "on"), (150, "l2", "on")]
    waiting = [v for t, verdicts in run.ticks for v in verdicts.values()
               if v.code == "waiting_step"]
    assert waiting and all(v.allotted and not v.wants_on for v in waiting)


def test_stale_grid_allots_nothing_and_restarts_average_and_timers() -> None:
    config = AllocatorConfig(smoothing_s=60, reserve_w=50, step_s=60)
    alloc = SurplusAllocator(config, [HEATER])
    free = {"water-heater": LoadNow(on=False)}
    for t in range(0, 300, 5):
        alloc.step(t, -500.0, free)
    verdicts = alloc.step(300, -4000.0, free)  # the smoothed surplus is still short
    assert not verdicts["water-heater"].allotted
    for t in range(305, 425, 5):  # the meter goes silent two minutes
        verdicts = alloc.step(t, None, free)
        assert verdicts["water-heater"] == Verdict(False, False, verdicts["water-heater"].reason,
                                                   "stale")
        assert alloc.available_w is None
    # Fresh data: the average starts from it (no memory of the 500 W), the timer from zero.
    verdicts = alloc.step(425, -4000.0, free)
    assert alloc.available_w == 3950.0
    assert verdicts["water-heater"].code == "allotted"
    assert alloc.step(480, -4000.0, free)["water-heater"].code == "allotted"
    assert alloc.step(485, -4000.0, free)["water-heater"].code == "switched_on"


def test_stale_keeps_what_was_switched_on_but_restarts_its_off_timer() -> None:
    alloc = SurplusAllocator(CONFIG, [HEATER])
    run = simulate(alloc, [(0, -4000.0)], 600)
    assert run.ons["water-heater"]
    on = {"water-heater": LoadNow(on=True)}
    alloc.step(605, 3000.0, on)
    assert alloc.step(700, 3000.0, on)["water-heater"].code == "short"
    assert alloc.step(705, None, on)["water-heater"].wants_on  # the engine's rule 1 decides
    assert alloc.step(800, 3000.0, on)["water-heater"].reason.startswith("surplus short for 0 s")


def test_offgrid_float_then_a_battery_that_starts_discharging() -> None:
    config = AllocatorConfig(step_s=60, offgrid=OffGridConfig(discharge_a=2))
    loads = [RoutedLoad(id="heater", priority=1, power_w=2000, on_after_s=60, off_after_s=120),
             RoutedLoad(id="pump", priority=2, power_w=500, on_after_s=60, off_after_s=120)]
    alloc = SurplusAllocator(config, loads)
    on = {"heater": False, "pump": False}
    history: list[tuple[float, str, bool]] = []
    for t in range(0, 1800, 5):
        # Float and charging until t=600; then a cloud: the battery discharges 6 A with both
        # on, 3 A with the heater alone (still beyond discharge_a), and the charger drops out
        # of float once nothing runs; the sun is back at t=1200.
        if t < 600 or t >= 1200:
            og = OffGridNow(charger_full=True, battery_a=8.0)
        elif on["heater"]:
            og = OffGridNow(charger_full=True, battery_a=-6.0 if on["pump"] else -3.0)
        else:
            og = OffGridNow(charger_full=False, battery_a=0.0)
        verdicts = alloc.step(t, None, {k: LoadNow(on=v) for k, v in on.items()}, offgrid=og)
        for lid, v in verdicts.items():
            if v.wants_on != on[lid]:
                history.append((t, lid, v.wants_on))
                on[lid] = v.wants_on
    # On in priority order one step apart; off in reverse, each after its own off_after_s
    # (the heater's counted from the tick after the pump's relay is seen off). Each gave way
    # once: back in the sun each waits twice its on_after_s (the off-grid back-off).
    assert history == [(60, "heater", True), (120, "pump", True), (720, "pump", False),
                       (725 + 120, "heater", False), (1320, "heater", True), (1380, "pump", True)]
    assert alloc.step(1800, None, {}, offgrid=None)["heater"].code == "stale"


def test_offgrid_sheds_the_lowest_priority_first_then_the_next() -> None:
    config = AllocatorConfig(offgrid=OffGridConfig(discharge_a=2))
    loads = [RoutedLoad(id=f"l{i}", priority=i, power_w=500, on_after_s=0, off_after_s=60)
             for i in range(3)]
    alloc = SurplusAllocator(config, loads)
    on = {load.id: False for load in loads}
    offs: list[tuple[float, str]] = []
    for t in range(0, 1200, 10):
        og = OffGridNow(charger_full=t < 300, battery_a=5.0)  # absorption ends at t=300
        for lid, v in alloc.step(t, None, {k: LoadNow(on=x) for k, x in on.items()},
                                 offgrid=og).items():
            if not v.wants_on and on[lid]:
                offs.append((t, lid))
            on[lid] = v.wants_on
    # Each loses its allotment on the tick after the previous one's relay is seen off.
    assert offs == [(360, "l2"), (370 + 60, "l1"), (440 + 60, "l0")]


def test_a_load_on_for_another_reason_takes_its_power_first() -> None:
    config = AllocatorConfig(smoothing_s=0, reserve_w=0, step_s=0)
    alloc = SurplusAllocator(config, [HEATER, PUMP])
    # 3 kW export with the heater forced on by a user: 6 kW of surplus less its 3 kW.
    loads = {"water-heater": LoadNow(on=True, on_for_other_reason=True),
             "pool-pump": LoadNow(on=False)}
    verdicts = alloc.step(0, -3000.0, loads)
    assert verdicts["water-heater"].code == "other_reason"
    assert verdicts["pool-pump"].allotted
    verdicts = alloc.step(0, -500.0, loads)  # 3.5 kW surplus - 3 kW: the pump no longer fits
    assert not verdicts["pool-pump"].allotted


def test_a_load_its_rules_hold_off_is_switched_off_at_once() -> None:
    config = AllocatorConfig(smoothing_s=0, reserve_w=0, step_s=0)
    alloc = SurplusAllocator(config, [HEATER])
    run = simulate(alloc, [(0, -4000.0)], 100)
    assert run.ons["water-heater"]
    verdict = alloc.step(105, -1000.0, {"water-heater": LoadNow(on=True, free=False)})[
        "water-heater"]
    assert verdict == Verdict(False, False, verdict.reason, "not_free")
    # Free again: it must earn its on_after_s anew.
    assert alloc.step(110, -4000.0, {"water-heater": LoadNow(on=False)})[
        "water-heater"].code == "allotted"


def test_a_load_left_out_of_the_tick_is_held_off_and_a_clock_going_back_restarts() -> None:
    config = AllocatorConfig(smoothing_s=0, reserve_w=0, step_s=600)
    alloc = SurplusAllocator(config, [HEATER, PUMP])
    run = simulate(alloc, [(0, -5000.0)], 100)
    assert run.ons["water-heater"] == [60]
    verdicts = alloc.step(105, -2000.0, {"water-heater": LoadNow(on=True)})
    assert verdicts["pool-pump"].code == "not_free"
    assert list(verdicts) == ["water-heater", "pool-pump"]  # priority order
    # The clock steps back an hour: the timers and the last switch-on are forgotten.
    both_off = {"water-heater": LoadNow(on=True), "pool-pump": LoadNow(on=False)}
    assert alloc.step(-3600, -5000.0, both_off)["pool-pump"].code == "allotted"
    assert alloc.step(-3600 + 120, -5000.0, both_off)["pool-pump"].code == "switched_on"


def test_equal_priorities_rotate_with_the_day() -> None:
    loads = [RoutedLoad(id=name, priority=1, power_w=1000) for name in ("b", "a", "c")]
    loads.append(RoutedLoad(id="z", priority=0, power_w=1000))
    alloc = SurplusAllocator(CONFIG, loads)
    assert [x.id for x in alloc.order(0)] == ["z", "a", "b", "c"]
    assert [x.id for x in alloc.order(1)] == ["z", "b", "c", "a"]
    assert [x.id for x in alloc.order(5)] == ["z", "c", "a", "b"]
    config = AllocatorConfig(smoothing_s=0, reserve_w=0, step_s=0)
    for day, first in ((0, "a"), (1, "b")):
        alloc = SurplusAllocator(config, loads[:3])
        verdicts = alloc.step(0, -1000.0, {x.id: LoadNow(on=False) for x in loads},
                              day=day)
        assert [lid for lid, v in verdicts.items() if v.allotted] == [first]


def test_measured_power_is_what_is_added_back() -> None:
    # A heater whose thermostat opened draws 0 W: the export is all the surplus there is.
    config = AllocatorConfig(smoothing_s=0, reserve_w=0, step_s=0)
    alloc = SurplusAllocator(config, [HEATER])
    alloc.step(0, -1000.0, {"water-heater": LoadNow(on=True, measured_w=0.0)})
    assert alloc.available_w == 1000.0
    alloc.step(5, 2000.0, {"water-heater": LoadNow(on=True)})
    assert alloc.available_w == 1000.0


def test_thermostat_opens_the_pump_gets_the_surplus_the_heater_keeps_its_share() -> None:
    # 3.5 kW of export routed to the heater; at t=1500 its thermostat opens (0 W measured):
    # the pump takes the surplus; the heater, still on, keeps its (now 0 W) allotment.
    def measured(t: float, lid: str) -> float | None:
        return 0.0 if lid == "water-heater" and t >= 1500 else None

    run = simulate(SurplusAllocator(CONFIG, [HEATER, PUMP]), [(0, -3500.0)], 3000,
                   measured=measured)
    (heater_on,) = run.ons["water-heater"]
    (pump_on,) = run.ons["pool-pump"]
    assert heater_on < 1500 < pump_on < 1500 + 60 + PUMP.on_after_s
    assert run.offs == {"water-heater": [], "pool-pump": []}


def test_state_survives_a_json_round_trip_mid_run() -> None:
    timeline = [(0, -1200.0), (1200, -3800.0)]
    whole = simulate(SurplusAllocator(CONFIG, [HEATER, PUMP]), timeline, 3000)
    first = SurplusAllocator(CONFIG, [HEATER, PUMP])
    half = simulate(first, timeline, 1300)
    data = json.loads(json.dumps(first.to_dict()))
    resumed = SurplusAllocator.from_dict(CONFIG, [HEATER, PUMP], data)
    assert resumed.to_dict() == first.to_dict()
    left_on = frozenset(lid for lid, v in half.ticks[-1][1].items() if v.wants_on)
    rest = simulate(resumed, timeline, 3000, start_s=1305, on_at_start=left_on)
    assert [s for s in whole.switches() if s[0] > 1300] == rest.switches()
    assert rest.switches()  # the resumed half still had decisions to make
    assert SurplusAllocator.from_dict(CONFIG, [HEATER], {"loads": "junk", "ema": 3}).to_dict() \
        == SurplusAllocator(CONFIG, [HEATER]).to_dict()


# Property tests: random loads, random grid (with stale stretches), random tick spacing.

loads_st = st.lists(
    st.builds(RoutedLoad, id=st.sampled_from("abcdefgh"), priority=st.integers(0, 3),
              power_w=st.floats(100, 4000), margin_w=st.floats(0, 300),
              on_after_s=st.floats(0, 300), off_import_w=st.floats(0, 500),
              off_after_s=st.floats(0, 600)),
    min_size=1, max_size=6, unique_by=lambda x: x.id)
config_st = st.builds(AllocatorConfig, smoothing_s=st.floats(0, 120),
                      reserve_w=st.floats(0, 200), step_s=st.floats(0, 120))
# The grid in spells: (ticks, tick spacing, grid without the loads, loads held off by their
# rules); one spell in ten stale.
grid_st = st.integers(0, 9).flatmap(lambda k: st.none() if k == 0 else st.floats(-6000, 3000))
spells_st = st.lists(st.tuples(st.integers(1, 40), st.floats(0.5, 30), grid_st,
                               st.frozensets(st.sampled_from("abcdefgh"), max_size=2)),
                     min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(config=config_st, loads=loads_st, spells=spells_st, day=st.integers(0, 6))
def test_properties(config: AllocatorConfig, loads: list[RoutedLoad],
                    spells: list[tuple[int, float, float | None, frozenset[str]]],
                    day: int) -> None:
    """One switch-on per step_s, on only after on_after_s allotted, off only after off_after_s
    not allotted (or at once when held off), nothing allotted while stale."""
    alloc = SurplusAllocator(config, loads)
    by_id = {load.id: load for load in loads}
    on = dict.fromkeys(by_id, False)
    allotted_since: dict[str, float | None] = dict.fromkeys(by_id)
    short_since: dict[str, float | None] = dict.fromkeys(by_id)
    last_on: float | None = None
    t = 0.0
    for ticks, dt, base, held in spells:
        for _ in range(ticks):
            t += dt
            now = {lid: LoadNow(on=x, free=lid not in held) for lid, x in on.items()}
            grid = None if base is None else base + sum(
                by_id[k].power_w for k, x in on.items() if x)
            verdicts = alloc.step(t, grid, now, day=day)
            assert set(verdicts) == set(by_id)
            for lid, v in verdicts.items():
                fresh_free = grid is not None and lid not in held
                assert fresh_free or not v.allotted
                if grid is not None and lid in held:
                    assert not v.wants_on
                if v.allotted:
                    allotted_since[lid] = t if allotted_since[lid] is None else allotted_since[lid]
                else:
                    allotted_since[lid] = None
                if fresh_free and not v.allotted:
                    short_since[lid] = t if short_since[lid] is None else short_since[lid]
                else:
                    short_since[lid] = None
                if v.wants_on and not on[lid]:
                    since = allotted_since[lid]
                    assert since is not None and t - since >= by_id[lid].on_after_s
                    assert last_on is None or t - last_on >= config.step_s
                    assert last_on is None or last_on < t  # one per step, even with step_s 0
                    last_on = t
                if on[lid] and not v.wants_on and lid not in held:
                    since = short_since[lid]
                    assert since is not None and t - since >= by_id[lid].off_after_s
                on[lid] = v.wants_on


def test_offgrid_back_off_doubles_per_give_way_and_restarts_on_a_new_day() -> None:
    config = AllocatorConfig(step_s=0, offgrid=OffGridConfig(discharge_a=2))
    pump = RoutedLoad(id="pump", priority=1, power_w=500, on_after_s=60, off_after_s=60)
    alloc = SurplusAllocator(config, [pump])
    on, t, starts = False, 0, []
    while t < 4 * 3600:
        # The pump does not fit: on, the battery discharges 5 A; off, it charges 3 A.
        og = OffGridNow(charger_full=True, battery_a=-5.0 if on else 3.0)
        wants = alloc.step(t, None, {"pump": LoadNow(on=on)}, offgrid=og, day=1)["pump"].wants_on
        if wants and not on:
            starts.append(t)
        on = wants
        t += 5
    # minus the run (off_after_s + the tick it is seen short) and the tick it is seen allotted
    waits = [b - a - 60 - 10 for a, b in itertools.pairwise(starts)]
    assert waits[:5] == [120, 240, 480, 960, 1920] and set(waits[5:]) == {1920}
    resumed = SurplusAllocator.from_dict(config, [pump], alloc.to_dict())
    og = OffGridNow(charger_full=True, battery_a=3.0)
    assert "backed off" in resumed.step(t, None, {"pump": LoadNow(on=False)}, offgrid=og,
                                        day=1)["pump"].reason
    fresh = resumed.step(t + 5, None, {"pump": LoadNow(on=False)}, offgrid=og, day=2)["pump"]
    assert "backed off" not in fresh.reason
