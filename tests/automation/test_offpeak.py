"""OffpeakLearner: windows from the meter's hp/hc changes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.automation.offpeak import OffpeakLearner
from services.automation.units import Window

PARIS = ZoneInfo("Europe/Paris")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


def test_nothing_learned_before_both_edges() -> None:
    learner = OffpeakLearner()
    learner.observe(at(1, 23), "hc")  # started in hc: its start is unknown
    learner.observe(at(2, 6), "hp")
    assert learner.learned() is None
    learner.observe(at(2, 12, 30), "hc")
    assert learner.learned() is None


def test_two_windows_a_day() -> None:
    learner = OffpeakLearner()
    for day in (1, 2):
        learner.observe(at(day, 1), "hp")
        learner.observe(at(day, 2), "hc")
        learner.observe(at(day, 7), "hp")
        learner.observe(at(day, 13), "hc")
        learner.observe(at(day, 16), "hp")
    assert learner.learned() == (Window(120, 420), Window(780, 960))


def test_changed_hours_are_forgotten() -> None:
    learner = OffpeakLearner()
    learner.observe(at(1, 21), "hp")
    learner.observe(at(1, 22), "hc")
    learner.observe(at(2, 6), "hp")
    for day in range(2, 8):  # Enedis moved them to 23:00-07:00
        learner.observe(at(day, 23), "hc")
        learner.observe(at(day + 1, 7), "hp")
    assert learner.learned() == (Window(23 * 60, 7 * 60),)


def test_a_gap_in_the_periods_breaks_the_edge() -> None:
    learner = OffpeakLearner()
    learner.observe(at(1, 21), "hp")
    learner.observe(at(1, 22), "hc")
    learner.observe(at(1, 23), None)  # a base/EJP state or unknown: no edge across it
    learner.observe(at(2, 6), "hp")
    assert learner.learned() is None


@given(st.lists(st.tuples(st.integers(0, 60 * 24 * 20), st.sampled_from(["hc", "hp", None])),
                max_size=60))
def test_round_trip_and_bounded(observations: list[tuple[int, str | None]]) -> None:
    learner = OffpeakLearner()
    start = at(1, 0)
    for minutes, period in sorted(observations, key=lambda o: o[0]):
        learner.observe(start + timedelta(minutes=minutes), period)  # type: ignore[arg-type]
    windows = learner.learned() or ()
    assert len(windows) <= 4
    assert OffpeakLearner.from_dict(learner.to_dict()).learned() == learner.learned()
