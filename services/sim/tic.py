"""Linky TIC meter simulator: a complete, checksum-valid frame for any instant. No I/O, no clock.

The power comes from a LoadProfile; energy indexes integrate it between calls. The tariff
period follows the simulated time of day (off-peak 22 h-6 h); DATE and the other horodates
follow the clock given by the caller (`enerbox sim tic` gives the simulated one, sim_clock).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.sim.counters import Counters, restore
from services.sim.profile import LoadProfile, default_profile, unit_noise
from services.teleinfo.protocol import Mode, encode_frame, encode_group

PARIS = ZoneInfo("Europe/Paris")
SIM_ADCO = "031999000001"  # obviously simulated meter address (ADCO / ADSC)
SIM_PRM = "31999000000001"
NOMINAL_V = 230.0
_MSG1 = "PAS DE          MESSAGE         "
# Linky historique sends fixed IMAX values (90 A single-phase, 60 A per phase), not a maximum.
_IMAX_MONO, _IMAX_TRI = "090", "060"
# Euridis on with security (bits 19-20) and CPL registered + synchronised (bits 21-23).
_STGE_BASE = (1 << 17) | (3 << 19) | (2 << 21) | (1 << 23)


class Tariff(enum.StrEnum):
    """Supplier tariff option."""

    BASE = "base"
    HC = "hc"
    TEMPO = "tempo"


class Colour(enum.IntEnum):
    """Tempo day colour, numbered as in STGE."""

    BLUE = 1
    WHITE = 2
    RED = 3


# A fixed weekly pattern keeps runs reproducible while showing all three colours.
_TEMPO_CYCLE = (Colour.BLUE, Colour.BLUE, Colour.WHITE, Colour.BLUE, Colour.RED, Colour.WHITE,
                Colour.BLUE)
_HIST_COLOUR = {Colour.BLUE: ("B", "BLEU"), Colour.WHITE: ("W", "BLAN"), Colour.RED: ("R", "ROUG")}
_STD_COLOUR = {Colour.BLUE: "BLEU", Colour.WHITE: "BLANC", Colour.RED: "ROUGE"}
_HIST_INDEXES = {
    Tariff.BASE: ("BASE",),
    Tariff.HC: ("HCHC", "HCHP"),
    Tariff.TEMPO: ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"),
}
_OPTARIF = {Tariff.BASE: "BASE", Tariff.HC: "HC..", Tariff.TEMPO: "BBR("}
_NGTF = {Tariff.BASE: "      BASE      ", Tariff.HC: "H PLEINE/CREUSE ",
         Tariff.TEMPO: "     TEMPO      "}


def horodate(wallclock: datetime) -> str:
    """Standard-mode horodate: E (summer) / H (winter) in Europe/Paris + YYMMDDhhmmss.

    A naive datetime is taken as Paris local time.
    """
    if wallclock.tzinfo is None:
        local = wallclock.replace(tzinfo=PARIS)
    else:
        local = wallclock.astimezone(PARIS)
    return ("E" if local.dst() else "H") + local.strftime("%y%m%d%H%M%S")


def sim_clock(profile: LoadProfile, t_s: float, day0: date) -> datetime:
    """The simulated wall clock ``t_s`` seconds after start: midnight of ``day0`` (Paris) plus
    the profile's hours, so DATE shows the time the tariff periods follow."""
    midnight = datetime.combine(day0, time(), PARIS)
    return midnight + timedelta(hours=profile.clock_hours(t_s))


def is_off_peak(hour: float) -> bool:
    """Off-peak (heures creuses) hours of the simulated day: 22 h to 6 h."""
    return hour >= 22.0 or hour < 6.0


def replay_chunks(path: Path, chunk_size: int = 64) -> Iterator[bytes]:
    """Loop a raw capture file forever, byte for byte, in chunks of ``chunk_size``."""
    data = Path(path).read_bytes()
    if not data:
        raise ValueError(f"{path} is empty: nothing to replay")
    while True:
        for i in range(0, len(data), chunk_size):
            yield data[i : i + chunk_size]


