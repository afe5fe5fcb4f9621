"""Scripted household load for the simulators: apparent power per phase at a time offset.

Pure: no I/O and no clock, time is passed in. A whole "day" plays in ``day_length_s`` seconds
(10 minutes by default) so someone watching ``make run`` sees night, peaks and PV go by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

_MASK64 = (1 << 64) - 1


def unit_noise(seed: int, step: int, channel: int) -> float:
    """Deterministic noise in [-1, 1] for (seed, time step, channel): a splitmix64 hash."""
    # A hash instead of a stateful RNG keeps the profile a pure function of time: the same
    # instant gives the same value whatever was asked before.
    x = seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9 + channel * 0x94D049BB133111EB
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return (x / _MASK64) * 2.0 - 1.0


def _bump(hour: float, centre: float, width: float) -> float:
    """Gaussian bump on the 24 h circle (so an evening peak does not stop at midnight)."""
    d = abs(hour - centre) % 24.0
    d = min(d, 24.0 - d)
    return math.exp(-0.5 * (d / width) ** 2)


@dataclass(frozen=True, slots=True)
class Peak:
    """A load spike above the subscribed power, repeated every simulated day."""

    start_s: float = 120.0  # offset inside the simulated day
    duration_s: float = 30.0
    # Drawn power during the spike, as a fraction of the subscribed power. 1.2 of 9 kVA is
    # 47 A at 230 V: over ISOUSC 45 A too, as a real overrun would be in historique.
    level: float = 1.20


@dataclass(frozen=True, slots=True)
class Cloud:
    """A cloud passing every simulated day: PV cut to ``1 - depth`` between two hours."""

    start_h: float
    end_h: float
    depth: float  # 0: no shade, 1: no PV at all


@dataclass(frozen=True, slots=True)
class PowerSample:
    """Power at one instant: consumption and PV production per phase (VA)."""

    load_va: tuple[float, ...]
    pv_va: tuple[float, ...]
    in_peak: bool

    @property
    def drawn_va(self) -> tuple[float, ...]:
        """Power drawn from the grid per phase (0 on a phase whose PV covers its load)."""
        return tuple(max(0.0, load - pv) for load, pv in zip(self.load_va, self.pv_va, strict=True))

    @property
    def net_va(self) -> float:
        """Total load minus total PV: positive when drawing, negative when injecting."""
        return sum(self.load_va) - sum(self.pv_va)


@dataclass(frozen=True, slots=True)
class LoadProfile:
    """Daily household load (night low, morning/evening peaks), noise, PV and a daily spike."""

    subscribed_va: float = 9000.0
    phase_split: tuple[float, ...] = (1.0,)  # share of the house load on each phase
    day_length_s: float = 600.0
    start_hour: float = 0.0  # simulated time of day at t = 0
    standby_va: float = 300.0
    daily_va: float = 4950.0  # amplitude of the daily shape (evening peak ~ standby + daily)
    noise_va: float = 40.0
    pv_peak_va: float = 0.0  # 0: no PV
    peak: Peak | None = field(default_factory=Peak)
    seed: int = 1
    lunch: float = 0.25  # weight of the midday bump (cooking) in the daily shape
    clouds: tuple[Cloud, ...] = ()

    @property
    def phases(self) -> int:
        """Number of phases (1 or 3)."""
        return len(self.phase_split)

    def clock_hours(self, t_s: float) -> float:
        """Simulated hours since midnight of day 0 (grows without bound)."""
        return self.start_hour + 24.0 * t_s / self.day_length_s

    def hour_at(self, t_s: float) -> float:
        """Simulated time of day, 0 <= hour < 24."""
        return self.clock_hours(t_s) % 24.0

    def day_at(self, t_s: float) -> int:
        """Simulated day number (0 for the first day)."""
        return math.floor(self.clock_hours(t_s) / 24.0)

    def in_peak(self, t_s: float) -> bool:
        """True while the daily spike is on."""
        if self.peak is None or self.peak.duration_s <= 0:
            return False
        offset = (t_s - self.peak.start_s) % self.day_length_s
        return offset < self.peak.duration_s

    def shape(self, hour: float) -> float:
        """Relative household load (about 0.05 at night, 1.0 at the evening peak)."""
        return (
            0.05
            + 0.45 * _bump(hour, 7.5, 1.0)
            + self.lunch * _bump(hour, 12.5, 1.5)
            + 0.95 * _bump(hour, 19.5, 1.6)
        )

    def pv_shape(self, hour: float) -> float:
        """Relative PV output: a clear-sky bell from 7 h to 20 h, less the clouds' shade."""
        if not 7.0 < hour < 20.0:
            return 0.0
        shade = max((c.depth for c in self.clouds if c.start_h <= hour < c.end_h), default=0.0)
        return (1.0 - shade) * math.sin(math.pi * (hour - 7.0) / 13.0) ** 2

    def at(self, t_s: float, steered_va: float = 0.0) -> PowerSample:
        """Power sample at ``t_s`` seconds after the start; ``steered_va``: the relays' loads
        that are on (spread over the phases like the house load)."""
        hour = self.hour_at(t_s)
        step = math.floor(t_s)  # noise changes once a second, like a real house
        pv_total = self.pv_peak_va * self.pv_shape(hour)
        # PV comes in evenly on every phase (a three-phase inverter, or one per phase).
        pv = tuple(pv_total / self.phases for _ in self.phase_split)
        peak = self.in_peak(t_s)
        house = self.standby_va + self.daily_va * self.shape(hour)
        loads = []
        for i, share in enumerate(self.phase_split):
            noise = self.noise_va * unit_noise(self.seed, step, i)
            # The spike is set on the drawn power, PV added back, so the meter sees the
            # requested level even at noon on a producer.
            va = self.peak_level_va * share + pv[i] + abs(noise) if peak else house * share + noise
            loads.append(max(0.0, va) + steered_va * share)
        return PowerSample(tuple(loads), pv, peak)

    @property
    def peak_level_va(self) -> float:
        """Total drawn power during the spike (VA)."""
        return 0.0 if self.peak is None else self.peak.level * self.subscribed_va


def default_profile(
    phases: int = 1,
    subscribed_kva: float = 9.0,
    producer: bool = False,
    *,
    day_length_s: float = 600.0,
    peak: Peak | None = None,
    seed: int = 1,
) -> LoadProfile:
    """A typical home: 9 kVA single-phase, or three-phase with an unbalanced split.

    ``peak=None`` gives the default daily spike; pass ``Peak(duration_s=0)`` for none.
    Producers get PV of a third of the subscribed power (3 kWc on 9 kVA).
    """
    if phases not in (1, 3):
        raise ValueError(f"phases must be 1 or 3, not {phases}")
    subscribed_va = subscribed_kva * 1000.0
    # Unbalanced on purpose: a spike then overruns one phase first, as in a real house.
    split = (1.0,) if phases == 1 else (0.26, 0.49, 0.25)
    return LoadProfile(
        subscribed_va=subscribed_va,
        phase_split=split,
        day_length_s=day_length_s,
        # Scaled so the evening peak stays at ~60 % of the subscribed power per phase share:
        # only the spike overruns.
        standby_va=subscribed_va / 30.0,
        daily_va=subscribed_va * 0.55,
        noise_va=subscribed_va / 225.0,
        pv_peak_va=subscribed_va / 3.0 if producer else 0.0,
        peak=Peak() if peak is None else peak,
        seed=seed,
    )
