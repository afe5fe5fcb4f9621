"""Which DS18B20 reads to believe: pure, no I/O, one ``ProbeFilter`` per probe.

The known ways a probe lies (issue 15): CRC ``NO`` (noise on the wire); an all-zero
scratchpad, whose CRC-8 is 0 so the kernel says ``YES`` and 0 °C; 85.000 °C, the power-on
value of a probe that reset and never converted (a fridge froze because a monitor believed
it); 127.94 °C (0x07FF) and -127 °C from read-slot timing faults; and a brown-out, a good CRC
around a wrong conversion, which only a jump from the last good value gives away.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from services.temperature.w1 import RawRead

MIN_C, MAX_C = -55.0, 125.0  # the DS18B20's range
RESET_MILLI_C = 85000
RESET_TRUSTED_ABOVE_C = 80.0  # 85 °C is believable right after a good value above this
TIMING_MILLI_C = (127937, 127940, -127000)  # 0x07FF as the kernel and as others print it


class Verdict(StrEnum):
    """What one read was judged to be."""

    OK = "ok"
    CRC = "crc_error"
    ZERO = "zero_read"
    RESET = "reset_value"
    RANGE = "out_of_range"
    STEP = "step_held"  # a jump: held until the next read confirms it


@dataclass
class Counters:
    """Per-probe diagnostics, published as they are."""

    reads: int = 0
    ok: int = 0
    crc_errors: int = 0
    zero_reads: int = 0
    reset_values: int = 0
    out_of_range: int = 0
    step_rejects: int = 0
    read_errors: int = 0  # the file could not be read (EIO, gone, truncated)
    retries: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """For the diagnostics topic."""
        return asdict(self)


_COUNTER = {
    Verdict.CRC: "crc_errors", Verdict.ZERO: "zero_reads", Verdict.RESET: "reset_values",
    Verdict.RANGE: "out_of_range", Verdict.STEP: "step_rejects",
}


def judge(read: RawRead, last_good_c: float | None) -> Verdict:
    """The verdict on one read, without the step rule."""
    if not read.crc_ok:
        return Verdict.CRC
    if not any(read.scratchpad) and read.scratchpad:
        return Verdict.ZERO
    if read.milli_c in TIMING_MILLI_C or not MIN_C * 1000 <= read.milli_c <= MAX_C * 1000:
        return Verdict.RANGE
    if read.milli_c == RESET_MILLI_C and (last_good_c is None
                                          or last_good_c <= RESET_TRUSTED_ABOVE_C):
        return Verdict.RESET
    return Verdict.OK


class ProbeFilter:
    """One probe's last good value, held jump and counters."""

    def __init__(self, max_step_c: float) -> None:
        self.max_step_c = max_step_c
        self.last_good_c: float | None = None
        self.held_c: float | None = None  # a jump waiting for a read that confirms it
        self.counters = Counters()

    def check(self, read: RawRead) -> tuple[Verdict, float | None]:
        """Judge a read: the value to publish (OK), else None, counted by its cause.

        A value further than ``max_step_c`` from the last good one is held; it is accepted
        when the next read is within ``max_step_c`` of the held value (a real change, such
        as a probe moved into hot water), and a lone spike never is.
        """
        self.counters.reads += 1
        verdict = judge(read, self.last_good_c)
        value = read.milli_c / 1000.0
        if verdict is Verdict.OK and self.last_good_c is not None \
                and abs(value - self.last_good_c) > self.max_step_c:
            confirmed = self.held_c is not None and abs(value - self.held_c) <= self.max_step_c
            self.held_c = None if confirmed else value
            if not confirmed:
                verdict = Verdict.STEP
        elif verdict is Verdict.OK:
            self.held_c = None  # back near the last good value: the held jump was a spike
        if verdict is not Verdict.OK:
            setattr(self.counters, _COUNTER[verdict],
                    getattr(self.counters, _COUNTER[verdict]) + 1)
            self.counters.last_error = f"{verdict.value}: {value:g} °C" \
                if verdict is not Verdict.CRC else verdict.value
            return verdict, None
        self.counters.ok += 1
        self.last_good_c = value
        return verdict, value

    def read_failed(self, reason: str) -> None:
        """The file could not be read at all."""
        self.counters.reads += 1
        self.counters.read_errors += 1
        self.counters.last_error = reason
