"""The filter on its own: every way a DS18B20 lies, and the hypothesis properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.sim.onewire import Fault, fault_text, milli_c, raw_of, scratchpad, w1_slave_text
from services.temperature.validate import MAX_C, MIN_C, ProbeFilter, Verdict
from services.temperature.w1 import RawRead, parse_w1_slave


def good(temp_c: float) -> RawRead:
    return parse_w1_slave(w1_slave_text(scratchpad(raw_of(temp_c))))


def test_a_good_read_is_published_and_counted() -> None:
    f = ProbeFilter(10)
    assert f.check(good(21.5)) == (Verdict.OK, 21.5)
    assert (f.counters.reads, f.counters.ok, f.counters.last_error) == (1, 1, None)


def test_each_fault_publishes_nothing_and_counts_its_cause() -> None:
    f = ProbeFilter(10)
    f.check(good(20.0))
    expected: dict[Fault, tuple[str, Verdict]] = {
        "crc": ("crc_errors", Verdict.CRC), "reset": ("reset_values", Verdict.RESET),
        "zero": ("zero_reads", Verdict.ZERO), "timing_high": ("out_of_range", Verdict.RANGE),
        "timing_low": ("out_of_range", Verdict.RANGE), "brownout": ("step_rejects", Verdict.STEP),
    }
    for fault, (counter, verdict) in expected.items():
        before = getattr(f.counters, counter)
        assert f.check(parse_w1_slave(fault_text(fault, 20.0))) == (verdict, None), fault
        assert getattr(f.counters, counter) == before + 1, fault
        assert f.check(good(20.0))[0] is Verdict.OK  # back to normal: the held jump dropped
    assert f.counters.out_of_range == 2 and f.last_good_c == 20.0


def test_the_all_zero_scratchpad_passes_the_crc_but_not_the_filter() -> None:
    read = parse_w1_slave(fault_text("zero", 20.0))
    assert read.crc_ok and read.milli_c == 0
    assert ProbeFilter(10).check(read) == (Verdict.ZERO, None)
    # A real 0 °C (melting ice) has a non-zero scratchpad and passes.
    assert ProbeFilter(10).check(good(0.0)) == (Verdict.OK, 0.0)


def test_85_is_believed_only_after_a_good_value_above_80() -> None:
    reset = parse_w1_slave(fault_text("reset", 0.0))
    assert reset.milli_c == 85000
    assert ProbeFilter(10).check(reset)[0] is Verdict.RESET  # first read: never
    cold = ProbeFilter(10)
    cold.check(good(80.0))
    assert cold.check(reset)[0] is Verdict.RESET
    hot = ProbeFilter(10)
    hot.check(good(80.5))
    assert hot.check(reset) == (Verdict.OK, 85.0)
    assert hot.check(good(85.0625)) == (Verdict.OK, 85.062)  # not exactly 85: a value


def test_range_limits_are_inclusive() -> None:
    for temp in (-55.0, 125.0):
        assert ProbeFilter(500).check(good(temp)) == (Verdict.OK, temp)
    for temp in (-55.0625, 125.0625):
        assert ProbeFilter(500).check(good(temp))[0] is Verdict.RANGE


def test_a_jump_is_held_until_the_next_read_confirms_it() -> None:
    f = ProbeFilter(10)
    f.check(good(20.0))
    assert f.check(good(55.0)) == (Verdict.STEP, None)  # probe dropped into hot water
    assert f.check(good(55.5)) == (Verdict.OK, 55.5)  # confirmed by the next read
    assert f.counters.step_rejects == 1
    assert f.check(good(64.0)) == (Verdict.OK, 64.0)  # within 10 °C: no hold


def test_the_kernel_prints_negative_values_as_c_truncates() -> None:
    assert milli_c(raw_of(-10.125)) == -10125 and milli_c(1) == 62 and milli_c(-1) == -62
    assert good(-10.125).milli_c == -10125


# -- properties ------------------------------------------------------------------------------

_ANY_READ = st.builds(
    RawRead, crc_ok=st.booleans(), scratchpad=st.binary(min_size=9, max_size=9),
    milli_c=st.integers(-300_000, 300_000))


@settings(max_examples=300, deadline=None)
@given(st.lists(_ANY_READ, max_size=40), st.floats(0.5, 50))
def test_nothing_outside_the_range_is_ever_published(reads: list[RawRead], step: float) -> None:
    f = ProbeFilter(step)
    for read in reads:
        verdict, value = f.check(read)
        if value is not None:
            assert MIN_C <= value <= MAX_C and read.crc_ok and any(read.scratchpad)
            assert verdict is Verdict.OK
    c = f.counters
    assert c.reads == len(reads) == c.ok + c.crc_errors + c.zero_reads + c.reset_values \
        + c.out_of_range + c.step_rejects


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-16, 16), min_size=3, max_size=30),  # a smooth signal, 1/16 °C steps
    st.integers(-400, 1200),  # where it starts (x 1/16 °C)
    st.data(),
)
def test_a_single_spike_is_never_published(
    deltas: list[int], start: int, data: st.DataObject,
) -> None:
    step_c = 10.0
    raws = [start]
    for d in deltas:
        raws.append(raws[-1] + d)  # at most 1 °C between reads: never a jump
    at = data.draw(st.integers(1, len(raws) - 1))
    # More than max_step_c + 1 °C off: further than max_step_c from both neighbours.
    spike = raws[at] + data.draw(st.sampled_from([-1, 1])) * data.draw(st.integers(177, 900))
    reads = [*raws[:at], spike, *raws[at + 1:]]
    f = ProbeFilter(step_c)
    published = [f.check(parse_w1_slave(w1_slave_text(scratchpad(r))))[1] for r in reads]
    assert published[at] is None
    # Everything around it is published (unless a smooth value itself is out of range).
    for i, r in enumerate(reads):
        if i != at and MIN_C * 16 <= r <= MAX_C * 16 and r * 1000 // 16 != 85000:
            assert published[i] == milli_c(r) / 1000
