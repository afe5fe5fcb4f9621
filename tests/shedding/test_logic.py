"""Shedding decisions: thresholds, phases, overrun groups, restore delay, stale data."""

from __future__ import annotations

from typing import Any

from services.core.contract import MeterState
from services.core.contract.messages import parse_ts, to_json
from services.shedding.config import LoadConfig, SheddingConfig
from services.shedding.logic import Shedder


def meter(fields: dict[str, Any]) -> MeterState:
    """A teleinfo state as the shedding service receives it: through the contract."""
    state = MeterState.decode(to_json(fields).encode())
    assert isinstance(state, MeterState)
    return state


def shedder(**kw: Any) -> Shedder:
    loads = kw.pop("loads", None) or [
        LoadConfig(relay="heater", priority=1, power_w=2000),
        LoadConfig(relay="radiator", priority=2, power_w=1500),
        LoadConfig(relay="pump", priority=3),
    ]
    return Shedder(SheddingConfig(loads=loads, restore_delay_s=60, **kw))


def std(va: int, kva: int = 9, **kw: Any) -> dict[str, Any]:
    return {"subscribed_power_kva": kva, "apparent_power_va": va, "current_a": [va // 230],
            "overload": False, "overload_phases": [], **kw}


def tri(l1: int, l2: int, l3: int, kva: int = 12, **kw: Any) -> dict[str, Any]:
    return {"subscribed_power_kva": kva, "apparent_power_va": l1 + l2 + l3,
            "apparent_power_phase_va": [l1, l2, l3], "overload": False, **kw}


def test_sheds_on_the_frame_that_shows_the_excess() -> None:
    s = shedder()
    assert s.reading(meter(std(7000)), 0) == []
    (d,) = s.reading(meter(std(8200)), 1)  # 91 % of 9000 VA; excess 100 VA: the heater covers it
    assert (d.relay, d.shed, d.phase, d.limit_va) == ("heater", True, 1, 9000)
    assert "91%" in d.reason


def test_sheds_enough_declared_power_to_cover_the_excess() -> None:
    s = shedder()
    got = s.reading(meter(std(11000)), 0)  # excess 2900 VA: heater (2000) + radiator (1500)
    assert [d.relay for d in got] == ["heater", "radiator"]


def test_one_load_per_frame_when_power_unknown() -> None:
    s = shedder(loads=[LoadConfig(relay="a", priority=1), LoadConfig(relay="b", priority=2)])
    assert [d.relay for d in s.reading(meter(std(9500)), 0)] == ["a"]
    assert [d.relay for d in s.reading(meter(std(9400)), 1)] == ["b"]  # still over: the next one
    assert s.reading(meter(std(9400)), 2) == []  # nothing left to shed


def test_meter_overrun_signal_sheds_at_once_even_under_threshold() -> None:
    s = shedder()
    (d,) = s.reading(meter({**std(6000), "overload": True, "overload_phases": [1]}), 0)
    assert d.relay == "heater" and "overrun" in d.reason


def test_restore_after_delay_one_at_a_time_most_important_first() -> None:
    s = shedder()
    s.reading(meter(std(11000)), 0)  # heater and radiator shed
    assert s.reading(meter(std(3000)), 30) == []  # under the threshold, but the delay runs
    (d,) = s.reading(meter(std(3000)), 61)
    assert (d.relay, d.shed) == ("radiator", False)  # priority 2 before priority 1
    assert s.reading(meter(std(3000)), 100) == []  # a new delay after each restore
    (d,) = s.reading(meter(std(3000)), 122)
    assert d.relay == "heater"


def test_restore_counts_the_load_power() -> None:
    s = shedder()
    s.reading(meter(std(8500)), 0)  # heater shed
    # 5600 + 2000 = 7600 VA = 84 % of 9000: over 80 %, stays shed
    assert s.reading(meter(std(5600)), 100) == []
    (d,) = s.reading(meter(std(5000)), 101)  # 7000 VA = 78 %
    assert d.relay == "heater" and not d.shed


def test_a_new_excess_restarts_the_restore_delay() -> None:
    s = shedder()
    s.reading(meter(std(8300)), 0)
    s.reading(meter(std(8600)), 50)  # radiator shed at 50 s
    assert s.reading(meter(std(1000)), 100) == []  # only 50 s since the last change
    assert s.reading(meter(std(1000)), 111)[0].relay == "radiator"


def test_three_phase_sheds_only_loads_on_the_overloaded_phase() -> None:
    s = shedder(loads=[
        LoadConfig(relay="l1-heater", priority=1, phase=1, power_w=2000),
        LoadConfig(relay="l2-radiator", priority=2, phase=2, power_w=1500),
        LoadConfig(relay="oven", priority=3, phase=0, power_w=3000),
    ])
    got = s.reading(meter(tri(1000, 3900, 800)), 0)  # 4000 VA per phase; L2 at 97 %
    assert [(d.relay, d.phase) for d in got] == [("l2-radiator", 2)]
    assert s.reading(meter(tri(1000, 2300, 800)), 1) == []


def test_three_phase_adir_on_phase_three() -> None:
    s = shedder(loads=[LoadConfig(relay="a", phase=1), LoadConfig(relay="c", phase=3)])
    got = s.reading(meter({"subscribed_current_a": 20, "current_a": [3, 2, 19],
                     "overload": True, "overload_phases": [3]}), 0)
    assert [d.relay for d in got] == ["c"]


def test_historique_amps_against_isousc() -> None:
    s = shedder()
    got = s.reading(meter({"subscribed_current_a": 45, "current_a": [42], "overload": False}), 0)
    assert got[0].relay == "heater"  # 42 A / 45 A = 93 %
    assert s.state(0)["limit_va"] == [45 * 230]


def test_state_carries_its_own_ts_from_now() -> None:
    # Not the historian's arrival time: a queued burst keeps each state's own instant.
    ts = shedder().state(1_700_000_000.25)["ts"]
    assert ts == "2023-11-14T22:13:20.250Z"
    assert parse_ts(ts) is not None


def test_short_frames_keep_the_known_limits() -> None:
    s = shedder()
    s.reading(meter({"subscribed_current_a": 30, "current_a": [10], "overload": False}), 0)
    got = s.reading(meter({"current_a": [29], "overload": False}), 1)  # a trame courte: no ISOUSC
    assert got and got[0].relay == "heater"


def test_stale_data_holds_everything_and_restores_nothing() -> None:
    s = shedder(stale_after_s=10)
    s.reading(meter(std(8500)), 0)
    assert s.is_stale(11)
    s.availability(False)
    assert s.is_stale(5)
    # A reading after an offline meter: fresh data again, restores resume after the delay.
    s.availability(True)
    assert s.reading(meter(std(1000)), 100)[0].relay == "heater"


def test_configured_limit_overrides_the_meter() -> None:
    s = shedder(limit_va=[5000.0])
    assert s.reading(meter(std(4600)), 0)[0].relay == "heater"  # 92 % of 5000


def test_rotation_swaps_comfort_loads_between_thresholds() -> None:
    s = shedder(rotation_s=100, loads=[
        LoadConfig(relay="bedroom", priority=1, power_w=1000, rotate=True),
        LoadConfig(relay="living", priority=2, power_w=1000, rotate=True),
    ])
    s.reading(meter(std(8300)), 0)  # bedroom shed
    assert s.reading(meter(std(7800)), 50) == []  # 87 %: between the thresholds, too early
    got = s.reading(meter(std(7800)), 101)
    assert [(d.relay, d.shed) for d in got] == [("living", True), ("bedroom", False)]
