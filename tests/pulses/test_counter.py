"""The stable-level filter on synthetic edge streams (issue 15's cases), no hardware."""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from services.pulses.counter import NS, CounterSettings, PulseCounter
from services.pulses.edges import Edge, constant, simulate

MS = 1_000_000
# 10 000 imp/kWh and 6 kW: the physical minimum interval is 60 ms, a 30/30 ms stream.
FAST = CounterSettings(imp_per_kwh=10000, max_power_kw=6)


def feed(counter: PulseCounter, edges: Iterable[Edge], publish_every_ns: int = NS) -> list[float]:
    """Feed edges, reading the power once per ``publish_every_ns`` as the service does."""
    powers: list[float] = []
    next_read = publish_every_ns
    for edge in edges:
        while edge.ts_ns >= next_read:
            counter.advance(next_read)
            p = counter.power_w()
            if p is not None:
                powers.append(p)
            next_read += publish_every_ns
        counter.edge(edge)
    return powers


def square(start_ns: int, n: int, on_ns: int, off_ns: int) -> list[Edge]:
    """n clean pulses."""
    out = []
    for i in range(n):
        t = start_ns + i * (on_ns + off_ns)
        out += [Edge(t, True), Edge(t + on_ns, False)]
    return out


def test_clean_30_30_ms_pulses_for_ten_minutes_count_exactly() -> None:
    n = 10 * 60 * 1000 // 60  # 16.7 Hz for 10 min
    edges = [Edge(e.ts_ns, e.active, i) for i, e in enumerate(square(NS, n, 30 * MS, 30 * MS))]
    c = PulseCounter(FAST, 0)
    powers = feed(c, edges)
    c.advance(edges[-1].ts_ns + 100 * MS)
    assert c.diag.pulses == n
    assert (c.diag.rejected_short, c.diag.rejected_fast, c.diag.lost_events) == (0, 0, 0)
    # 0.1 Wh every 60 ms = 6000 W.
    assert all(abs(p - 6000) / 6000 < 0.005 for p in powers[1:]), powers[:5]
    assert len(powers) > 500


def test_bounces_on_each_edge_leave_the_count_unchanged() -> None:
    profile = [(500.0, 600), (3000.0, 600)]
    for seed in range(3):
        edges: list[Edge] = []
        carry, t0 = 0.0, 1.0
        for watts, dur in profile:
            new, carry = simulate(constant(watts), 1000, t0, t0 + dur, width_s=0.09,
                                  bounce_s=0.003, seed=seed, energy_wh=carry)
            edges += new
            t0 += dur
        clean, _ = simulate(lambda t: 500.0 if t < 601 else 3000.0, 1000, 1.0, t0)
        c = PulseCounter(CounterSettings(1000, 12), 0)
        feed(c, edges)
        c.advance(round(t0 * NS) + NS)
        assert c.diag.pulses == len(clean) // 2 == (500 * 600 + 3000 * 600) // 3600
        assert c.diag.rejected_short > 0 and c.diag.rejected_fast == 0


def test_bounces_at_the_fastest_rate_neither_drop_pulses_nor_jitter_the_power() -> None:
    # A pulse timed from its last bounce made intervals of 54-66 ms: a third of them fell
    # under the 60 ms physical minimum (rejected as too fast) and the power swung by 50 %.
    edges, _ = simulate(constant(6000.0), 10000, 1.0, 61.0, width_s=0.03, bounce_s=0.003,
                        seed=1)
    s = CounterSettings(10000, 6, min_pulse_ns=20 * MS, min_gap_ns=20 * MS)
    c = PulseCounter(s, 0)
    powers = feed(c, edges)
    c.advance(62 * NS)
    assert c.diag.pulses == 1000 and c.diag.rejected_fast == 0
    assert all(abs(p - 6000) / 6000 < 0.005 for p in powers[1:])


def test_a_glitch_40_ms_after_a_long_active_level_is_not_counted() -> None:
    c = PulseCounter(FAST, 0)
    feed(c, [Edge(NS, True), Edge(3 * NS, False),  # one long pulse
             Edge(3 * NS + 40 * MS, True), Edge(3 * NS + 42 * MS, False)])  # 2 ms glitch
    c.advance(5 * NS)
    assert c.diag.pulses == 1 and c.diag.rejected_short == 1


def test_stuck_active_for_ten_minutes_is_one_pulse_and_power_decays_to_zero() -> None:
    s = CounterSettings(1000, 12, zero_after_ns=300 * NS)
    c = PulseCounter(s, 0)
    feed(c, square(NS, 3, 90 * MS, 910 * MS))  # 3.6 kW, then stuck
    c.edge(Edge(4 * NS, True))
    c.advance(4 * NS + 100 * MS)
    assert c.power_w() == 3600
    c.advance(4 * NS + 600 * NS)
    assert c.diag.pulses == 4 and c.stuck and 590 < c.stuck_s < 600
    assert c.power_w() == 0
    c.edge(Edge(700 * NS, False))
    assert not c.stuck and 590 < c.stuck_s < 700


