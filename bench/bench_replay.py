"""Replay figures: a whole day replayed, and the decision latency after a delay ends.

Aims (issue 13, DESIGN.md "Quality bars"): a day replays in under a second; a decision
follows the end of a delay within one tick. The day is a sunny one with passing clouds, the
Linky's state every 10 s, three loads (a water heater on surplus with a daily minimum caught
up off-peak, a pool pump on surplus inside an allow window, a fil pilote zone on a schedule),
ticked every 5 s: what `enerbox automation replay` does, from the JSONL text on.
"""

from __future__ import annotations

import io
import json
import math
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from services.app.replay import Replay
from services.automation import engine as engine_module
from services.automation.config import AutomationConfig
from services.automation.replay_rows import load_rows
from services.relays.config import RelayConfig

PARIS = ZoneInfo("Europe/Paris")
RELAYS = [
    {"id": "water-heater", "board": "gpio", "channel": 17},
    {"id": "pool-pump", "board": "gpio", "channel": 18},
    {"id": "living", "kind": "fil_pilote", "board": "gpio", "channels": [5, 6]},
]
AUTOMATION = """
tick_s: 5
offpeak: ["22:00-06:00"]
signals:
  grid: {source: teleinfo/linky, field: net_power_va, stale_after_s: 30}
tariff: teleinfo/linky
surplus: {grid: grid, smoothing_s: 60, reserve_w: 50, step_s: 60}
loads:
  - relay: water-heater
    power_w: 2000
    priority: 1
    surplus: {margin_w: 100, on_after_s: 60, off_import_w: 200, off_after_s: 180}
    min_on_s: 600
    min_off_s: 300
    daily: {min_on: 3h, by: "06:00", catch_up: offpeak}
    block: [{tempo_today: red, period: hp}]
  - relay: pool-pump
    power_w: 900
    priority: 2
    surplus: {margin_w: 50, on_after_s: 120, off_import_w: 100, off_after_s: 300}
    allow: [{time: "10:00-18:00"}]
  - relay: living
    schedule:
      - {time: "06:30-08:30", days: mon-fri, order: confort}
      - {time: "17:00-22:30", order: confort}
    default: eco
"""


def _day_jsonl(start: datetime, hours: float = 24, every_s: int = 10) -> str:
    lines = []
    for k in range(int(hours * 3600 / every_s)):
        t = start + timedelta(seconds=k * every_s)
        h = t.hour + t.minute / 60
        sun = max(0.0, math.sin(math.pi * (h - 7) / 13)) * 5000
        cloud = 0.3 if (k // 18) % 5 == 0 else 1.0  # a 3-minute cloud every 15 minutes
        payload = {"net_power_va": round(450 - sun * cloud),
                   "tariff_period": "hc" if t.hour >= 22 or t.hour < 6 else "hp"}
        lines.append(json.dumps({"ts": t.isoformat(), "topic": "teleinfo/linky/state",
                                 "payload": payload}))
    return "\n".join(lines) + "\n"


def _config(text: str = AUTOMATION) -> tuple[AutomationConfig, list[RelayConfig]]:
    return (AutomationConfig.model_validate(yaml.safe_load(text)),
            [RelayConfig.model_validate(r) for r in RELAYS])


def bench_day() -> float:
    """Print and return the seconds a day takes to replay (JSONL text to output lines)."""
    automation, relays = _config()
    text = _day_jsonl(datetime(2026, 7, 1, 6, 0, tzinfo=PARIS))
    engine_s = [0.0]
    tick = engine_module.Engine.tick

    def timed(self: engine_module.Engine, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return tick(self, *args, **kwargs)
        finally:
            engine_s[0] += time.perf_counter() - t0

    best: tuple[float, float, float, Any] | None = None
    for _ in range(2):
        engine_s[0] = 0.0
        engine_module.Engine.tick = timed  # type: ignore[method-assign]
        try:
            t0 = time.perf_counter()
            rows = load_rows(io.StringIO(text))
            t1 = time.perf_counter()
            result = Replay(automation, relays).run(rows)
            t2 = time.perf_counter()
        finally:
            engine_module.Engine.tick = tick  # type: ignore[method-assign]
        if best is None or t2 - t0 < best[0]:
            best = (t2 - t0, t1 - t0, engine_s[0], result)
    assert best is not None
    total, reading, engine, result = best
    ticks = result.summary["ticks"]
    print(f"Replay, a day at tick_s 5 with 3 loads ({len(rows)} rows, {ticks} ticks, "
          f"{len(result.lines)} output lines):")
    print(f"  {total:>8.2f} s in all  (rows read {reading:.2f} s, engine {engine:.2f} s = "
          f"{engine / ticks * 1e6:.0f} µs per tick, the rest {total - reading - engine:.2f} s)"
          "  aim: < 1 s")
    return total


def bench_latency() -> list[float]:
    """Print and return, per case, the time from a delay's end to the wish's change (s)."""
    results = []
    for tick_s, delay_s, offset_s in ((5, 60, 0.0), (5, 62, 2.5), (1, 60, 0.3), (10, 45, 7.0)):
        text = AUTOMATION.replace("tick_s: 5", f"tick_s: {tick_s}").replace(
            "smoothing_s: 60", "smoothing_s: 0").replace("on_after_s: 60", f"on_after_s: {delay_s}")
        automation, relays = _config(text)
        start = datetime(2026, 7, 1, 11, 0, tzinfo=PARIS)
        step_at = start + timedelta(seconds=600 + offset_s)  # 4 kW of export from here
        rows = []
        for k in range(0, 1200, 2):
            t = start + timedelta(seconds=k)
            grid = 450 if t < step_at else -4000
            rows.append(json.dumps({"ts": t.isoformat(), "topic": "teleinfo/linky/state",
                                    "payload": {"net_power_va": grid, "tariff_period": "hp"}}))
        result = Replay(automation, relays).run(load_rows(io.StringIO("\n".join(rows))))
        on = next(datetime.fromisoformat(x["ts"]) for x in result.lines
                  if x["relay"] == "water-heater" and x["output"] == "on")
        # The grid row at step_at (or the first after it) is seen at the first tick after it:
        # the load is allotted from there, and the delay ends on_after_s later.
        seen_s = math.ceil((600 + offset_s) / 2) * 2
        allotted = start + timedelta(seconds=math.ceil(seen_s / tick_s) * tick_s)
        due = allotted + timedelta(seconds=delay_s)
        late = (on - due).total_seconds()
        results.append(late)
        print(f"  tick_s {tick_s:>2}, on_after_s {delay_s}: the wish changes {late:>5.1f} s "
              f"after the delay ends ({late / tick_s:.2f} tick)  aim: < 1 tick")
    return results


def main() -> None:
    """Both figures."""
    bench_day()
    print("Replay, decision latency after a delay ends (surplus on_after_s):")
    bench_latency()


if __name__ == "__main__":
    main()
