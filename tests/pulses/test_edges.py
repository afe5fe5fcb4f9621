"""Edge sources without GPIO hardware: the gpiod 2.x names GpiodSource calls (so an API
change fails here, not on a Pi), chip lookup by label, replay files, the simulator."""

from __future__ import annotations

import inspect
from pathlib import Path

import gpiod
import pytest
from gpiod.line import Bias, Clock, Direction
from gpiod.line import Edge as LineEdge

from services.core.gpio import GpioError, find_chip
from services.pulses.counter import CounterSettings, PulseCounter
from services.pulses.edges import (
    Edge,
    ReplaySource,
    SimSource,
    dump_edges,
    load_edges,
    simulate,
)


def test_the_gpiod_2_api_we_call_exists() -> None:
    assert gpiod.__version__.startswith("2.")
    assert callable(gpiod.request_lines)
    assert {"path", "config", "consumer"} <= set(inspect.signature(gpiod.request_lines).parameters)
    fields = set(inspect.signature(gpiod.LineSettings).parameters)
    assert {"direction", "edge_detection", "bias", "active_low", "debounce_period",
            "event_clock"} <= fields
    assert LineEdge.BOTH and Bias.PULL_UP and Bias.PULL_DOWN and Bias.DISABLED and Bias.AS_IS
    assert Direction.INPUT and Clock.MONOTONIC
    ev = gpiod.EdgeEvent.Type.RISING_EDGE
    assert ev != gpiod.EdgeEvent.Type.FALLING_EDGE
    for name in ("event_type", "timestamp_ns", "line_seqno", "global_seqno", "line_offset"):
        assert name in gpiod.EdgeEvent.__annotations__
    for name in ("wait_edge_events", "read_edge_events", "get_value", "release"):
        assert callable(getattr(gpiod.LineRequest, name))
    assert callable(gpiod.Chip.get_info) and "label" in gpiod.ChipInfo.__annotations__


def test_a_chip_is_found_by_its_label(tmp_path: Path) -> None:
    labels = {"gpiochip0": "pinctrl-bcm2711", "gpiochip4": "pinctrl-rp1",
              "gpiochip10": "raspberrypi-exp-gpio"}
    for name in [*labels, "gpiochip7"]:
        (tmp_path / name).touch()

    def label_of(path: str) -> str:
        name = Path(path).name
        if name not in labels:
            raise PermissionError(path)
        return labels[name]

    pattern = str(tmp_path / "gpiochip*")
    assert find_chip("pinctrl-rp1", pattern, label_of) == str(tmp_path / "gpiochip4")
    assert find_chip("pinctrl-bcm2711", pattern, label_of) == str(tmp_path / "gpiochip0")
    assert find_chip("/dev/gpiochip9", pattern, label_of) == "/dev/gpiochip9"  # a path as is
    with pytest.raises(GpioError, match=r"pinctrl-x.*gpiochip4 \(pinctrl-rp1\)"):
        find_chip("pinctrl-x", pattern, label_of)


def test_a_real_lookup_without_gpiochips_says_what_it_saw(tmp_path: Path) -> None:
    (tmp_path / "gpiochip0").write_text("not a device")
    with pytest.raises(GpioError, match="none readable"):
        find_chip("pinctrl-rp1", str(tmp_path / "gpiochip*"))


def test_replay_files_round_trip_and_count(tmp_path: Path) -> None:
    edges, _ = simulate(lambda _t: 3600.0, 1000, 0.0, 10.0)  # 1 pulse a second
    numbered = [Edge(e.ts_ns, e.active, i) for i, e in enumerate(edges)]
    path = tmp_path / "edges.jsonl"
    path.write_text("# a recording\n" + dump_edges(numbered), encoding="utf-8")
    assert load_edges(path) == numbered
    source = ReplaySource(path, batch=7)
    counter = PulseCounter(CounterSettings(1000, 12), 0)
    while batch := source.read(0.05):
        for edge in batch:
            counter.edge(edge)
    for _ in range(3):
        assert source.read(0.05) == []
        counter.advance(source.now_ns())
    assert counter.diag.pulses == len(edges) // 2 >= 9 and counter.diag.lost_events == 0
    path.write_text('{"ts_ns": 1, "active": true}\n{"ts": 2}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=":2: not an edge"):
        load_edges(path)


def test_the_simulator_pulses_at_the_profile_s_power() -> None:
    edges, _ = simulate(lambda t: 1000.0 if t < 1800 else 0.0, 1000, 0.0, 3600.0)
    assert len(edges) == 2 * 500  # 0.5 kWh
    widths = [b.ts_ns - a.ts_ns for a, b in zip(edges[::2], edges[1::2], strict=True)]
    assert all(w == 90_000_000 for w in widths)


def test_the_live_simulator_gives_numbered_edges_and_closes() -> None:
    source = SimSource(lambda: 360_000.0, 10000, width_s=0.004)  # a pulse every 1 ms
    got: list[Edge] = []
    while len(got) < 4:
        got += source.read(1.0)
    assert [e.seq for e in got[:4]] == [1, 2, 3, 4] and got[0].active
    source.close()
    assert source.read(1.0) == []
