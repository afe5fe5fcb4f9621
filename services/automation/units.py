"""Units of the automation section: durations, clock times, windows, day and month sets.

Pure parsing, no clock. YAML 1.1 (what ``yaml.safe_load`` speaks) reads some unquoted values
as other types; each parser here accepts those readings too: an unquoted ``18:00`` or ``6:00``
arrives as a base-60 int (1080, 360: minutes since midnight, so taken as 18:00, 06:00; PyYAML
leaves ``06:00`` with its leading zero a string), and unquoted ``on``/``off`` arrive as
True/False.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DAY_MINUTES = 1440
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

_UNIT_S = {"h": 3600.0, "min": 60.0, "s": 1.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(h|min|s)")
_NUMBER = re.compile(r"\s*\d+(?:\.\d+)?\s*")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


def parse_duration(value: object) -> float:
    """Seconds from 90, 90.5, "90", "90s", "10min", "3h" or "1h30min"; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        # ValueError, not TypeError: pydantic reports a ValueError against the key.
        raise ValueError(f"{value!r} is not a duration (seconds, or e.g. '90s', '10min', '3h')")  # noqa: TRY004
    if isinstance(value, int | float):
        return float(value)
    if _NUMBER.fullmatch(value):
        return float(value)
    total, pos, units = 0.0, 0, []
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        units.append(match.group(2))
        pos = match.end()
    ordered = units == [u for u in _UNIT_S if u in units]  # h before min before s, once each
    if not units or value[pos:].strip() or not ordered:
        raise ValueError(
            f"{value!r} is not a duration (seconds, or e.g. '90s', '10min', '3h', '1h30min')"
        )
    return total


def format_duration(seconds: float) -> str:
    """The shortest text parse_duration reads back as ``seconds``: 5400 -> '1h30min'."""
    if seconds < 0 or seconds != int(seconds):
        return f"{seconds:g}"
    rest, parts = int(seconds), []
    for unit, size in _UNIT_S.items():
        count, rest = divmod(rest, int(size))
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_clock(value: object, allow_24: bool = False) -> int:
    """Minutes since midnight from "06:00", or from 360: YAML 1.1's reading of unquoted 06:00.

    ``allow_24`` accepts "24:00" (1440), the end of a window that runs to midnight.
    """
    top = DAY_MINUTES if allow_24 else DAY_MINUTES - 1
    if isinstance(value, int) and not isinstance(value, bool):
        # Unquoted HH:MM in YAML 1.1 is base 60: 06:00 -> 6*60+0 = 360, minutes already.
        if 0 <= value <= top:
            return value
        raise ValueError(f"{value!r} is not a time of day (write it quoted: \"HH:MM\")")
    match = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a time of day \"HH:MM\"")
    hours, minutes = int(match.group(1)), int(match.group(2))
    total = hours * 60 + minutes
    if minutes >= 60 or total > top:
        raise ValueError(f"{value!r} is not a time of day \"HH:MM\" (00:00 to 23:59)")
    return total


def format_clock(minutes: int) -> str:
    """'HH:MM' for minutes since midnight (1440 gives '24:00')."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Window:
    """A daily local time window [start, end) in minutes; start > end wraps past midnight."""

    start: int
    end: int

    @property
    def wraps(self) -> bool:
        """True when the window runs past midnight (it then started the day before)."""
        return self.start > self.end

    @property
    def minutes(self) -> int:
        """Its length in minutes."""
        return (self.end - self.start) % DAY_MINUTES or DAY_MINUTES

    def contains(self, minute: int) -> bool:
        """True when the minute of the day is inside the window."""
        if self.wraps:
            return minute >= self.start or minute < self.end
        return self.start <= minute < self.end

    def started_yesterday(self, minute: int) -> bool:
        """True when the minute is in the after-midnight part of a wrapping window."""
        return self.wraps and minute < self.end

    def complement(self) -> Window:
        """The rest of the day (not defined for 00:00-24:00)."""
        return Window(self.end % DAY_MINUTES, self.start)

    def __str__(self) -> str:
        return f"{format_clock(self.start)}-{format_clock(self.end)}"


def parse_window(value: object) -> Window:
    """A Window from "HH:MM-HH:MM" (may wrap midnight; "00:00-24:00" is the whole day)."""
    if isinstance(value, Window):
        return value
    if not isinstance(value, str) or value.count("-") != 1:
        raise ValueError(f"{value!r} is not a time window \"HH:MM-HH:MM\"")
    first, second = value.split("-")
    try:
        window = Window(parse_clock(first), parse_clock(second, allow_24=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a time window \"HH:MM-HH:MM\": {exc}") from None
    if window.start == window.end % DAY_MINUTES and window.end != DAY_MINUTES:
        raise ValueError(f"{value!r} is an empty window (for all day write 00:00-24:00)")
    return window


def _parse_set(value: object, names: tuple[str, ...], what: str, numbers: bool) -> frozenset[int]:
    """1-based indexes of names given as "a-c,e", a list of those, or (``numbers``) ints."""
    if isinstance(value, frozenset):  # already parsed (a model built from another)
        return value
    items = value if isinstance(value, list | tuple) else [value]
    found: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and numbers:
            if not 1 <= item <= len(names):
                raise ValueError(f"{item!r} is not a {what} (1 to {len(names)})")
            found.add(item - 1)
            continue
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{item!r} is not a {what} set such as '{names[0]}-{names[4]}'")
        for part in item.lower().replace(" ", "").split(","):
            ends = part.split("-")
            if len(ends) > 2 or any(e not in names for e in ends):
                raise ValueError(f"{part!r} is not a {what} or range of {what}s ({names[0]}, "
                                 f"{names[1]}, ..., or '{names[0]}-{names[4]}')")
            lo, hi = names.index(ends[0]), names.index(ends[-1])
            span = (hi - lo) % len(names)  # a range may wrap: fri-mon, nov-feb
            found.update((lo + i) % len(names) for i in range(span + 1))
    return frozenset(i + 1 for i in found)


def parse_days(value: object) -> frozenset[int]:
    """ISO weekdays (1 = Monday) from "mon-fri", "sat", "mon-wed,fri" or a list of those."""
    return _parse_set(value, DAYS, "day", numbers=False)


def parse_months(value: object) -> frozenset[int]:
    """Months (1 = January) from "jun-aug", "nov-feb", "dec", 7, or a list of those."""
    return _parse_set(value, MONTHS, "month", numbers=True)


def format_set(indexes: frozenset[int], names: tuple[str, ...]) -> str:
    """Back to text: {1, 2, 3, 5} with DAYS -> 'mon,tue,wed,fri'."""
    return ",".join(names[i - 1] for i in sorted(indexes))


def parse_on_off(value: object) -> Literal["on", "off"]:
    """"on"/"off", also as YAML 1.1 reads them unquoted (True/False)."""
    if value is True or value == "on":
        return "on"
    if value is False or value == "off":
        return "off"
    raise ValueError(f"{value!r} is neither \"on\" nor \"off\"")
