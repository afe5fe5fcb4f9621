"""The shedding service harness, shared by the service and hostile-input tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Broker, Watcher
from tests.shedding.test_service import Harness


@pytest.fixture
def harness(tmp_path: Path, broker: Broker, prefix: str,
            watch: Callable[[str], Watcher]) -> Iterator[Harness]:
    h = Harness(tmp_path, broker, prefix, watch(f"{prefix}/#"))
    yield h
    h.stop()
