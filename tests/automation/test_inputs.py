"""InputTracker: messages in (as the broker delivers them), the engine's Inputs out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.automation.config import AutomationConfig
from services.automation.inputs import InputTracker
from services.automation.units import Window
from services.core.contract import Rejection, Topics

T0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
TOPICS = Topics("enerbox", "automation")
CONFIG = AutomationConfig.model_validate({
    "signals": {
        "grid": {"source": "teleinfo/linky", "field": "net_power_va", "stale_after_s": 30},
        "soc": {"source": "vedirect/shunt", "field": "soc_pct", "stale_after_s": 60},
        "charger": {"source": "vedirect/mppt", "field": "charge_state", "stale_after_s": 60},
    },
    "tariff": "teleinfo/linky",
    "surplus": {"grid": "grid"},
    "loads": [
        {"relay": "water-heater", "power_w": 3000, "surplus": {}},
        {"relay": "pump", "power_w": 500, "require": [{"relay": "water-heater", "is": "on"}]},
        {"relay": "lamp", "allow": [{"relay": "garage", "is": "off"}]},
    ],
})


def feed(tracker: InputTracker, topic: str, payload: object, at: datetime = T0) -> Rejection | None:
    parsed = TOPICS.parse(topic)
    assert parsed is not None, topic
    raw = payload if isinstance(payload, bytes) else (
        payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
    return tracker.feed(parsed, raw, at)


def test_filters_name_every_source_once() -> None:
    filters = InputTracker(CONFIG).filters(TOPICS)
    assert len(filters) == len(set(filters))
    for topic in ("enerbox/teleinfo/linky/state", "enerbox/teleinfo/linky/availability",
                  "enerbox/vedirect/shunt/state", "enerbox/vedirect/mppt/availability",
                  "enerbox/teleinfo/status", "enerbox/vedirect/status", "enerbox/relays/status",
                  "enerbox/relays/water-heater/state", "enerbox/relays/garage/state"):
        assert topic in filters


def test_states_give_signals_tariff_and_relays() -> None:
    tracker = InputTracker(CONFIG)
    feed(tracker, "enerbox/teleinfo/linky/state",
         {"net_power_va": -1200, "tariff_period": "blue_hp", "tempo_today": "blue",
          "tempo_tomorrow": "unknown", "ts": "2026-07-01T09:59:58Z"})
    feed(tracker, "enerbox/vedirect/mppt/state", {"charge_state": "float"})
    feed(tracker, "enerbox/relays/water-heater/state",
         {"state": "on", "mode": "auto", "source": "auto", "ts": "2026-07-01T09:59:00Z"})
    inputs = tracker.inputs()
    assert inputs.signals["grid"].value == -1200.0
    assert inputs.signals["grid"].received == datetime(2026, 7, 1, 9, 59, 58, tzinfo=UTC)
    assert inputs.signals["charger"].value == "float"
    assert "soc" not in inputs.signals  # never heard: the engine reads it as stale
    assert inputs.tariff is not None and inputs.tariff.tariff_period == "blue_hp"
    assert inputs.relays["water-heater"].output == "on"
    assert inputs.relays["water-heater"].source == "auto"


def test_a_state_from_the_future_counts_from_its_arrival() -> None:
    tracker = InputTracker(CONFIG)
    feed(tracker, "enerbox/teleinfo/linky/state",
         {"net_power_va": 10, "ts": "2026-07-01T11:00:00Z"})
    assert tracker.inputs().signals["grid"].received == T0


def test_offline_device_or_service_makes_its_signals_offline() -> None:
    tracker = InputTracker(CONFIG)
    feed(tracker, "enerbox/teleinfo/linky/state", {"net_power_va": 10, "tariff_period": "hc"})
    feed(tracker, "enerbox/vedirect/shunt/state", {"soc_pct": 80})
    feed(tracker, "enerbox/teleinfo/linky/availability", "offline")
    inputs = tracker.inputs()
    assert inputs.signals["grid"].offline and not inputs.signals["soc"].offline
    assert inputs.tariff is not None and inputs.tariff.offline
    feed(tracker, "enerbox/teleinfo/linky/availability", "online")
    feed(tracker, "enerbox/vedirect/status", "offline")
    inputs = tracker.inputs()
    assert not inputs.signals["grid"].offline and inputs.signals["soc"].offline


def test_relays_offline_forgets_their_outputs() -> None:
    tracker = InputTracker(CONFIG)
    feed(tracker, "enerbox/relays/water-heater/state", {"state": "on", "source": "user"})
    feed(tracker, "enerbox/relays/status", "offline")
    assert tracker.inputs().relays == {}


def test_relay_since_is_the_time_of_the_change() -> None:
    tracker = InputTracker(CONFIG)
    feed(tracker, "enerbox/relays/garage/state", {"state": "off"})
    assert tracker.inputs().relays["garage"].since is None  # the first: unknown since when
    later = T0 + timedelta(seconds=30)
    feed(tracker, "enerbox/relays/garage/state", {"state": "on"}, later)
    feed(tracker, "enerbox/relays/garage/state", {"state": "on"}, later + timedelta(seconds=10))
    assert tracker.inputs().relays["garage"].since == later


def test_a_missing_field_leaves_the_signal_to_age() -> None:
    tracker = InputTracker(CONFIG)
    feed(tracker, "enerbox/teleinfo/linky/state", {"net_power_va": 10})
    feed(tracker, "enerbox/teleinfo/linky/state", {"apparent_power_va": 10},
         T0 + timedelta(seconds=20))
    assert tracker.inputs().signals["grid"].received == T0


def test_unrelated_topics_are_ignored() -> None:
    tracker = InputTracker(CONFIG)
    assert feed(tracker, "enerbox/teleinfo/other/state", b"garbage") is None
    assert feed(tracker, "enerbox/relays/heater2/state", b"garbage") is None
    assert tracker.inputs().signals == {}


@pytest.mark.parametrize("payload", [b"{", b"[" * 100_000, b"x" * 300_000, b"\xff\xfe",
                                     b'{"state": 3}', b'{"net_power_va": "NaN"}', b"null"])
def test_hostile_payloads_are_rejections_that_change_nothing(payload: bytes) -> None:
    tracker = InputTracker(CONFIG)
    feed(tracker, "enerbox/teleinfo/linky/state", {"net_power_va": -500, "tariff_period": "hp"})
    feed(tracker, "enerbox/relays/water-heater/state", {"state": "on", "source": "auto"})
    before = tracker.inputs()
    for topic in ("enerbox/teleinfo/linky/state", "enerbox/relays/water-heater/state",
                  "enerbox/teleinfo/linky/availability", "enerbox/relays/status"):
        feed(tracker, topic, payload, T0 + timedelta(seconds=5))
    after = tracker.inputs()
    assert after.signals == before.signals
    assert after.tariff == before.tariff
    assert after.relays == before.relays


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(
    ["enerbox/teleinfo/linky/state", "enerbox/relays/garage/state", "enerbox/vedirect/status",
     "enerbox/vedirect/shunt/availability"]))
def test_any_bytes_never_raise(payload: bytes, topic: str) -> None:
    result = feed(InputTracker(CONFIG), topic, payload)
    assert result is None or isinstance(result, Rejection)


def test_offpeak_learned_from_the_meter_and_kept_across_restart() -> None:
    tracker = InputTracker(CONFIG)
    paris = [("2026-07-01T21:00:00+02:00", "hp"), ("2026-07-01T22:00:00+02:00", "hc"),
             ("2026-07-02T06:00:00+02:00", "hp"), ("2026-07-02T12:30:00+02:00", "hp")]
    for ts, period in paris:
        feed(tracker, "enerbox/teleinfo/linky/state", {"tariff_period": period, "ts": ts},
             datetime.fromisoformat(ts))
    assert tracker.inputs().offpeak == (Window(22 * 60, 6 * 60),)
    again = InputTracker(CONFIG)
    again.load(json.loads(json.dumps(tracker.to_dict())))
    assert again.inputs().offpeak == (Window(22 * 60, 6 * 60),)
