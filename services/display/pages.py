"""Which page a screen shows and how bright: a pure state machine on a given clock.

Pages rotate every ``page_s``; a button jumps to a page (the first press on a blank screen
only wakes it); the alerts page preempts the rotation while an alert stands, except for one
``page_s`` after a button jump (the user asked to see something else). The screen dims
``dim_after_s`` after the last button or new alert and blanks ``blank_after_s`` after it (OLED
burn-in); a button or a new alert wakes it. The service calls ``tick(now, alerts)`` at each
frame and ``button(now, page)`` on a press; both return the `Screen` to draw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

ALERTS = "alerts"


class Light(StrEnum):
    """The screen's brightness."""

    AWAKE = "awake"
    DIM = "dim"
    BLANK = "blank"


@dataclass(frozen=True, slots=True)
class Screen:
    """What to draw: a page name (one of the rotation, or "alerts") and the brightness."""

    page: str
    light: Light


@dataclass
class Pager:
    """The rotation, the alert preemption and the dim/blank timers of one screen."""

    pages: Sequence[str]
    page_s: float
    dim_after_s: float | None
    blank_after_s: float | None
    start: float  # epoch s the screen came up (awake)
    index: int = 0
    page_since: float = field(init=False)
    active: float = field(init=False)  # the last button or new alert
    jumped: float | None = None  # a button jump holds off the alerts page for one page_s
    alerts: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.pages:
            raise ValueError("a screen needs at least one page")
        self.page_since = self.active = self.start

    def light(self, now: float) -> Light:
        """The brightness at ``now``."""
        idle = now - self.active
        if self.blank_after_s is not None and idle >= self.blank_after_s:
            return Light.BLANK
        if self.dim_after_s is not None and idle >= self.dim_after_s:
            return Light.DIM
        return Light.AWAKE

    def _rotate(self, now: float) -> None:
        steps = int((now - self.page_since) // self.page_s)
        if steps > 0:
            self.index = (self.index + steps) % len(self.pages)
            self.page_since += steps * self.page_s

    def _screen(self, now: float) -> Screen:
        held = self.jumped is not None and now - self.jumped < self.page_s
        page = ALERTS if self.alerts and not held else self.pages[self.index]
        return Screen(page, self.light(now))

    def tick(self, now: float, alerts: Iterable[str] = ()) -> Screen:
        """The screen at ``now`` with the alerts standing (any keys: new ones wake it)."""
        standing = frozenset(alerts)
        if standing - self.alerts:
            self.wake(now)
        self.alerts = standing
        self._rotate(now)
        return self._screen(now)

    def wake(self, now: float) -> None:
        """Light the screen again (a relay key's press): no page turn, no hold on alerts."""
        self.active = max(self.active, now)

    def button(self, now: float, page: str | None = None) -> Screen:
        """A press: wakes the screen; unless it was blank, shows ``page`` (default: the next
        one) for a whole ``page_s``."""
        was = self.light(now)
        self.wake(now)
        self._rotate(now)
        if was is not Light.BLANK:
            if page is None:
                self.index = (self.index + 1) % len(self.pages)
            elif page in self.pages:
                self.index = list(self.pages).index(page)
            self.page_since = self.jumped = now
        return self._screen(now)
