"""The persisted index, the calibration message and the config's errors, by key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.core.contract import PulseCalibration, Rejection, TopicKind, Topics
from services.pulses.config import MeterConfig, PulsesConfig
from services.pulses.index import MeterIndex


def test_energy_is_the_base_plus_pulses_without_float_drift() -> None:
    index = MeterIndex(10000, 1000.0)
    for _ in range(100_000):
        index.add(1)
    assert index.energy_wh == 11000.0 and index.pulses_total == 100_000


def test_calibration_goes_up_never_down() -> None:
    index = MeterIndex(1000, 500.0)
    index.add(20)
    assert index.calibrate(1_234_567) is None
    assert index.energy_wh == 1_234_567 and index.pulses_total == 20
    index.add(3)
    reason = index.calibrate(1_234_000)
    assert reason is not None and "never decreases" in reason
    assert index.energy_wh == 1_234_570


def test_a_snapshot_restores_and_a_new_constant_keeps_the_index() -> None:
    index = MeterIndex(1000, 100.0)
    index.add(50)
    snap = index.snapshot()
    assert MeterIndex.restore(snap, 1000, 0.0) == index
    changed = MeterIndex.restore(snap, 2000, 0.0)
    assert changed.energy_wh == 150.0 and changed.pulses_total == 50
    assert MeterIndex.restore(None, 1000, 42.0).energy_wh == 42.0
    assert MeterIndex.restore({"base_wh": "x"}, 1000, 7.0).energy_wh == 7.0


@given(st.lists(st.one_of(st.integers(0, 50), st.floats(0, 1e7)), max_size=50))
def test_the_index_never_decreases(steps: list[int | float]) -> None:
    index = MeterIndex(1000, 0.0)
    last = index.energy_wh
    for step in steps:
        if isinstance(step, int):
            index.add(step)
        else:
            index.calibrate(step)
        assert index.energy_wh >= last
        last = index.energy_wh


def test_the_calibration_message_and_topic() -> None:
    assert PulseCalibration.decode(b'{"energy_wh": 1234567}') == PulseCalibration(1234567)
    assert PulseCalibration.decode(b"1500.5") == PulseCalibration(1500.5)
    for bad in (b"-1", b'{"energy_wh": true}', b'{"energy_wh": 1, "x": 2}', b"NaN", b"",
                b'"12"', b"1e13", b"[" * 10_000):
        assert isinstance(PulseCalibration.decode(bad), Rejection), bad
    topics = Topics("enerbox", "api")
    topic = topics.parse(topics.pulses_set("water-heater"))
    assert topic is not None and topic.kind == TopicKind.PULSES_SET
    assert topic.device == "water-heater"
    assert PulseCalibration.decode(PulseCalibration(10.0).encode()) == PulseCalibration(10.0)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValidationError, match="id"):
        MeterConfig(id="Water Heater")
    with pytest.raises(ValidationError, match="replay_file is required"):
        MeterConfig(id="m", source="replay")
    with pytest.raises(ValidationError, match="imp_per_kwh"):
        MeterConfig(id="m", imp_per_kwh=0)
    with pytest.raises(ValidationError, match="meter id may appear once"):
        PulsesConfig(meters=[MeterConfig(id="m"), MeterConfig(id="m", line=3)])
    with pytest.raises(ValidationError, match="gpiod line may appear once"):
        PulsesConfig(meters=[MeterConfig(id="a", line=3), MeterConfig(id="b", line=3)])
    assert MeterConfig(id="m", imp_per_kwh=800).wh_per_pulse == 1.25


def test_the_index_catches_up_with_what_was_published_never_back() -> None:
    index = MeterIndex(1000, 5000.0, pulses=10, pulses_total=10)  # 5010 Wh saved
    assert index.catch_up(5004.0, 4) == 0.0 and index.energy_wh == 5010.0  # older: kept
    assert index.catch_up(5013.0, 13) == 3.0  # published after the last save: taken
    assert (index.energy_wh, index.pulses_total) == (5013.0, 13)
    index.add(2)
    assert index.energy_wh == 5015.0
