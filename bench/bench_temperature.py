"""1-Wire read cycle: four DS18B20 probes on the fake sysfs tree, with and without bulk read.

The fake tree answers at once: these figures are enerbox's own cost per cycle (listing,
trigger, reads, parsing, filters). On a Pi, the kernel adds ~750 ms per conversion at 12 bit:
one per probe without therm_bulk_read (4 probes: ~3 s), one per bus with it (~0.75 s).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from services.sim.onewire import FakeW1Tree
from services.temperature.reader import BusReader

CONVERSION_S = 0.75  # DS18B20 at 12 bit (datasheet: 750 ms max)
PROBES = 4


def cycle_ms(bulk: bool, cycles: int = 2000) -> tuple[float, float]:
    """Median and p99 of one read cycle of PROBES probes (ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = FakeW1Tree(Path(tmp) / "w1", bulk=bulk)
        for i in range(PROBES):
            tree.add(f"28-00000000{i:04x}", 20.0 + i)
        tree.write()
        reader = BusReader(tree.root, 10.0)
        reader.rescan()
        times = []
        for _ in range(cycles):
            start = time.perf_counter()
            outcomes = reader.cycle()
            times.append((time.perf_counter() - start) * 1000)
            assert all(o.value_c is not None for o in outcomes)
        times.sort()
        return statistics.median(times), times[int(len(times) * 0.99)]


def main() -> None:
    """Print the figures."""
    print(f"temperature: one read cycle of {PROBES} probes on the fake 1-Wire tree:")
    for bulk in (True, False):
        median, p99 = cycle_ms(bulk)
        kernel_s = CONVERSION_S * (1 if bulk else PROBES)
        print(f"  {'bulk read   ' if bulk else 'no bulk read'}: {median:.3f} ms median, "
              f"{p99:.3f} ms p99 (+ ~{kernel_s:.2f} s of kernel conversions on a Pi)")


if __name__ == "__main__":
    main()
