"""Small builders for the scenario days (tests/automation/test_scenarios_*.py).

The day runner and its every-tick invariants are days.py's (`run_day`); this adds what the
scenarios share on top: a config with every signal they use, TIC frames through the real
teleinfo decoder, and figures read off a run (on-time, energy, starts in any hour).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from services.automation.config import AutomationConfig
from services.automation.daily import output_is_on
from services.teleinfo.fields import normalize
from services.teleinfo.protocol import Decoder, Mode, encode_frame, encode_group
from tests.automation.days import Day

SIGNALS: dict[str, dict[str, Any]] = {
    "grid": {"source": "teleinfo/linky", "field": "net_power_va", "stale_after_s": 30},
    "soc": {"source": "vedirect/bmv", "field": "soc_pct", "stale_after_s": 60},
    "tank_c": {"source": "temperature/ballon", "field": "temperature_c", "stale_after_s": 180},
    "heater_w": {"source": "pulses/heater", "field": "power_w", "stale_after_s": 400},
    "charger": {"source": "vedirect/mppt", "field": "charge_state", "stale_after_s": 60},
    "battery_a": {"source": "vedirect/bmv", "field": "battery_current_a", "stale_after_s": 60},
}
GRID_SURPLUS: dict[str, Any] = {"grid": "grid", "smoothing_s": 60, "reserve_w": 50,
                                "step_s": 60}
TARIFF_KEYS = ("tariff_period", "tempo_today", "tempo_tomorrow", "ejp_notice")


def config(loads: list[dict[str, Any]], **extra: Any) -> AutomationConfig:
    """An automation section with every scenario signal, the meter as the tariff source,
    and the usual grid allocator when a load is routed (``surplus=`` replaces it)."""
    data: dict[str, Any] = {"tick_s": 5, "signals": SIGNALS, "tariff": "teleinfo/linky",
                            "loads": loads, **extra}
    if any("surplus" in load for load in loads):
        data.setdefault("surplus", GRID_SURPLUS)
    return AutomationConfig.model_validate(data)


def tic_state(mode: Mode, *groups: tuple[str, str]) -> dict[str, Any]:
    """The meter's published state for one frame of these groups: encoded on the wire,
    framed and decoded by the real teleinfo decoder, normalized, through JSON."""
    wire = [encode_group(label, value, mode) for label, value in groups]
    (frame,) = Decoder().feed(encode_frame(wire))
    state: dict[str, Any] = json.loads(json.dumps(normalize(frame)))
    return state


def tariff_of(state: Mapping[str, Any]) -> dict[str, Any]:
    """The tariff fields the engine reads (TariffInput's keywords) from a meter state."""
    return {key: state[key] for key in TARIFF_KEYS if key in state}


def stge(*, today: int = 0, tomorrow: int = 0, notice: int = 0, peak: int = 0) -> str:
    """A standard-mode STGE register: Tempo colours (1 blue, 2 white, 3 red; 0 none), EJP."""
    reg = (1 << 17) | (today << 24) | (tomorrow << 26) | (notice << 28) | (peak << 30)
    return f"{reg:08X}"


def on_seconds(day: Day, relay: str, start: datetime | None = None,
               end: datetime | None = None) -> float:
    """Seconds the relay was wished on in [start, end) (each tick's wish holds until the next)."""
    total = 0.0
    for (t, d), (t_next, _) in pairwise(day.ticks):
        if (start is None or t >= start) and (end is None or t < end) and output_is_on(
                d[relay].wish):
            total += t_next.timestamp() - t.timestamp()
    return total


def starts(day: Day, relay: str) -> list[datetime]:
    """When the relay's on wishes began."""
    return [s for s, _ in day.on_spans(relay)]


def most_starts_in_an_hour(day: Day, relay: str) -> int:
    """The most switch-ons in any 60 minutes."""
    found = starts(day, relay)
    return max((sum(1 for s in found if t <= s < t + timedelta(hours=1)) for t in found),
               default=0)


def statuses(day: Day, relay: str) -> set[str]:
    """Every status the relay had."""
    return {d[relay].status for _, d in day.ticks}
