"""Units of the automation section: durations, clock times, windows, day and month sets."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from services.automation import units


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0), ("10min", 600.0), ("3h", 10800.0),
     ("1h30min", 5400.0), ("1h 30min 5s", 5405.0), ("0.5h", 1800.0), (" 2min ", 120.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert units.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10m", "3 hours", "1h30", "30min1h", "1h1h", "-5s", "abc",
                                 True, None, [1]])
def test_bad_durations_name_the_text(bad: object) -> None:
    with pytest.raises(ValueError, match="is not a duration") as info:
        units.parse_duration(bad)
    assert repr(bad) in str(info.value)


@given(st.integers(min_value=0, max_value=10 * 86400))
def test_duration_round_trip(seconds: int) -> None:
    assert units.parse_duration(units.format_duration(seconds)) == seconds


@given(st.integers(0, 99), st.integers(0, 999), st.integers(0, 9999))
def test_duration_parts_add_up(h: int, m: int, s: int) -> None:
    assert units.parse_duration(f"{h}h{m}min{s}s") == h * 3600 + m * 60 + s


def test_clock_times_and_their_yaml11_readings() -> None:
    assert units.parse_clock("06:00") == 360
    assert units.parse_clock("6:30") == 390
    # PyYAML (YAML 1.1) reads unquoted 18:00 and 6:00 as base-60 ints, 06:00 as a string.
    read = yaml.safe_load("a: 18:00\nb: 6:00\nc: 06:00")
    assert read == {"a": 1080, "b": 360, "c": "06:00"}
    assert [units.parse_clock(v) for v in read.values()] == [1080, 360, 360]
    assert units.parse_clock("24:00", allow_24=True) == 1440


@pytest.mark.parametrize("bad", ["24:00", "12:60", "noon", "1200", 1440, -1, True, 6.5])
def test_bad_clock_times(bad: object) -> None:
    with pytest.raises(ValueError, match="time of day"):
        units.parse_clock(bad)


@given(st.integers(0, 1439))
def test_clock_round_trip(minutes: int) -> None:
    text = units.format_clock(minutes)
    assert units.parse_clock(text) == minutes
    # The base-60 int YAML 1.1 makes of it unquoted is the same minute.
    unquoted = f"x: {minutes // 60}:{minutes % 60:02d}"  # 6:00, 18:00: ints for YAML 1.1
    assert units.parse_clock(yaml.safe_load(unquoted)["x"]) == minutes


def test_windows() -> None:
    night = units.parse_window("22:00-06:00")
    assert night.wraps and night.minutes == 480
    assert night.contains(23 * 60) and night.contains(0) and night.contains(359)
    assert not night.contains(360) and not night.contains(12 * 60)
    assert night.started_yesterday(60) and not night.started_yesterday(23 * 60)
    day = units.parse_window("10:00-18:00")
    assert not day.wraps and day.contains(600) and not day.contains(1080)
    whole = units.parse_window("00:00-24:00")
    assert all(whole.contains(m) for m in range(1440)) and whole.minutes == 1440
    assert str(night) == "22:00-06:00"


@pytest.mark.parametrize(("bad", "why"), [("06:00-06:00", "empty window"),
                                          ("06:00", "not a time window"),
                                          ("25:00-06:00", "not a time window"),
                                          ("06:00-07:00-08:00", "not a time window"),
                                          (600, "not a time window")])
def test_bad_windows(bad: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        units.parse_window(bad)


@given(st.integers(0, 1439), st.integers(0, 1439), st.integers(0, 1439))
def test_a_window_or_its_complement_holds_never_both(a: int, b: int, minute: int) -> None:
    if a == b:
        return
    text = f"{units.format_clock(a)}-{units.format_clock(b)}"
    window = units.parse_window(text)
    other = units.parse_window(f"{units.format_clock(b)}-{units.format_clock(a)}")
    assert window.contains(minute) != other.contains(minute)
    assert window.complement() == other
    assert units.parse_window(str(window)) == window
    assert window.minutes + other.minutes == 1440


def test_day_sets() -> None:
    assert units.parse_days("mon-fri") == {1, 2, 3, 4, 5}
    assert units.parse_days("sat") == {6}
    assert units.parse_days(["sat", "sun"]) == {6, 7}
    assert units.parse_days("mon-wed,fri") == {1, 2, 3, 5}
    assert units.parse_days("fri-mon") == {5, 6, 7, 1}  # a range may wrap the week
    assert units.parse_days("Mon - Tue") == {1, 2}


@pytest.mark.parametrize("bad", ["monday", "mon-", "xyz", "", 3, [True], "mon-tue-wed"])
def test_bad_day_sets(bad: object) -> None:
    with pytest.raises(ValueError, match="day"):
        units.parse_days(bad)


def test_month_sets() -> None:
    assert units.parse_months("nov-feb") == {11, 12, 1, 2}
    assert units.parse_months([7, "aug"]) == {7, 8}
    with pytest.raises(ValueError, match="month"):
        units.parse_months(13)
    with pytest.raises(ValueError, match="month"):
        units.parse_months("june")


@given(st.frozensets(st.integers(1, 7), min_size=1))
def test_day_set_round_trip(days: frozenset[int]) -> None:
    assert units.parse_days(units.format_set(days, units.DAYS)) == days


@given(st.frozensets(st.integers(1, 12), min_size=1))
def test_month_set_round_trip(months: frozenset[int]) -> None:
    assert units.parse_months(units.format_set(months, units.MONTHS)) == months


def test_on_off_as_yaml11_reads_them() -> None:
    read = yaml.safe_load("a: on\nb: off\nc: 'on'\nd: 'off'")
    assert read == {"a": True, "b": False, "c": "on", "d": "off"}
    assert [units.parse_on_off(v) for v in read.values()] == ["on", "off", "on", "off"]
    with pytest.raises(ValueError, match="neither"):
        units.parse_on_off("yes")
