"""S0 pulse counting: count accuracy on a 10-min 16.7 Hz stream, and the counter's CPU.

Figures: pulses counted / sent (clean and with 0.2-3 ms bounces on every edge), the worst
power error against the true 6 kW, and the CPU the counter takes per second of a 16.7 Hz
line when fed as the service feeds it (every edge, an advance() per 50 ms edge wait, one
power reading a second); then a live SimSource read by that loop for a few seconds.
"""

from __future__ import annotations

import time

from services.pulses.counter import NS, CounterSettings, PulseCounter
from services.pulses.edges import Edge, SimSource, constant, simulate

MS = 1_000_000
SETTINGS = CounterSettings(imp_per_kwh=10000, max_power_kw=6)  # 60 ms minimum: 16.7 Hz
MINUTES = 10


def stream(bounce_s: float) -> list[Edge]:
    """30/30 ms pulses (6 kW on 10 000 imp/kWh) for MINUTES, with sequence numbers."""
    edges, _ = simulate(constant(6000.0), 10000, 1.0, 1.0 + MINUTES * 60, width_s=0.03,
                        bounce_s=bounce_s, seed=1)
    return [Edge(e.ts_ns, e.active, i) for i, e in enumerate(edges)]


def run(edges: list[Edge], settings: CounterSettings = SETTINGS,
        ) -> tuple[PulseCounter, list[float], float]:
    """Feed like the service; returns the counter, the powers read, the CPU seconds."""
    counter = PulseCounter(settings, 0)
    powers: list[float] = []
    tick, second = 50 * MS, NS
    start = time.process_time()
    for edge in edges:
        while edge.ts_ns >= tick:
            counter.advance(tick)
            if tick >= second:
                p = counter.power_w()
                if p is not None:
                    powers.append(p)
                second += NS
            tick += 50 * MS
        counter.edge(edge)
    counter.advance(edges[-1].ts_ns + NS)
    return counter, powers, time.process_time() - start


def live_cpu(seconds: float = 3.0) -> float:
    """CPU share of a live SimSource at 16.7 Hz read by the service's loop (sim included)."""
    source = SimSource(lambda: 6000.0, 10000, width_s=0.03)
    counter = PulseCounter(SETTINGS, source.now_ns())
    end = time.monotonic() + seconds
    start = time.process_time()
    while time.monotonic() < end:
        for edge in source.read(0.05):
            counter.edge(edge)
        counter.advance(source.now_ns())
    cpu = time.process_time() - start
    source.close()
    assert counter.diag.pulses > 0
    return cpu / seconds


def main() -> None:
    """Print the figures."""
    print(f"pulses: {MINUTES} min of 30/30 ms pulses at 16.7 Hz (6 kW on 10 000 imp/kWh):")
    sent = len(stream(0.0)) // 2
    # Bounces eat into a 30 ms pulse's stable time: at 16.7 Hz, up to 6 ms of them per edge
    # need min_pulse_ms and min_gap_ms of 20 (longer pulses keep 30 ms's margin).
    bouncy = CounterSettings(10000, 6, min_pulse_ns=20 * MS, min_gap_ns=20 * MS)
    for label, bounce, settings in (("clean", 0.0, SETTINGS),
                                    ("bounces 0.2-3 ms", 0.003, bouncy)):
        edges = stream(bounce)
        counter, powers, cpu = run(edges, settings)
        worst = max(abs(p - 6000) / 6000 for p in powers[1:])
        print(f"  {label:17s}: {counter.diag.pulses}/{sent} counted, worst power error "
              f"{worst * 100:.3f} %, counter CPU {cpu / (MINUTES * 60) * 100:.4f} % of a core "
              f"({cpu * 1e6 / len(edges):.2f} µs per edge)")
    print(f"  live SimSource + counter loop: {live_cpu() * 100:.2f} % of a core")


if __name__ == "__main__":
    main()