@dataclass(slots=True)
class _DailyMax:
    """Today's and yesterday's maximum of one quantity, with the horodate it was reached."""

    today: int = 0
    today_at: str = ""
    yesterday: int = 0
    yesterday_at: str = ""

    def update(self, value: int, at: str) -> None:
        if value > self.today or not self.today_at:
            self.today, self.today_at = value, at

    def roll(self) -> None:
        self.yesterday, self.yesterday_at = self.today, self.today_at
        self.today, self.today_at = 0, ""


@dataclass(slots=True)
class _LoadCurve:
    """Load-curve points (CCASN / CCAIN): mean power over each simulated half hour."""

    acc_ws: float = 0.0
    acc_s: float = 0.0
    last: int = 0
    last_at: str = ""
    prev: int = 0
    prev_at: str = ""

    def add(self, power: float, dt: float) -> None:
        self.acc_ws += power * dt
        self.acc_s += dt

    def close(self, at: str) -> None:
        self.prev, self.prev_at = self.last, self.last_at
        self.last, self.last_at = round(self.acc_ws / self.acc_s) if self.acc_s else 0, at
        self.acc_ws = self.acc_s = 0.0


@dataclass(frozen=True, slots=True)
class _Instant:
    """What the meter measures at one instant."""

    stamp: str
    drawn: tuple[int, ...]  # VA drawn per phase
    total: int  # VA drawn, all phases
    injected: int  # VA injected
    currents: tuple[int, ...]  # A per phase
    volts: tuple[int, ...]
    off_peak: bool
    colour: Colour | None  # Tempo only
    tomorrow: Colour | None
    index: int  # current supplier index number, 1..10
    overrun: tuple[int, ...]  # phase numbers whose drawn power exceeds their share


