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


def main() -> None:
    """Every automation figure."""
    bench_allocator()


if __name__ == "__main__":
    main()
