"""Box views for the display tests, fed through BoxTracker as the service will feed it."""

from __future__ import annotations

import json
from typing import Any

from services.core.contract import Topics
from services.display.model import BoxTracker, BoxView

T0 = 1_795_000_000.0  # 2026-11-18 ~09:00 Paris, a fixed instant (golden frames never move)
TOPICS = Topics("enerbox", "display")


def feed(tracker: BoxTracker, topic: str, payload: Any, at: float = T0) -> None:
    """One message, its payload JSON-encoded unless bytes."""
    parsed = TOPICS.parse(topic)
    assert parsed is not None, topic
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    assert tracker.feed(parsed, raw, at) is None


def box(tariff_period: str = "blue_hp", tempo_tomorrow: str = "red",
        ejp_notice: bool = False, overload: bool = False) -> BoxTracker:
    """A home importing 1 630 VA, 2.4 kW of PV, a battery at 85 %, two relays."""
    t = BoxTracker(stale_after_s=60)
    feed(t, "enerbox/teleinfo/linky/state", {
        "apparent_power_va": 1630, "net_power_va": 1630, "tariff_period": tariff_period,
        "tempo_today": "blue", "tempo_tomorrow": tempo_tomorrow, "ejp_notice": ejp_notice,
        "overload": overload})
    feed(t, "enerbox/inverter/roof/state", {"ac_power_w": 2000, "ac_energy_wh": 1_000_000})
    feed(t, "enerbox/inverter/roof/state", {"ac_power_w": 2000, "ac_energy_wh": 1_004_500},
         T0 + 1)
    feed(t, "enerbox/vedirect/mppt/state", {"pv_power_w": 400, "yield_today_kwh": 1.2,
                                            "charge_state": "bulk"})
    feed(t, "enerbox/vedirect/shunt/state", {"soc_pct": 85.2})
    feed(t, "enerbox/relays/water-heater/state", {"state": "on", "source": "auto",
                                                  "mode": "auto"})
    feed(t, "enerbox/automation/water-heater/state", {
        "status": "surplus", "reason": "surplus : 3 400 W disponibles"})
    feed(t, "enerbox/relays/pool-pump/state", {"state": "off", "source": "user", "mode": "off"})
    return t


def fresh() -> BoxView:
    """Everything known and fresh."""
    return box().view(T0 + 2)
