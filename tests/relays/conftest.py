"""Fixtures of the relays tests: gpiozero's mock pins, a harness, subprocesses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gpiozero import Device  # type: ignore[import-untyped, unused-ignore]
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped, unused-ignore]

from tests.conftest import Broker, Watcher
from tests.relays.harness import Clock, Harness, Proc, make_config


@pytest.fixture(autouse=True)
def mock_gpio() -> Iterator[MockFactory]:
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = None


@pytest.fixture
def harness(tmp_path: Path, broker: Broker, prefix: str,
            watch: Callable[[str], Watcher]) -> Iterator[Harness]:
    h = Harness(make_config(tmp_path, broker, prefix), Clock(), watch(f"{prefix}/#"), broker,
                prefix)
    yield h
    h.stop()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()
