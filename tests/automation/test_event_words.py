"""The automation's events say why in its language (`reason`, what the page shows) and in
English (`reason_en`, for logs and an English page), as its state does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.automation.test_service import RELAY, Harness
from tests.conftest import Broker, Watcher


@pytest.fixture
def harness(tmp_path: Path, broker: Broker, prefix: str,
            watch: Callable[[str], Watcher]) -> Iterator[Harness]:
    h = Harness(tmp_path, broker, prefix, watch(f"{prefix}/#"))
    yield h
    h.stop()


def test_decision_event_reason_in_french_and_english(harness: Harness) -> None:
    harness.home(-3000)  # exporting: the heater goes on, a decision event says why
    harness.start()
    state = harness.state(lambda s: s["status"] == "surplus")
    event = harness.w.wait_for(lambda m: m.topic.endswith("/automation/events")
                               and json.loads(m.payload)["type"] == "decision")
    data = json.loads(event.payload)
    assert data["relay"] == RELAY
    assert data["reason"] == state["reason"]  # the language's words (fr by default)
    assert data["reason_en"].startswith("surplus: ") and data["reason"] != data["reason_en"]