def test_a_double_trigger_is_rejected_without_a_spike() -> None:
    s = CounterSettings(1000, 12)  # minimum interval 0.3 s
    c = PulseCounter(s, 0)
    edges = square(NS, 5, 90 * MS, 1910 * MS)  # one pulse every 2 s: 1800 W
    extra = [Edge(5 * NS + 150 * MS, True), Edge(5 * NS + 240 * MS, False)]  # 60 ms after one
    powers = feed(c, sorted(edges + extra, key=lambda e: e.ts_ns))
    c.advance(11 * NS)
    assert c.diag.pulses == 5 and c.diag.rejected_fast == 1
    assert max(powers) <= 1800.0001 and c.power_w() == 1800


def test_a_load_that_stops_decays_then_reads_zero() -> None:
    s = CounterSettings(1000, 12, zero_after_ns=60 * NS)
    c = PulseCounter(s, 0)
    feed(c, square(NS, 10, 90 * MS, 910 * MS))  # 3600 W, last pulse at 10 s
    c.advance(10 * NS + 500 * MS)
    assert c.power_w() == 3600
    c.advance(14 * NS)
    assert c.power_w() == 900  # 1 Wh in 4 s at most
    c.advance(40 * NS)
    assert c.power_w() == 120
    c.advance(70 * NS)
    assert c.power_w() == 0


def test_a_sequence_gap_is_counted_and_no_power_spans_it() -> None:
    s = CounterSettings(1000, 12)
    c = PulseCounter(s, 0)
    edges = [Edge(e.ts_ns, e.active, i) for i, e in enumerate(square(NS, 4, 90 * MS, 910 * MS))]
    feed(c, edges)
    c.advance(5 * NS)
    assert c.power_w() == 3600
    # Edges 8..11 lost (two pulses); the next pulse comes 3 s after the last one seen.
    c.edge(Edge(7 * NS, True, 12))
    c.edge(Edge(7 * NS + 90 * MS, False, 13))
    c.advance(7 * NS + 200 * MS)
    assert c.diag.lost_events == 4 and c.diag.pulses == 5
    assert c.power_w() == 3600  # the old interval (decaying), not 1 Wh over 3 s
    c.edge(Edge(9 * NS, True, 14))
    c.advance(9 * NS + 100 * MS)
    assert c.power_w() == 1800  # measured again after the gap: 2 s


def test_the_first_pulse_after_start_gives_no_power() -> None:
    c = PulseCounter(CounterSettings(1000, 12), 0)
    feed(c, square(NS, 1, 90 * MS, 910 * MS))
    c.advance(2 * NS)
    assert c.diag.pulses == 1 and c.power_w() is None


def test_a_line_active_at_start_is_not_a_pulse() -> None:
    c = PulseCounter(CounterSettings(1000, 12), 0, active=True)
    c.advance(NS)
    c.edge(Edge(NS, False))
    c.advance(2 * NS)
    assert c.diag.pulses == 0


@st.composite
def streams(draw: st.DrawFn) -> list[Edge]:
    """Alternating edges with any run lengths, from 0.1 ms to 2 s."""
    runs = draw(st.lists(st.integers(100_000, 2 * NS), min_size=1, max_size=200))
    t, level, out = 0, False, []
    for run in runs:
        t += run
        level = not level
        out.append(Edge(t, level))
    return out


def clean_active_periods(edges: list[Edge], s: CounterSettings) -> int:
    """Active runs of at least min_pulse preceded by an inactive run of at least min_gap."""
    count, since, level, gap_ok = 0, 0, False, False
    for e in edges:
        run = e.ts_ns - since
        if level and run >= s.min_pulse_ns:
            count += gap_ok
            gap_ok = False  # the next pulse needs a gap of its own
        elif not level and run >= s.min_gap_ns:
            gap_ok = True
        since, level = e.ts_ns, e.active
    if level and gap_ok:
        count += 1  # the last run, advanced far enough below
    return count


@settings(max_examples=200, deadline=None)
@given(streams(), st.sampled_from([1000, 2000, 10000]), st.sampled_from([3.0, 12.0, 60.0]))
def test_properties_count_energy_and_power_bounds(
    edges: list[Edge], imp: int, max_kw: float,
) -> None:
    s = CounterSettings(imp, max_kw)
    c = PulseCounter(s, 0)
    pulses = 0
    for e in edges:
        c.edge(e)
        c.advance(e.ts_ns + 20 * MS)
        p = c.power_w()
        assert c.diag.pulses >= pulses  # energy never decreases
        pulses = c.diag.pulses
        assert p is None or 0 <= p <= max_kw * 1000 * (1 + 1e-9)
    c.advance(edges[-1].ts_ns + 10 * NS)
    assert c.diag.pulses + c.diag.rejected_fast <= clean_active_periods(edges, s)
