"""Automation engine figures: the surplus allocator's time per tick for 16 loads.

The aim (issue 13) is under 2 ms per engine tick overall, the allocator being one part of it.
The day is a cumulus-like grid signal ticked every 5 s, the loads' relays following the
allocator, so every branch (allotting, timers, switching on and off) is exercised.
"""

from __future__ import annotations

import math
import time

from services.automation.surplus import AllocatorConfig, LoadNow, RoutedLoad, SurplusAllocator

LOADS = 16
TICK_S = 5.0
TICKS = 17_280  # one day at 5 s


def bench_allocator() -> float:
    """Print and return the mean time per allocator step (µs) for 16 loads over a day."""
    loads = [RoutedLoad(id=f"load{i:02d}", priority=i % 5, power_w=300.0 + 150 * i,
                        margin_w=50, on_after_s=60, off_import_w=100, off_after_s=180)
             for i in range(LOADS)]
    alloc = SurplusAllocator(AllocatorConfig(smoothing_s=60, reserve_w=50, step_s=60), loads)
    on = {load.id: False for load in loads}
    power = {load.id: load.power_w for load in loads}
    times: list[float] = []
    switches = 0
    for k in range(TICKS):
        t = k * TICK_S
        sun = max(0.0, math.sin(math.pi * k / TICKS)) * 14_000
        cloud = 0.3 if (k // 36) % 3 == 0 else 1.0  # a 3-minute cloud every 9 minutes
        grid = 600 - sun * cloud + sum(power[lid] for lid, x in on.items() if x)
        now = {lid: LoadNow(on=x) for lid, x in on.items()}
        start = time.perf_counter()
        verdicts = alloc.step(t, None if k % 2000 == 1999 else grid, now, day=k // 17_280)
        times.append(time.perf_counter() - start)
        for lid, verdict in verdicts.items():
            switches += verdict.wants_on != on[lid]
            on[lid] = verdict.wants_on
    mean_us = sum(times) / TICKS * 1e6
    p99_us = sorted(times)[int(TICKS * 0.99)] * 1e6
    print(f"Surplus allocator, {LOADS} loads, {TICKS} ticks (a day at {TICK_S:g} s, "
          f"{switches} switches):")
    print(f"  {mean_us:>8.1f} µs per step (mean)  {p99_us:>8.1f} µs (p99)  aim: < 2 ms"
          " per engine tick overall")
    return mean_us


def bench_engine() -> float:
    """Print and return the mean engine tick (µs) for 16 loads over a day (state fed back)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from services.automation.config import AutomationConfig
    from services.automation.engine import Engine
    from services.automation.engine_state import Inputs, RelayInput, SignalInput, TariffInput

    loads = [{"relay": f"load{i:02d}", "power_w": 300 + 150 * i, "priority": i % 5,
              "surplus": {"margin_w": 50, "on_after_s": 60, "off_import_w": 100,
                          "off_after_s": 180},
              "min_on_s": 300, "min_off_s": 120, "max_starts_per_hour": 6,
              "battery": {"signal": "soc", "min": 50, "resume": 60},
              "daily": {"min_on": "1h", "catch_up": "offpeak"},
              "block": [{"tempo_today": "red", "period": "hp"}, {"signal": "soc", "below": 20}],
              "schedule": [{"time": "06:30-08:30", "days": "mon-fri", "state": "on"}]}
             for i in range(LOADS)]
    config = AutomationConfig.model_validate({
        "tick_s": TICK_S, "offpeak": ["22:00-06:00"], "tariff": "teleinfo/linky",
        "signals": {"grid": {"source": "teleinfo/linky", "field": "net_power_va",
                             "stale_after_s": 30},
                    "soc": {"source": "vedirect/bmv", "field": "soc_pct", "stale_after_s": 60}},
        "surplus": {"grid": "grid"}, "loads": loads})
    engine = Engine(config)
    start = datetime(2026, 7, 1, 6, 0, tzinfo=ZoneInfo("Europe/Paris"))
    out = {f"load{i:02d}": "off" for i in range(LOADS)}
    state = None
    ticks = TICKS // 4  # six hours of the day: 10:00-16:00, the busy part
    times: list[float] = []
    for k in range(ticks):
        now = start + timedelta(hours=4, seconds=k * TICK_S)
        sun = max(0.0, math.sin(math.pi * (k + ticks) / (2 * ticks))) * 14_000
        grid = 600 - sun + sum(300 + 150 * int(r[4:]) for r, o in out.items() if o == "on")
        inputs = Inputs(signals={"grid": SignalInput(grid, now), "soc": SignalInput(80.0, now)},
                        tariff=TariffInput(now, "tempo_blue_hp", "blue", "white"),
                        relays={r: RelayInput(o, "auto") for r, o in out.items()})
        t0 = time.perf_counter()
        decisions, state = engine.tick(now, inputs, state)
        times.append(time.perf_counter() - t0)
        out = {r: d.wish for r, d in decisions.items()}
    mean_us = sum(times) / ticks * 1e6
    p99_us = sorted(times)[int(ticks * 0.99)] * 1e6
    print(f"Engine tick, {LOADS} loads, {ticks} ticks:")
    print(f"  {mean_us:>8.1f} µs per tick (mean)  {p99_us:>8.1f} µs (p99)  aim: < 2 ms")
    return mean_us


def main() -> None:
    """Every automation figure."""
    bench_allocator()
    bench_engine()


if __name__ == "__main__":
    main()