class TicMeterSim:
    """A simulated Linky: call ``frame_at`` with increasing times to get its frames."""

    def __init__(
        self,
        mode: Mode | str = Mode.HISTORIQUE,
        phases: int = 1,
        tariff: Tariff | str = Tariff.BASE,
        producer: bool = False,
        subscribed_kva: int = 9,
        *,
        profile: LoadProfile | None = None,
        start_indexes: Mapping[int, int] | None = None,
        start_injected_wh: int = 0,
    ) -> None:
        self.mode = Mode(mode)
        self.tariff = Tariff(tariff)
        self.phases = phases
        self.producer = producer
        self.subscribed_kva = subscribed_kva
        self.profile = profile or default_profile(phases, subscribed_kva, producer)
        if self.profile.phases != phases:
            raise ValueError(f"profile has {self.profile.phases} phases, meter has {phases}")
        # Legacy ISOUSC convention: kVA x 5 A (200 V), per phase on three-phase meters.
        self.isousc = round(subscribed_kva * 5 / phases)
        self._limit_va = subscribed_kva * 1000.0 / phases
        n_indexes = len(_HIST_INDEXES[self.tariff])
        if start_indexes is None:
            start_indexes = {k: k * 1_000_000 for k in range(1, n_indexes + 1)}
        self._wh = [0.0] * 10
        for k, wh in start_indexes.items():
            if not 1 <= k <= n_indexes:
                raise ValueError(f"{self.tariff} has indexes 1..{n_indexes}, not {k}")
            self._wh[k - 1] = float(wh)
        self._injected_wh = float(start_injected_wh)
        self._last_t: float | None = None
        self._day = 0
        self._period = 0
        self._smax = [_DailyMax() for _ in range(phases + 1)]  # [0]: total, then per phase
        self._smaxin = _DailyMax()
        self._ccasn, self._ccain = _LoadCurve(), _LoadCurve()

    @property
    def indexes(self) -> dict[int, int]:
        """Drawn-energy supplier indexes in Wh, by index number."""
        n = len(_HIST_INDEXES[self.tariff])
        return {k: math.floor(self._wh[k - 1]) for k in range(1, n + 1)}

    @property
    def injected_wh(self) -> int:
        """Injected-energy index in Wh (EAIT)."""
        return math.floor(self._injected_wh)

    def counters(self) -> Counters:
        """The energy indexes by label, Wh, to carry over a restart (services.sim.counters)."""
        labels = _HIST_INDEXES[self.tariff]
        return {**{f"{label}_wh": self._wh[k] for k, label in enumerate(labels)},
                "EAIT_wh": self._injected_wh}

    def restore(self, saved: Counters) -> None:
        """Go on from saved indexes (those of this tariff; none lower than now)."""
        values = restore(self.counters(), saved)
        for k, label in enumerate(_HIST_INDEXES[self.tariff]):
            self._wh[k] = values[f"{label}_wh"]
        self._injected_wh = values["EAIT_wh"]

    def colours(self, t_s: float) -> tuple[Colour, Colour]:
        """Tempo colour of the day and of the next day (a Tempo day runs 6 h to 6 h)."""
        day = math.floor((self.profile.clock_hours(t_s) - 6.0) / 24.0)
        return _TEMPO_CYCLE[day % 7], _TEMPO_CYCLE[(day + 1) % 7]

    def frame_at(self, t_s: float, wallclock: datetime, steered_va: float = 0.0) -> bytes:
        """Wire bytes for ``t_s`` seconds after the start (historique: a short frame first
        while a three-phase meter is overrun); ``steered_va``: the relays' loads now on, drawn
        on top of the profile's house load (they count in power and indexes alike)."""
        s = self._step(t_s, wallclock, steered_va)
        return self._historique(s) if self.mode is Mode.HISTORIQUE else self._standard(s)

    def _step(self, t_s: float, wallclock: datetime, steered_va: float) -> _Instant:
        """Advance the meter state to ``t_s`` and measure."""
        p = self.profile
        sample = p.at(t_s, steered_va)
        stamp = horodate(wallclock)
        drawn_total, injected = max(0.0, sample.net_va), max(0.0, -sample.net_va)
        off_peak = is_off_peak(p.hour_at(t_s))
        colour = tomorrow = None
        if self.tariff is Tariff.TEMPO:
            colour, tomorrow = self.colours(t_s)
            index = 2 * colour - 1 if off_peak else 2 * colour
        elif self.tariff is Tariff.HC:
            index = 1 if off_peak else 2
        else:
            index = 1
        if self._last_t is None:
            before = horodate(wallclock - timedelta(days=1))
            for m in (*self._smax, self._smaxin):
                m.yesterday_at = before
            for c in (self._ccasn, self._ccain):
                c.last_at = c.prev_at = stamp
            self._day, self._period = p.day_at(t_s), math.floor(t_s / (p.day_length_s / 48))
            dt = 0.0
        else:
            dt = max(0.0, t_s - self._last_t)  # time never runs back: indexes stay monotonic
        self._last_t = t_s if self._last_t is None else max(self._last_t, t_s)
        self._wh[index - 1] += drawn_total * dt / 3600.0
        self._injected_wh += injected * dt / 3600.0
        self._ccasn.add(drawn_total, dt)
        self._ccain.add(injected, dt)
        period = math.floor(self._last_t / (p.day_length_s / 48))  # a simulated half hour
        if period != self._period:
            self._ccasn.close(stamp)
            self._ccain.close(stamp)
            self._period = period
        day = p.day_at(self._last_t)
        if day != self._day:
            for m in (*self._smax, self._smaxin):
                m.roll()
            self._day = day
        drawn = tuple(round(v) for v in sample.drawn_va)
        step = math.floor(t_s)
        s = _Instant(
            stamp=stamp,
            drawn=drawn,
            total=round(drawn_total),
            injected=round(injected),
            currents=tuple(
                round(abs(load - pv) / NOMINAL_V)
                for load, pv in zip(sample.load_va, sample.pv_va, strict=True)
            ),
            volts=tuple(
                round(NOMINAL_V + 2.0 * unit_noise(p.seed + 1, step, i)) for i in range(self.phases)
            ),
            off_peak=off_peak,
            colour=colour,
            tomorrow=tomorrow,
            index=index,
            # The Linky compares apparent power with the subscribed power (per phase share).
            overrun=tuple(i + 1 for i, va in enumerate(sample.drawn_va) if va > self._limit_va),
        )
        self._smax[0].update(s.total, stamp)
        for i, va in enumerate(drawn, start=1):
            self._smax[i].update(va, stamp)
        self._smaxin.update(s.injected, stamp)
        return s

    def _historique(self, s: _Instant) -> bytes:
        """Historique frame (plus a leading short frame during a three-phase overrun)."""
        g = [("ADCO", SIM_ADCO), ("OPTARIF", _OPTARIF[self.tariff])]
        g.append(("ISOUSC", f"{self.isousc:02d}"))
        for k, label in enumerate(_HIST_INDEXES[self.tariff], start=1):
            g.append((label, f"{math.floor(self._wh[k - 1]) % 10**9:09d}"))
        hp = "C" if s.off_peak else "P"
        if s.colour is not None and s.tomorrow is not None:
            g += [("PTEC", f"H{hp}J{_HIST_COLOUR[s.colour][0]}"),
                  ("DEMAIN", _HIST_COLOUR[s.tomorrow][1])]
        else:
            g.append(("PTEC", "TH.." if self.tariff is Tariff.BASE else f"H{hp}.."))
        papp = f"{min(99_990, round(s.total, -1)):05d}"  # PAPP is rounded to 10 VA
        amps = [f"{min(999, a):03d}" for a in s.currents]
        if self.phases == 1:
            g.append(("IINST", amps[0]))
            if s.overrun:
                g.append(("ADPS", amps[0]))
            g += [("IMAX", _IMAX_MONO), ("PAPP", papp), ("HHPHC", "A"), ("MOTDETAT", "000000")]
            return self._encode(g)
        iinst = [(f"IINST{i}", a) for i, a in enumerate(amps, start=1)]
        adir = [(f"ADIR{i}", amps[i - 1]) for i in s.overrun]
        g += [*iinst, *adir, *((f"IMAX{i}", _IMAX_TRI) for i in (1, 2, 3))]
        g += [("PMAX", f"{min(99_999, self._smax[0].today):05d}"), ("PAPP", papp),
              ("HHPHC", "A"), ("MOTDETAT", "000000"), ("PPOT", "00")]
        # Trames courtes: while a phase is overrun, the meter inserts ADCO ADIRx IINST1..3.
        short = self._encode([("ADCO", SIM_ADCO), *adir, *iinst]) if adir else b""
        return short + self._encode(g)

    def _encode(self, groups: list[tuple[str, str]]) -> bytes:
        """Frame bytes from (label, value) pairs."""
        return encode_frame([encode_group(k, v, self.mode) for k, v in groups])

    def _standard(self, s: _Instant) -> bytes:
        """Standard frame."""
        tri = self.phases == 3
        tariff = self.tariff
        if s.colour is not None:
            ltarf = f"{'HC' if s.off_peak else 'HP'}  {_STD_COLOUR[s.colour]}".center(16)
        elif tariff is Tariff.HC:
            ltarf = ("HEURE CREUSE" if s.off_peak else "HEURE PLEINE").center(16)
        else:
            ltarf = "BASE".center(16)
        idx = [math.floor(v) % 10**9 for v in self._wh]
        east = f"{sum(idx) % 10**9:09d}"
        g: list[tuple[str, str | None, str]] = [
            ("ADSC", None, SIM_ADCO), ("VTIC", None, "02"), ("DATE", s.stamp, ""),
            ("NGTF", None, _NGTF[tariff]), ("LTARF", None, ltarf), ("EAST", None, east),
        ]
        g += [(f"EASF{k:02d}", None, f"{v:09d}") for k, v in enumerate(idx, start=1)]
        # One distributor index covering everything (STGE bits 14-15 = 0).
        g += [("EASD01", None, east)] + [(f"EASD0{k}", None, "0" * 9) for k in (2, 3, 4)]
        if self.producer:
            g.append(("EAIT", None, f"{self.injected_wh % 10**9:09d}"))
        g += [(f"IRMS{i}", None, f"{min(999, a):03d}") for i, a in enumerate(s.currents, 1)]
        g += [(f"URMS{i}", None, f"{v:03d}") for i, v in enumerate(s.volts, 1)]
        kva = f"{self.subscribed_kva:02d}"
        g += [("PREF", None, kva), ("PCOUP", None, kva), ("SINSTS", None, _va(s.total))]
        suffixes = ["", "1", "2", "3"] if tri else [""]
        if tri:
            g += [(f"SINSTS{i}", None, _va(v)) for i, v in enumerate(s.drawn, 1)]
        maxima = list(zip(suffixes, self._smax[: len(suffixes)], strict=True))
        g += [(f"SMAXSN{x}", m.today_at, _va(m.today)) for x, m in maxima]
        g += [(f"SMAXSN{x}-1", m.yesterday_at, _va(m.yesterday)) for x, m in maxima]
        m = self._smaxin
        if self.producer:
            g += [("SINSTI", None, _va(s.injected)), ("SMAXIN", m.today_at, _va(m.today)),
                  ("SMAXIN-1", m.yesterday_at, _va(m.yesterday))]
        curves = [("CCASN", self._ccasn)] + ([("CCAIN", self._ccain)] if self.producer else [])
        for label, c in curves:
            g += [(label, c.last_at, _va(c.last)), (f"{label}-1", c.prev_at, _va(c.prev))]
        g += [(f"UMOY{i}", self._ccasn.last_at, f"{v:03d}") for i, v in enumerate(s.volts, 1)]
        g += [
            ("STGE", None, f"{self._stge(s):08X}"), ("MSG1", None, _MSG1), ("PRM", None, SIM_PRM),
            ("RELAIS", None, "001" if s.off_peak and tariff is not Tariff.BASE else "000"),
            ("NTARF", None, f"{s.index:02d}"), ("NJOURF", None, "00"), ("NJOURF+1", None, "00"),
            ("PJOURF+1", None, self._pjourf1(s)),
        ]
        return encode_frame([encode_group(k, v, self.mode, h) for k, h, v in g])

    def _stge(self, s: _Instant) -> int:
        """STGE status register consistent with the instant."""
        stge = _STGE_BASE | (s.index - 1) << 10
        if s.overrun:
            stge |= 1 << 7
        if self.producer:
            stge |= 1 << 8
        if s.injected > 0:
            stge |= 1 << 9
        if s.colour is not None and s.tomorrow is not None:
            stge |= s.colour << 24 | s.tomorrow << 26
        return stge

    def _pjourf1(self, s: _Instant) -> str:
        """Tomorrow's switching profile: HHMM + action (0x4000 + index) blocks, 11 in all."""
        if self.tariff is Tariff.BASE:
            blocks = ["00004001"]
        else:
            c = s.tomorrow or 1
            hc, hp = 2 * c - 1, 2 * c
            blocks = [f"0000{0x4000 + hc:04X}", f"0600{0x4000 + hp:04X}", f"2200{0x4000 + hc:04X}"]
        return " ".join(blocks + ["NONUTILE"] * (11 - len(blocks)))


def _va(value: int) -> str:
    """Five-digit VA/W field."""
    return f"{min(99_999, max(0, value)):05d}"
